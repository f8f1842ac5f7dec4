"""Environment files: variables, Spark conf and etlc settings, with clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError


def write(tmp_path: Path, doc: object, name: str = "dev.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


def test_loads_variables_conf_and_settings(tmp_path: Path) -> None:
    env = Environment.load(
        write(
            tmp_path,
            {
                "variables": {"root": "/data", "n": 3, "flag": True},
                "spark": {"spark.sql.shuffle.partitions": 8},
                "etlc": {"stage_dir": "/tmp/stage", "avro_boundary": False},
            },
        )
    )
    assert env.name == "dev"
    assert env.variables == {"root": "/data", "n": "3", "flag": "true"}
    assert env.spark_conf == {"spark.sql.shuffle.partitions": "8"}
    assert env.settings == Settings(stage_dir="/tmp/stage", avro_boundary=False)
    assert env.interpolate("${root}/orders/${n}") == "/data/orders/3"


def test_missing_variable_names_the_file(tmp_path: Path) -> None:
    env = Environment.load(write(tmp_path, {"variables": {}}))
    with pytest.raises(ConfigurationError, match=r"`root` is not defined in .*dev\.json"):
        env.interpolate("${root}/x")


@pytest.mark.parametrize(
    ("doc", "pattern"),
    [
        ("{not json", r"dev\.json:1:2: malformed JSON"),
        ("[]", "must be a JSON object"),
        ({"variabls": {}}, "unknown keys"),
        ({"variables": []}, "`variables` must be an object"),
        ({"variables": {"a": [1]}}, "`variables.a` must be"),
        ({"etlc": {"stage_dir": 3}}, "`etlc.stage_dir` must be a str"),
        ({"etlc": {"nope": 3}}, "unknown `etlc` settings"),
        ({"etlc": []}, "`etlc` must be an object"),
    ],
)
def test_bad_files_fail_with_a_clear_message(tmp_path: Path, doc: object, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        Environment.load(write(tmp_path, doc))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        Environment.load(tmp_path / "nope.json")
