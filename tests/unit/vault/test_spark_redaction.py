"""Spark's own redaction: every submit command extends Spark's default patterns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etlc.codegen.render import BASE_CONF
from etlc.codegen.shell import word
from etlc.vault.redaction import (
    SPARK_DEFAULT_OPTIONS_REDACTION_REGEX,
    SPARK_DEFAULT_REDACTION_REGEX,
    SPARK_REDACTION_CONF,
)

ROOT = Path(__file__).resolve().parents[3]
CONF = dict(SPARK_REDACTION_CONF)


def test_spark_defaults_are_kept_and_extended() -> None:
    assert CONF["spark.redaction.regex"].startswith(SPARK_DEFAULT_REDACTION_REGEX + "|")
    options = CONF["spark.sql.redaction.options.regex"]
    assert options.startswith(SPARK_DEFAULT_OPTIONS_REDACTION_REGEX + "|")
    for key, value in SPARK_REDACTION_CONF:
        assert f"{key}={value}" in BASE_CONF


@pytest.mark.parametrize(
    "key",
    [
        "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.s3a.access.key",
        "password",
        "kafka.sasl.jaas.config",
        "spark.etlc.credential",
        "vault_token",
        "api_key",
        "url",
    ],
)
def test_credential_keys_match(key: str) -> None:
    # Java's and Python's syntax agree on these simple patterns (inline flag, alternation).
    assert re.search(CONF["spark.sql.redaction.options.regex"], key)
    if key != "url":
        assert re.search(CONF["spark.redaction.regex"], key)


@pytest.mark.parametrize("submit", sorted((ROOT / "generated").glob("*.submit.sh")), ids=str)
def test_every_generated_submit_command_sets_them(submit: Path) -> None:
    text = submit.read_text()
    for key, value in SPARK_REDACTION_CONF:
        assert f"  --conf {word(f'{key}={value}')} \\\n" in text
