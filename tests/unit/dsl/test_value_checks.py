"""Values lint must refuse because the target cannot take them (E215, E216), and the rules the
compiler lowers into SQL: built from checked parts only, and re-checked before they are emitted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.expressions import Scope
from etlc.dsl.types import DataType
from etlc.dsl.validation_rules import lowered_rule as _lowered_rule
from tests.unit.dsl.test_checker import AVRO_DIR, check, codes, only
from tests.unit.dsl.test_streaming_checks import (
    EVENTS,
    LIVE,
    PAID,
    PAYMENTS,
    WINDOW_TIME,
    WITHIN,
    env_dir,
    paid_join,
    streaming,
    window,
)
from tests.unit.dsl.test_upsert_checks import PROFILES

__all__ = ["env_dir"]  # the fixture, shared with the streaming checks

PG_QUERY = {
    "id": "orders",
    "type": "postgres",
    "connection": "warehouse",
    "schema": "order.avsc",
    "query": "SELECT * FROM orders",
}


def batch(extract: dict[str, Any], load: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": "b",
        "extract": [extract],
        "load": [
            load
            or {
                "input": extract["id"],
                "type": "files",
                "path": "/o",
                "format": "parquet",
                "mode": "append",
            }
        ],
    }


def mysql_env(env_dir: Path) -> None:
    profiles = {**PROFILES, "warehouse": {**PROFILES["warehouse"], "system": "mysql"}}
    (env_dir / "dev.json").write_text(json.dumps({"connections": profiles}))


# --- JDBC queries (E215) ---------------------------------------------------------------------


def test_a_query_is_lowered_as_its_checked_rendering(tmp_path: Path, env_dir: Path) -> None:
    query = "select o.*, now() AS seen from orders o where o.amount::numeric > 10"
    result = check(tmp_path, env_dir, batch({**PG_QUERY, "query": query}))
    assert result.ok, result.diagnostics
    lowered = dict(result.plan.step("orders").args)["query"]
    assert lowered == (
        "SELECT o.*, CURRENT_TIMESTAMP AS seen FROM orders AS o "
        "WHERE CAST(o.amount AS DECIMAL) > 10"
    )


@pytest.mark.parametrize(
    ("system", "query"),
    [
        ("postgres", "SELECT * FROM orders) etlc_query; DROP TABLE orders; --"),
        ("postgres", "WITH x AS (DELETE FROM orders RETURNING *) SELECT * FROM x"),
        ("postgres", "SELECT pg_sleep(10)"),
        ("mysql", "SELECT /*! SLEEP(5) */ 1"),
        ("mysql", "SELECT * FROM orders FOR UPDATE"),
    ],
)
def test_a_hostile_query_is_e215_at_the_query(
    tmp_path: Path, env_dir: Path, system: str, query: str
) -> None:
    if system == "mysql":
        mysql_env(env_dir)
    result = check(tmp_path, env_dir, batch({**PG_QUERY, "type": system, "query": query}))
    d = only(result, "E215")
    assert result.plan is None
    source = result.source.splitlines()[d.span.line - 1]
    assert json.dumps(query) in source


# --- partition bounds (E216) -------------------------------------------------------------------


def partitioned(column: str, lower: Any, upper: Any, table: str = "orders") -> dict[str, Any]:
    return {
        **{k: v for k, v in PG_QUERY.items() if k != "query"},
        "table": table,
        "partition": {"column": column, "lower": lower, "upper": upper, "partitions": 4},
    }


@pytest.mark.parametrize(
    ("column", "lower", "upper"),
    [
        ("order_id", 1, 1_000_000),
        ("order_id", "-5", "5"),
        ("ordered_at", "2024-01-01", "2024-12-31 23:59:59"),
    ],
)
def test_partition_bounds_in_the_column_type_pass(
    tmp_path: Path, env_dir: Path, column: str, lower: Any, upper: Any
) -> None:
    result = check(tmp_path, env_dir, batch(partitioned(column, lower, upper)))
    assert result.ok, result.diagnostics


@pytest.mark.parametrize(
    ("column", "lower", "upper"),
    [
        ("order_id", 10, 1),  # inverted
        ("order_id", 5, 5),  # empty range
        ("order_id", "one", 10),
        ("order_id", "1.5", 10),
        ("order_id", "0", "9223372036854775808"),  # past a long
        ("ordered_at", 0, 100),  # a number for a timestamp
        ("ordered_at", "2024-02-30", "2024-03-01"),
        ("ordered_at", "2024-12-31", "2024-01-01"),
        ("ordered_at", "yesterday", "2024-01-01"),
    ],
)
def test_bad_partition_bounds_are_e216(
    tmp_path: Path, env_dir: Path, column: str, lower: Any, upper: Any
) -> None:
    result = check(tmp_path, env_dir, batch(partitioned(column, lower, upper)))
    assert "E216" in codes(result) and result.plan is None


# --- identifier lengths (E216) -----------------------------------------------------------------


def long_named_schema(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / "avro"
    folder.mkdir(exist_ok=True)
    doc = {"type": "record", "name": "r", "fields": [{"name": name, "type": "long"}]}
    (folder / "long.avsc").write_text(json.dumps(doc))
    return folder


def load_to(system: str, **extra: Any) -> dict[str, Any]:
    return {
        "input": "x",
        "type": system,
        "connection": "warehouse",
        "table": "t",
        "mode": "append",
        **extra,
    }


@pytest.mark.parametrize(
    ("system", "length", "ok"),
    [("postgres", 63, True), ("postgres", 64, False), ("mysql", 64, True), ("mysql", 65, False)],
)
def test_database_load_columns_fit_the_identifier_limit(
    tmp_path: Path, env_dir: Path, system: str, length: int, ok: bool
) -> None:
    if system == "mysql":
        mysql_env(env_dir)
    name = "c" * length
    avro = long_named_schema(tmp_path, name)
    extract = {"id": "x", "type": "files", "path": "/d", "format": "csv", "schema": "long.avsc"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(batch(extract, load_to(system, keys=[name]))))
    result = check_file(path, CheckOptions(schema_dirs=(avro, AVRO_DIR), env_dir=env_dir))
    assert ("E216" in codes(result)) != ok, result.diagnostics


# --- Kafka (E216) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("starting_offsets", "earliest"),
        ("starting_offsets", '{"etlc.orders": {"0": 42, "1": -2, "2": -1}}'),
        ("ending_offsets", "latest"),
        ("ending_offsets", '{"etlc.orders": {"0": 100, "1": -1}}'),
    ],
)
def test_kafka_offsets_spark_takes_pass(
    tmp_path: Path, env_dir: Path, option: str, value: str
) -> None:
    doc = streaming(LIVE, pipeline_mode="batch", extract=[{**EVENTS, option: value}])
    result = check(tmp_path, env_dir, doc)
    assert result.ok, result.diagnostics


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("starting_offsets", "beginning"),
        ("starting_offsets", "earliest\n"),
        ("ending_offsets", "earliest"),
        ("starting_offsets", '{"etlc.orders": {"0": 1.5}}'),
        ("starting_offsets", '{"etlc.orders": {"0": true}}'),
        ("starting_offsets", '{"etlc.orders": {"0": -3}}'),
        ("ending_offsets", '{"etlc.orders": {"0": -2}}'),
        ("starting_offsets", '{"etlc.orders": {"x": 1}}'),
        ("starting_offsets", '{"other": {"0": 1}}'),
        ("starting_offsets", '{"etlc.orders": {"0": 1, "0": 2}}'),
        ("starting_offsets", '{"etlc.orders": {"0": NaN}}'),
        ("starting_offsets", '{"etlc.orders": {"0": 99999999999999999999}}'),
        ("starting_offsets", "{" * 5000),
        ("starting_offsets", '{"etlc.orders": {}}'),
    ],
)
def test_malformed_kafka_offsets_are_e216(
    tmp_path: Path, env_dir: Path, option: str, value: str
) -> None:
    doc = streaming(LIVE, pipeline_mode="batch", extract=[{**EVENTS, option: value}])
    only(check(tmp_path, env_dir, doc), "E216")


@pytest.mark.parametrize("pattern", ["(?P<t>orders).*", "orders[[:digit:]]", "(?=orders).*", "a++"])
def test_a_topic_pattern_java_would_not_compile_is_e216(
    tmp_path: Path, env_dir: Path, pattern: str
) -> None:
    source = {k: v for k, v in EVENTS.items() if k != "topic"} | {"topic_pattern": pattern}
    d = only(check(tmp_path, env_dir, streaming(LIVE, extract=[source])), "E216")
    assert "Java" in d.message


# --- durations (E216) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "time",
    [
        {**WINDOW_TIME, "size": "367 days"},
        {**WINDOW_TIME, "size": "9999999999999999999999 weeks"},
        {**WINDOW_TIME, "watermark": "53 weeks"},
        {**WINDOW_TIME, "slide": "1000000000000 seconds"},
    ],
)
def test_absurd_window_durations_are_e216(
    tmp_path: Path, env_dir: Path, time: dict[str, Any]
) -> None:
    result = check(
        tmp_path,
        env_dir,
        streaming(
            LIVE,
            window(time=time),
            mode="upsert",
            sink={
                "type": "postgres",
                "connection": "warehouse",
                "table": "out",
                "keys": ["customer_id"],
            },
        ),
    )
    assert "E216" in codes(result) and "E000" not in codes(result)


def test_absurd_join_bounds_are_e216(tmp_path: Path, env_dir: Path) -> None:
    doc = streaming(PAID, paid_join(**{**WITHIN, "after": "400 days"}), extract=[EVENTS, PAYMENTS])
    only(check(tmp_path, env_dir, doc), "E216")


# --- validation rules: checked parts, re-checked before they are emitted --------------------------


def test_enum_symbols_that_are_not_avro_names_never_reach_the_rules(
    tmp_path: Path, env_dir: Path
) -> None:
    folder = tmp_path / "avro"
    folder.mkdir()
    doc = {
        "type": "record",
        "name": "r",
        "fields": [
            {
                "name": "s",
                "type": {
                    "type": "enum",
                    "name": "e",
                    "symbols": ["A\\", ") OR reflect('x','y') OR ('"],
                },
            },
        ],
    }
    (folder / "evil.avsc").write_text(json.dumps(doc))
    extract = {"id": "x", "type": "files", "path": "/d", "format": "csv", "schema": "evil.avsc"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(batch(extract)))
    result = check_file(path, CheckOptions(schema_dirs=(folder,), env_dir=env_dir))
    assert codes(result) == ["E205"] and result.plan is None


def test_a_lowered_rule_the_checker_refuses_is_an_internal_error() -> None:
    scope = Scope({"a": DataType("long")})
    assert _lowered_rule("`a` IS NOT NULL", scope) == "NOT a IS NULL"
    with pytest.raises(AssertionError):
        _lowered_rule("`b` IS NOT NULL", scope)  # a column the schema does not have
    with pytest.raises(AssertionError):
        _lowered_rule("a IN ('x') OR reflect('java.lang.Runtime', 'exec', 'id')", scope)


@pytest.mark.parametrize(
    "rule",
    [
        "+".join(["amount"] * 118) + " > 0",  # at the operator-chain bound
        "(" * 24 + "amount > 0" + ")" * 24,  # at the nesting bound
        " OR ".join(["amount > 0"] * 570),  # near the character bound, longer once rendered
    ],
)
def test_a_declared_rule_at_the_bounds_lowers_without_internal_error(
    tmp_path: Path, env_dir: Path, rule: str
) -> None:
    folder = tmp_path / "avro"
    folder.mkdir()
    doc = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "amount", "type": "long"}],
        "etlc.rules": {"big": rule},
    }
    (folder / "r.avsc").write_text(json.dumps(doc))
    extract = {"id": "x", "type": "files", "path": "/d", "format": "csv", "schema": "r.avsc"}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(batch(extract)))
    result = check_file(path, CheckOptions(schema_dirs=(folder,), env_dir=env_dir))
    assert "E000" not in codes(result)
    assert result.ok or codes(result) == ["E308"], result.diagnostics
