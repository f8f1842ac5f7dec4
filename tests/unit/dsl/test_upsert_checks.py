"""Upserts: which row a repeated key keeps (`sequence_by`), checked at compile time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.dsl.test_checker import ORDERS, check, definition, only

PROFILES = {
    "warehouse": {
        "system": "postgres",
        "host": "db",
        "database": "dw",
        "user": "etl",
        "password": "vault://db/dw#password",
    },
    "events": {"system": "kafka", "bootstrap_servers": "k:9092"},
}


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    d = tmp_path / "env"
    d.mkdir()
    env = {"variables": {"data_dir": "/d"}, "connections": PROFILES}
    (d / "dev.json").write_text(json.dumps(env))
    return d


def upsert(sink: str = "postgres", load_input: str = "orders", **load: Any) -> dict[str, Any]:
    target = (
        {"type": "postgres", "connection": "warehouse", "table": "t"}
        if sink == "postgres"
        else {"type": "kafka", "connection": "events", "topic": "t"}
    )
    step = {"input": load_input, **target, "mode": "upsert", "keys": ["order_id"], **load}
    return definition(extract=[ORDERS], load=[step])


@pytest.mark.parametrize("sink", ["postgres", "kafka"])
def test_sequence_by_reaches_the_loader(tmp_path: Path, env_dir: Path, sink: str) -> None:
    result = check(tmp_path, env_dir, upsert(sink, sequence_by="ordered_at"))
    assert result.diagnostics == []
    [load] = [s for s in result.plan.steps if s.role == "load"]
    assert dict(load.args)["sequence_by"] == "ordered_at"


def test_an_upsert_without_sequence_by_is_warned_about(tmp_path: Path, env_dir: Path) -> None:
    result = check(tmp_path, env_dir, upsert())
    d = only(result, "W202")
    assert not d.is_error and "sequence_by" in d.hint
    assert result.plan is not None  # a warning does not stop compilation


def test_no_warning_when_the_input_is_grouped_by_the_keys(tmp_path: Path, env_dir: Path) -> None:
    doc = upsert(load_input="per_order")
    doc["transform"] = [
        {
            "id": "per_order",
            "type": "aggregate",
            "input": "orders",
            "group_by": ["order_id"],
            "aggregates": {"total": "sum(amount)"},
        }
    ]
    assert check(tmp_path, env_dir, doc).diagnostics == []


@pytest.mark.parametrize(
    ("load", "fragment"),
    [
        ({"sequence_by": "coupn"}, "coupn"),
        ({"sequence_by": "ordered_at", "mode": "append"}, "only applies to upsert"),
    ],
)
def test_a_wrong_sequence_by_is_an_error(
    tmp_path: Path, env_dir: Path, load: dict[str, Any], fragment: str
) -> None:
    result = check(tmp_path, env_dir, upsert(**load))
    errors = [d for d in result.diagnostics if d.is_error]
    assert len(errors) == 1 and fragment in errors[0].message, result.diagnostics
    assert result.plan is None


def test_files_upsert_needs_delta_which_brings_its_jars_and_conf(
    tmp_path: Path, env_dir: Path
) -> None:
    step = {
        "input": "orders",
        "type": "files",
        "path": "/lake/orders",
        "mode": "upsert",
        "keys": ["order_id"],
        "sequence_by": "ordered_at",
    }
    plain = check(
        tmp_path, env_dir, definition(extract=[ORDERS], load=[{**step, "format": "parquet"}])
    )
    d = only(plain, "E401")
    assert '"format": "delta"' in d.hint
    result = check(
        tmp_path, env_dir, definition(extract=[ORDERS], load=[{**step, "format": "delta"}])
    )
    assert result.diagnostics == []
    [load] = [s for s in result.plan.steps if s.role == "load"]
    assert dict(load.args)["keys"] == ("order_id",)
    assert dict(load.args)["sequence_by"] == "ordered_at"
    assert {a.artifact for a in result.plan.artifacts} >= {"delta-spark_2.13", "delta-storage"}
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in result.plan.spark_conf
