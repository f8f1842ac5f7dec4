"""Incremental extracts, checked at compile time: the column, the lookback, and what each load
fed by one does with a run's new rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.checker import check_file
from etlc.dsl.steps.contract import CheckOptions
from tests.unit.dsl.test_checker import AVRO_DIR, check, codes, definition, only
from tests.unit.dsl.test_upsert_checks import PROFILES


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    d = tmp_path / "env"
    d.mkdir()
    (d / "dev.json").write_text(json.dumps({"connections": PROFILES}))
    return d


def orders(**incremental: Any) -> dict[str, Any]:
    return {
        "id": "orders",
        "type": "postgres",
        "connection": "warehouse",
        "table": "shop_orders",
        "schema": "order.avsc",
        "incremental": incremental,
    }


def pipeline(incremental: dict[str, Any], mode: str = "upsert", **more: Any) -> dict[str, Any]:
    load: dict[str, Any] = {
        "input": "orders",
        "type": "postgres",
        "connection": "warehouse",
        "table": "orders_copy",
        "mode": mode,
    }
    if mode == "upsert":
        load |= {"keys": ["order_id"], "sequence_by": "ordered_at"}
    return definition(extract=[orders(**incremental)], load=[load], **more)


def check_own_schema(tmp_path: Path, env_dir: Path, doc: Any, avsc: dict[str, Any]) -> Any:
    """``doc`` checked with its extract reading ``avsc`` (own.avsc, beside the definition)."""
    own = tmp_path / "avro"
    own.mkdir(exist_ok=True)
    (own / "own.avsc").write_text(json.dumps(avsc))
    doc["extract"][0]["schema"] = "own.avsc"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    return check_file(path, CheckOptions(schema_dirs=(own, AVRO_DIR), env_dir=env_dir))


def extract_args(result: Any) -> dict[str, Any]:
    [extract] = [s for s in result.plan.steps if s.role == "extract"]
    return dict(extract.args)


@pytest.mark.parametrize(
    ("incremental", "lowered"),
    [
        ({"column": "order_id"}, {"column": "order_id", "kind": "integer", "lookback": 0}),
        (
            {"column": "order_id", "lookback": 500},
            {"column": "order_id", "kind": "integer", "lookback": 500},
        ),
        (
            {"column": "ordered_at", "lookback": "10 minutes"},
            {"column": "ordered_at", "kind": "timestamp", "lookback": 600_000_000},
        ),
    ],
)
def test_the_option_reaches_the_extractor_in_positions(
    tmp_path: Path, env_dir: Path, incremental: dict[str, Any], lowered: dict[str, Any]
) -> None:
    result = check(tmp_path, env_dir, pipeline(incremental))
    assert result.diagnostics == []
    assert extract_args(result)["incremental"] == lowered


DAYS = {
    "type": "record",
    "name": "Day",
    "fields": [
        {"name": "order_id", "type": "long"},
        {"name": "ordered_at", "type": {"type": "int", "logicalType": "date"}},
    ],
}


def test_a_date_column_looks_back_whole_days(tmp_path: Path, env_dir: Path) -> None:
    doc = pipeline({"column": "ordered_at", "lookback": "2 days"})
    result = check_own_schema(tmp_path, env_dir, doc, DAYS)
    assert codes(result) == []
    assert extract_args(result)["incremental"] == {
        "column": "ordered_at",
        "kind": "date",
        "lookback": 2,
    }
    doc["extract"][0]["incremental"]["lookback"] = "36 hours"
    d = only(check_own_schema(tmp_path, env_dir, doc, DAYS), "E216")
    assert "whole days" in d.message and '"2 days"' in d.hint


@pytest.mark.parametrize(
    ("incremental", "code", "fragment"),
    [
        ({"column": "ordred_at"}, "E302", "unknown column `ordred_at` in incremental"),
        ({"column": "status"}, "E304", "integer, date or timestamp"),
        ({"column": "order_id", "lookback": "5 minutes"}, "E216", "whole number"),
        ({"column": "order_id", "lookback": -1}, "E216", "at least 0"),
        ({"column": "ordered_at", "lookback": 600}, "E216", "is not a duration"),
        ({"column": "ordered_at", "lookback": "400 days"}, "E216", "366 days"),
    ],
)
def test_a_wrong_option_is_an_error(
    tmp_path: Path, env_dir: Path, incremental: dict[str, Any], code: str, fragment: str
) -> None:
    result = check(tmp_path, env_dir, pipeline(incremental))
    d = only(result, code)
    assert fragment in d.message
    assert result.plan is None


def test_a_nullable_column_is_warned_about(tmp_path: Path, env_dir: Path) -> None:
    nullable = {
        "type": "record",
        "name": "O",
        "fields": [
            {"name": "order_id", "type": "long"},
            {"name": "ordered_at", "type": ["null", "long"], "default": None},
        ],
    }
    doc = pipeline({"column": "ordered_at"}, mode="append")
    result = check_own_schema(tmp_path, env_dir, doc, nullable)
    d = only(result, "W205")
    assert "first run only" in d.message and not d.is_error
    assert result.plan is not None


def test_an_overwrite_load_of_new_rows_only_is_an_error(tmp_path: Path, env_dir: Path) -> None:
    result = check(tmp_path, env_dir, pipeline({"column": "order_id"}, mode="overwrite"))
    d = only(result, "E411")
    assert "`load_1_orders` overwrites" in d.message and "`orders` is incremental" in d.message
    assert d.span.line > 0


def test_the_rule_follows_the_rows_through_transforms(tmp_path: Path, env_dir: Path) -> None:
    doc = pipeline({"column": "order_id"}, mode="overwrite")
    doc["transform"] = [
        {"id": "live", "type": "filter", "input": "orders", "condition": "status <> 'CANCELLED'"}
    ]
    doc["load"][0]["input"] = "live"
    assert "E411" in codes(check(tmp_path, env_dir, doc))


def test_a_lookback_into_an_append_load_is_an_error(tmp_path: Path, env_dir: Path) -> None:
    ok = check(tmp_path, env_dir, pipeline({"column": "order_id"}, mode="append"))
    assert codes(ok) == []
    doubled = check(tmp_path, env_dir, pipeline({"column": "order_id", "lookback": 10}, "append"))
    d = only(doubled, "E411")
    assert "written twice" in d.message and "upsert" in d.hint


def test_a_stream_cannot_read_incrementally(tmp_path: Path, env_dir: Path) -> None:
    kafka = {
        "id": "events",
        "type": "kafka",
        "connection": "events",
        "topic": "orders",
        "schema": "order.avsc",
    }
    doc = pipeline({"column": "order_id"}, mode="append")
    doc["mode"] = "streaming"
    doc["extract"].append(kafka)
    doc["load"][0]["input"] = "events"
    doc["transform"] = [
        {
            "id": "joined",
            "type": "join",
            "left": "events",
            "right": "orders",
            "on": ["order_id"],
            "how": "inner",
        }
    ]
    doc["load"][0]["input"] = "joined"
    d = only(check(tmp_path, env_dir, doc), "E411")
    assert "batch runs" in d.message


def test_a_full_refresh_rebuilds_each_load_that_can_overwrite(
    tmp_path: Path, env_dir: Path
) -> None:
    doc = pipeline({"column": "order_id"}, mode="append")
    doc["extract"].append(
        {
            "id": "rates",
            "type": "files",
            "path": "/r.csv",
            "format": "csv",
            "schema": "customer.avsc",
        }
    )
    doc["load"] += [
        {
            "input": "orders",
            "type": "kafka",
            "connection": "events",
            "topic": "o",
            "mode": "append",
        },
        {"input": "rates", "type": "files", "path": "/out", "format": "parquet", "mode": "append"},
    ]
    result = check(tmp_path, env_dir, doc)
    assert codes(result) == []
    modes = {s.type: s.rebuild_mode for s in result.plan.steps if s.role == "load"}
    # The topic is a log: it keeps appending; the files load reads no incremental extract.
    assert modes == {"postgres": "overwrite", "kafka": "append", "files": ""}


def topic_pipeline(mode: str = "append", **extract: Any) -> dict[str, Any]:
    """The orders topic read incrementally, appended to a table."""
    doc = pipeline({"column": "order_id"}, mode=mode)
    doc["extract"] = [
        {
            "id": "orders",
            "type": "kafka",
            "connection": "events",
            "topic": "orders",
            "schema": "order.avsc",
            "incremental": True,
            **extract,
        }
    ]
    return doc


def test_a_topic_reads_by_its_offsets(tmp_path: Path, env_dir: Path) -> None:
    result = check(tmp_path, env_dir, topic_pipeline(starting_offsets='{"orders": {"0": 5}}'))
    assert codes(result) == []
    assert extract_args(result)["incremental"] == {"kind": "offsets"}
    assert "incremental" not in extract_args(
        check(tmp_path, env_dir, topic_pipeline(incremental=False))
    )
    # What each load does with a run's new records holds for offsets too.
    assert "E411" in codes(check(tmp_path, env_dir, topic_pipeline(mode="overwrite")))
    assert codes(check(tmp_path, env_dir, topic_pipeline(mode="upsert"))) == []


@pytest.mark.parametrize(
    ("extract", "code", "fragment"),
    [
        ({"topic": None, "topic_pattern": "orders\\..*"}, "E216", "reads one `topic`"),
        ({"ending_offsets": "latest"}, "E216", "ends each run at the topic's latest offsets"),
    ],
)
def test_a_topic_read_it_cannot_bound_is_an_error(
    tmp_path: Path, env_dir: Path, extract: dict[str, Any], code: str, fragment: str
) -> None:
    doc = topic_pipeline(**extract)
    doc["extract"][0] = {k: v for k, v in doc["extract"][0].items() if v is not None}
    result = check(tmp_path, env_dir, doc)
    assert fragment in only(result, code).message
    assert result.plan is None


def test_a_stream_of_a_topic_cannot_read_incrementally(tmp_path: Path, env_dir: Path) -> None:
    doc = topic_pipeline()
    doc["mode"] = "streaming"
    d = only(check(tmp_path, env_dir, doc), "E411")
    assert "batch runs" in d.message and d.span.line > 0


def folder_pipeline(incremental: dict[str, Any], fmt: str = "csv") -> dict[str, Any]:
    """The files of a folder read incrementally, appended to a table."""
    doc = pipeline({"column": "order_id"}, mode="append")
    doc["extract"] = [
        {
            "id": "orders",
            "type": "files",
            "path": "/landing/orders/",
            "format": fmt,
            "schema": "order.avsc",
            "incremental": incremental,
        }
    ]
    return doc


def test_a_folder_reads_its_new_files_with_a_lookback_in_milliseconds(
    tmp_path: Path, env_dir: Path
) -> None:
    default = check(tmp_path, env_dir, folder_pipeline({}))
    assert codes(default) == []
    assert extract_args(default)["incremental"] == {"kind": "files", "lookback": 3_600_000}
    two_hours = check(tmp_path, env_dir, folder_pipeline({"lookback": "2 hours"}))
    assert extract_args(two_hours)["incremental"] == {"kind": "files", "lookback": 7_200_000}
    d = only(check(tmp_path, env_dir, folder_pipeline({"lookback": "400 days"})), "E216")
    assert "366 days" in d.message


def test_a_delta_table_or_a_stream_cannot_read_new_files(tmp_path: Path, env_dir: Path) -> None:
    d = only(check(tmp_path, env_dir, folder_pipeline({}, fmt="delta")), "E216")
    assert "Delta table is read whole" in d.message
    doc = folder_pipeline({})
    doc["mode"] = "streaming"
    assert "batch runs" in only(check(tmp_path, env_dir, doc), "E411").message
