"""Streaming pipelines: what Structured Streaming can run, checked at compile time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.dsl.test_checker import CUSTOMERS, ORDERS, check, codes, only
from tests.unit.dsl.test_upsert_checks import PROFILES

EVENTS = {
    "id": "events",
    "type": "kafka",
    "connection": "events",
    "topic": "etlc.orders",
    "schema": "order.avsc",
}
STATIC_CUSTOMERS = {
    "id": "customers",
    "type": "postgres",
    "connection": "warehouse",
    "table": "customers",
    "schema": "customer.avsc",
}
LIVE = {"id": "live", "type": "filter", "input": "events", "condition": "status <> 'CANCELLED'"}
WINDOW_TIME = {"column": "ordered_at", "size": "1 minute", "watermark": "10 minutes"}


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    d = tmp_path / "env"
    d.mkdir()
    env = {"variables": {"data_dir": "/d"}, "connections": PROFILES}
    (d / "dev.json").write_text(json.dumps(env))
    return d


def window(input_: str = "live", **overrides: Any) -> dict[str, Any]:
    step = {
        "id": "per_minute",
        "type": "window",
        "input": input_,
        "time": WINDOW_TIME,
        "group_by": ["customer_id"],
        "aggregates": {"revenue": "sum(amount)", "orders": "count(*)"},
    }
    step.update(overrides)
    return {k: v for k, v in step.items() if v is not None}  # None: leave the key out


def join(left: str, right: str, how: str = "inner", on: str = "customer_id") -> dict[str, Any]:
    return {"id": "joined", "type": "join", "left": left, "right": right, "on": [on], "how": how}


def streaming(
    *transforms: dict[str, Any],
    extract: list[dict[str, Any]] | None = None,
    load_input: str | None = None,
    mode: str = "append",
    sink: dict[str, Any] | None = None,
    pipeline_mode: str = "streaming",
) -> dict[str, Any]:
    target = sink or {"type": "postgres", "connection": "warehouse", "table": "out"}
    last = load_input or (transforms[-1]["id"] if transforms else "events")
    return {
        "name": "s",
        "mode": pipeline_mode,
        "extract": extract if extract is not None else [EVENTS],
        "transform": list(transforms),
        "load": [{"input": last, **target, "mode": mode}],
    }


def args(result: Any, step_id: str) -> dict[str, Any]:
    return dict(result.plan.step(step_id).args)


# --- a valid streaming pipeline ------------------------------------------------------------


def test_a_stream_static_pipeline_lowers_the_streaming_options(
    tmp_path: Path, env_dir: Path
) -> None:
    events = {**EVENTS, "max_offsets_per_trigger": 5000, "fail_on_data_loss": False}
    doc = streaming(
        LIVE,
        window(),
        join("per_minute", "customers", how="left"),
        extract=[events, STATIC_CUSTOMERS],
    )
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == []
    plan = result.plan
    assert plan.mode == "streaming"
    source = args(result, "events")
    assert source["max_offsets_per_trigger"] == 5000
    assert isinstance(source["max_offsets_per_trigger"], int)
    assert source["fail_on_data_loss"] is False
    assert "ending_offsets" not in source
    assert args(result, "per_minute") == {
        "group_by": ("customer_id",),
        "time_column": "ordered_at",
        "size": "1 minute",
        "watermark": "10 minutes",
        "aggregates": {"revenue": "SUM(amount)", "orders": "COUNT(*)"},
    }
    assert args(result, "joined")["how"] == "left"
    [load] = plan.by_role("load")
    assert load.mode == "append"
    assert [f.name for f in plan.step("joined").schema.fields][:3] == [
        "customer_id",
        "window_start",
        "window_end",
    ]


def test_fail_on_data_loss_is_lowered_only_when_it_departs_from_the_default(
    tmp_path: Path, env_dir: Path
) -> None:
    for value in (True, None):
        events = dict(EVENTS) if value is None else {**EVENTS, "fail_on_data_loss": value}
        result = check(tmp_path, env_dir, streaming(LIVE, extract=[events]))
        assert result.diagnostics == []
        assert "fail_on_data_loss" not in args(result, "events")
        assert "max_offsets_per_trigger" not in args(result, "events")


@pytest.mark.parametrize("mode", ["append", "upsert"])
@pytest.mark.parametrize(
    "sink",
    [
        {"type": "postgres", "connection": "warehouse", "table": "out"},
        {"type": "mysql", "connection": "warehouse", "table": "out"},
        {"type": "kafka", "connection": "events", "topic": "out"},
    ],
)
def test_databases_and_kafka_take_appends_and_upserts(
    tmp_path: Path, env_dir: Path, sink: dict[str, Any], mode: str
) -> None:
    if sink["type"] == "mysql":
        profiles = {**PROFILES, "warehouse": {**PROFILES["warehouse"], "system": "mysql"}}
        (env_dir / "dev.json").write_text(json.dumps({"connections": profiles}))
    load: dict[str, Any] = {**sink}
    if mode == "upsert":
        load.update(keys=["order_id"], sequence_by="ordered_at")
    result = check(tmp_path, env_dir, streaming(LIVE, sink=load, mode=mode))
    assert result.diagnostics == []


@pytest.mark.parametrize(
    "sink",
    [
        {"type": "files", "path": "/out", "format": "parquet"},
        {"type": "s3", "connection": "lake", "path": "s3a://curated/out/", "format": "parquet"},
    ],
)
def test_files_and_s3_take_appends(tmp_path: Path, env_dir: Path, sink: dict[str, Any]) -> None:
    profiles = {**PROFILES, "lake": {"system": "s3", "endpoint": "http://s3:9000"}}
    (env_dir / "dev.json").write_text(json.dumps({"connections": profiles}))
    result = check(tmp_path, env_dir, streaming(LIVE, sink=sink))
    assert result.diagnostics == []


def test_the_static_side_is_checked_as_in_batch(tmp_path: Path, env_dir: Path) -> None:
    # An aggregate and a full join are fine on data read once; only the stream is restricted.
    orders_per_customer = {
        "id": "orders_per_customer",
        "type": "aggregate",
        "input": "customers",
        "group_by": ["customer_id"],
        "aggregates": {"n": "count(*)"},
    }
    profile = {**join("customers", "orders_per_customer", "full"), "id": "profile"}
    doc = streaming(
        LIVE,
        orders_per_customer,
        profile,
        join("live", "profile", "left"),
        extract=[EVENTS, STATIC_CUSTOMERS],
    )
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == []
    assert args(result, "profile")["how"] == "full"


# --- E405 / E406: windows and aggregates over a stream --------------------------------------


def test_a_count_based_window_over_a_stream_is_rejected(tmp_path: Path, env_dir: Path) -> None:
    step = window(time=None, rows={"order_by": ["ordered_at"], "size": 100})
    d = only(check(tmp_path, env_dir, streaming(LIVE, step)), "E405")
    assert "total order" in d.message and "per_minute" in d.message and "live" in d.message
    assert "time" in d.hint


def test_an_event_time_window_over_a_stream_needs_a_watermark(
    tmp_path: Path, env_dir: Path
) -> None:
    step = window(time={"column": "ordered_at", "size": "1 minute"})
    result = check(tmp_path, env_dir, streaming(LIVE, step))
    d = only(result, "E406")
    assert "watermark" in d.message and "forever" in d.message and "per_minute" in d.message
    assert '"watermark"' in d.hint
    assert result.plan is None


TOTALS = {
    "id": "totals",
    "type": "aggregate",
    "input": "live",
    "group_by": ["customer_id"],
    "aggregates": {"revenue": "sum(amount)"},
}


def test_an_aggregate_over_a_stream_into_an_append_load_is_rejected(
    tmp_path: Path, env_dir: Path
) -> None:
    result = check(tmp_path, env_dir, streaming(LIVE, TOTALS))
    assert codes(result) == ["E406"]  # not E402: the table lets it through to say why
    d = only(result, "E406")
    assert "event-time watermark" in d.message and "totals" in d.message
    assert "upsert" in d.hint and "watermark" in d.hint


def test_an_aggregate_over_a_stream_may_be_upserted_in_update_mode(
    tmp_path: Path, env_dir: Path
) -> None:
    doc = streaming(LIVE, TOTALS, mode="upsert")
    doc["load"][0]["keys"] = ["customer_id"]
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == [] and result.plan is not None


def test_a_stream_stays_a_stream_through_a_failed_step(tmp_path: Path, env_dir: Path) -> None:
    broken = {**LIVE, "condition": "statos <> 'CANCELLED'"}
    step = window(time={"column": "ordered_at", "size": "1 minute"})
    assert codes(check(tmp_path, env_dir, streaming(broken, step))) == ["E302", "E406"]


# --- E407: joins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "right", "how"),
    [
        ("live", "customers", "inner"),
        ("live", "customers", "left"),
        ("live", "customers", "semi"),
        ("live", "customers", "anti"),
        ("customers", "live", "inner"),
        ("customers", "live", "right"),
    ],
)
def test_stream_static_joins_spark_can_run(
    tmp_path: Path, env_dir: Path, left: str, right: str, how: str
) -> None:
    doc = streaming(LIVE, join(left, right, how), extract=[EVENTS, STATIC_CUSTOMERS])
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == []
    assert args(result, "joined")["how"] == how


@pytest.mark.parametrize(
    ("left", "right", "how"),
    [
        ("live", "customers", "right"),
        ("live", "customers", "full"),
        ("customers", "live", "left"),
        ("customers", "live", "full"),
        ("customers", "live", "semi"),
        ("customers", "live", "anti"),
    ],
)
def test_a_stream_on_the_wrong_side_of_a_join_is_rejected(
    tmp_path: Path, env_dir: Path, left: str, right: str, how: str
) -> None:
    side = "left" if left == "live" else "right"
    doc = streaming(LIVE, join(left, right, how), extract=[EVENTS, STATIC_CUSTOMERS])
    result = check(tmp_path, env_dir, doc)
    d = only(result, "E407")
    assert d.param("how") == how and d.param("stream") == "live"
    assert f"on the {side}" in d.message and "whole stream" in d.message
    assert "joined" in d.message
    assert result.plan is None


PAYMENTS = {**EVENTS, "id": "payments", "topic": "etlc.payments"}
PAID = {
    "id": "paid",
    "type": "select",
    "input": "payments",
    "columns": {"order_id": "order_id", "paid_at": "ordered_at", "paid": "amount"},
}
WITHIN = {
    "left_time": "ordered_at",
    "right_time": "paid_at",
    "after": "1 hour",
    "watermark": "10 minutes",
}


def paid_join(how: str = "inner", **within: Any) -> dict[str, Any]:
    step = {**join("events", "paid", how=how, on="order_id")}
    if within:
        step["within"] = within
    return step


def test_a_stream_stream_join_needs_a_time_bound(tmp_path: Path, env_dir: Path) -> None:
    doc = streaming(PAID, paid_join(), extract=[EVENTS, PAYMENTS])
    d = only(check(tmp_path, env_dir, doc), "E407")
    assert "without a time bound" in d.message and "within" in d.hint


def test_a_time_bounded_stream_stream_join_is_lowered(tmp_path: Path, env_dir: Path) -> None:
    doc = streaming(PAID, paid_join(**WITHIN, before="5 minutes"), extract=[EVENTS, PAYMENTS])
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == []
    assert args(result, "joined")["within"] == {**WITHIN, "before": "5 minutes"}
    assert [f.name for f in result.plan.step("joined").schema.fields][-2:] == ["paid_at", "paid"]


@pytest.mark.parametrize(
    ("step", "code", "fragment"),
    [
        (paid_join("full", **WITHIN), "E407", "`full` join of two streams"),
        (paid_join(**{**WITHIN, "right_time": "paid"}), "E304", "not a timestamp"),
        (
            {
                "id": "joined",
                "type": "join",
                "left": "events",
                "right": "paid",
                "condition": "left.order_id = right.order_id",
                "within": WITHIN,
            },
            "E210",
            "needs the join's key columns",
        ),
    ],
)
def test_a_wrong_time_bound_is_an_error(
    tmp_path: Path, env_dir: Path, step: dict[str, Any], code: str, fragment: str
) -> None:
    result = check(tmp_path, env_dir, streaming(PAID, step, extract=[EVENTS, PAYMENTS]))
    d = only(result, code)
    assert fragment in d.message and result.plan is None


# --- E408: something to stream from, and no end to it -----------------------------------------


def test_a_streaming_pipeline_needs_a_kafka_extract(tmp_path: Path, env_dir: Path) -> None:
    orders = {**ORDERS, "path": "/d/orders.csv"}
    doc = streaming(extract=[orders, CUSTOMERS], load_input="orders")
    doc["transform"] = []
    result = check(tmp_path, env_dir, doc)
    d = only(result, "E408")
    assert "nothing to stream from" in d.message
    assert (d.span.line, d.span.col) == (3, 11)  # the "streaming" of "mode"
    assert codes(result) == ["E408"]  # unused `customers` is only a warning


def test_a_stream_has_no_ending_offsets(tmp_path: Path, env_dir: Path) -> None:
    events = {**EVENTS, "ending_offsets": "latest"}
    d = only(check(tmp_path, env_dir, streaming(LIVE, extract=[events])), "E408")
    assert "ending_offsets" in d.message and "no end" in d.message


# --- E409: a stream never overwrites ------------------------------------------------------------


@pytest.mark.parametrize(
    ("sink", "hint_upsert"),
    [
        ({"type": "postgres", "connection": "warehouse", "table": "out"}, True),
        ({"type": "files", "path": "/out", "format": "parquet"}, False),
        ({"type": "kafka", "connection": "events", "topic": "out"}, True),
    ],
)
def test_overwrite_is_rejected_in_streaming(
    tmp_path: Path, env_dir: Path, sink: dict[str, Any], hint_upsert: bool
) -> None:
    result = check(tmp_path, env_dir, streaming(LIVE, sink=sink, mode="overwrite"))
    assert codes(result) == ["E409"]  # for Kafka too: the stream is the reason, not the sink
    d = only(result, "E409")
    assert "appends or upserts" in d.message and "load_1_live" in d.message
    assert ("upsert" in d.hint) is hint_upsert


def test_upsert_on_plain_files_is_still_the_sinks_error(tmp_path: Path, env_dir: Path) -> None:
    sink = {"type": "files", "path": "/out", "format": "parquet", "keys": ["order_id"]}
    result = check(tmp_path, env_dir, streaming(LIVE, sink=sink, mode="upsert"))
    assert codes(result) == ["E401"]


# --- W203: streaming options in a batch pipeline --------------------------------------------------


def test_streaming_options_in_batch_are_warned_about_and_ignored(
    tmp_path: Path, env_dir: Path
) -> None:
    events = {
        **EVENTS,
        "ending_offsets": "latest",
        "max_offsets_per_trigger": 100,
        "fail_on_data_loss": False,
    }
    doc = streaming(LIVE, window(), extract=[events], pipeline_mode="batch")
    result = check(tmp_path, env_dir, doc)
    warnings = [d for d in result.diagnostics if d.code == "W203"]
    assert sorted(d.param("option") for d in warnings) == [
        "fail_on_data_loss",
        "max_offsets_per_trigger",
        "watermark",
    ]
    assert all(not d.is_error and "batch" in d.message for d in warnings)
    assert result.diagnostics == warnings
    assert result.plan is not None  # a warning does not stop compilation
    source = args(result, "events")
    assert "max_offsets_per_trigger" not in source and "fail_on_data_loss" not in source
    assert source["ending_offsets"] == "latest"
    assert "watermark" not in args(result, "per_minute")


def test_batch_rules_are_unchanged_for_batch_pipelines(tmp_path: Path, env_dir: Path) -> None:
    step = window(time=None, rows={"order_by": ["ordered_at"], "size": 100})
    totals = {
        "id": "totals",
        "type": "aggregate",
        "input": "per_minute",
        "aggregates": {"n": "count(*)"},
    }
    doc = streaming(LIVE, step, totals, sink={"type": "files", "path": "/o", "format": "csv"})
    doc["mode"] = "batch"
    doc["load"][0]["mode"] = "overwrite"
    assert check(tmp_path, env_dir, doc).diagnostics == []


def test_a_topic_pattern_replaces_the_topic(tmp_path: Path, env_dir: Path) -> None:
    pattern = {k: v for k, v in EVENTS.items() if k != "topic"} | {"topic_pattern": r"orders\..*"}
    result = check(tmp_path, env_dir, streaming(LIVE, extract=[pattern]))
    assert result.diagnostics == []
    assert args(result, "events")["topic_pattern"] == r"orders\..*"
    assert "topic" not in args(result, "events")


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        ({"topic_pattern": "orders.*"}, "E210", "exactly one of"),
        ({"topic": None}, "E210", "exactly one of"),
        ({"topic": None, "topic_pattern": "orders(["}, "E216", "not a regular expression Java"),
    ],
)
def test_a_kafka_extract_reads_one_topic_or_one_pattern(
    tmp_path: Path, env_dir: Path, change: dict[str, Any], code: str, fragment: str
) -> None:
    step = {k: v for k, v in {**EVENTS, **change}.items() if v is not None}
    result = check(tmp_path, env_dir, streaming(LIVE, extract=[step]))
    d = only(result, code)
    assert fragment in d.message and result.plan is None


def test_a_static_side_may_be_refreshed_in_a_stream_and_only_there(
    tmp_path: Path, env_dir: Path
) -> None:
    refreshed = {**STATIC_CUSTOMERS, "refresh": "10 minutes"}
    doc = streaming(LIVE, join("live", "customers"), extract=[EVENTS, refreshed])
    result = check(tmp_path, env_dir, doc)
    assert result.diagnostics == []
    assert result.plan.step("customers").refresh == "10 minutes"
    assert result.plan.step("events").refresh is None
    batch = check(tmp_path, env_dir, {**doc, "mode": "batch"})
    assert only(batch, "W203").param("option") == "refresh"
    assert batch.plan.step("customers").refresh is None


def test_the_driver_carries_the_refresh(tmp_path: Path, env_dir: Path) -> None:
    from etlc.codegen.render import render_driver

    refreshed = {**STATIC_CUSTOMERS, "refresh": "10 minutes"}
    result = check(
        tmp_path, env_dir, streaming(LIVE, join("live", "customers"), extract=[EVENTS, refreshed])
    )
    assert 'refresh="10 minutes"' in render_driver(result.plan, tmp_path)


def test_every_policy_is_allowed_on_a_stream_before_any_aggregate(
    tmp_path: Path, env_dir: Path
) -> None:
    def expecting(policy: str) -> dict[str, Any]:
        rule = {"name": "modest", "check": "amount < 1000", "policy": policy}
        return {**LIVE, "expect": {"rules": [rule]}}

    for policy in ("fail", "warn", "drop", "quarantine"):
        result = check(tmp_path, env_dir, streaming(expecting(policy)))
        assert result.ok, (policy, result.diagnostics)
        [rule] = result.plan.step("live").expectations
        assert rule.policy == policy
    # After a window its groups are final (the watermark closes them): they may be set aside.
    held = {"name": "busy", "check": "orders < 100", "policy": "quarantine"}
    closed = window(expect={"rules": [held]})
    assert check(tmp_path, env_dir, streaming(LIVE, closed)).ok


def test_on_invalid_quarantine_is_allowed_on_a_stream(tmp_path: Path, env_dir: Path) -> None:
    for policy in ("quarantine", "drop"):
        events = {**EVENTS, "on_invalid": policy}
        result = check(tmp_path, env_dir, streaming(LIVE, extract=[events]))
        assert result.ok, result.diagnostics
        assert result.plan.step("events").on_invalid == policy


def test_quarantine_on_or_after_a_stream_aggregate_is_refused_where_it_is_written(
    tmp_path: Path, env_dir: Path
) -> None:
    held = {"name": "modest", "check": "revenue < 1000"}
    totals = {**TOTALS, "expect": {"policy": "quarantine", "rules": [held]}}
    doc = streaming(LIVE, totals, mode="upsert")
    doc["load"][0]["keys"] = ["customer_id"]
    result = check(tmp_path, env_dir, doc)
    refused = only(result, "E410")
    assert refused.param("rule") == "modest" and "totals" in refused.message
    assert "final" in refused.message and "before the `totals` step" in refused.hint
    line = result.source.splitlines()[refused.span.line - 1]
    at = line[refused.span.col - 1 : refused.span.end_col - 1]
    assert at == '"quarantine"', line  # the block's policy, the one the rule takes
    # Further down, on a rule's own policy, too; `drop` there is fine.
    after = {"id": "large", "type": "filter", "input": "totals", "condition": "revenue > 0"}
    quarantined = {"name": "cap", "check": "revenue < 10", "policy": "quarantine"}
    doc = streaming(LIVE, TOTALS, {**after, "expect": {"rules": [quarantined]}}, mode="upsert")
    doc["load"][0]["keys"] = ["customer_id"]
    assert only(check(tmp_path, env_dir, doc), "E410").param("rule") == "cap"
    doc["transform"][2]["expect"]["rules"][0]["policy"] = "drop"
    assert check(tmp_path, env_dir, doc).ok


def test_a_quarantined_load_of_a_streams_static_side_is_refused_of_the_stream_taken(
    tmp_path: Path, env_dir: Path
) -> None:
    held = {"name": "known", "check": "segment IS NOT NULL", "policy": "quarantine"}
    customers = {**STATIC_CUSTOMERS, "expect": {"rules": [held]}}
    doc = streaming(join("events", "customers"), extract=[EVENTS, customers])
    load = {"type": "postgres", "connection": "warehouse", "table": "held", "mode": "append"}
    doc["load"].append({**load, "id": "held", "input": "customers", "quarantined": True})
    refused = only(check(tmp_path, env_dir, doc), "E218")
    assert "static side" in refused.message and "etlc.quarantine_dir" in refused.message
    # The stream's own records set aside: a query of its own takes them.
    doc["extract"] = [{**EVENTS, "on_invalid": "quarantine"}, STATIC_CUSTOMERS]
    doc["load"][-1]["input"] = "events"
    result = check(tmp_path, env_dir, doc)
    assert result.ok, result.diagnostics
    assert result.plan.step("held").quarantined


def test_quarantine_on_a_window_an_upsert_reads_is_refused_and_an_append_is_not(
    tmp_path: Path, env_dir: Path
) -> None:
    held = {"name": "busy", "check": "orders < 100", "policy": "quarantine"}
    closed = window(expect={"rules": [held]})
    doc = streaming(LIVE, closed, mode="upsert")
    doc["load"][0]["keys"] = ["window_start", "customer_id"]
    refused = only(check(tmp_path, env_dir, doc), "E410")
    assert "the upsert `load_1_per_minute` reads" in refused.message
    assert refused.param("rule") == "busy"
    assert check(tmp_path, env_dir, streaming(LIVE, closed)).ok  # append: closed windows only


def test_a_quarantine_rule_of_a_stream_that_reads_the_clock_is_refused(
    tmp_path: Path, env_dir: Path
) -> None:
    def expecting(policy: str, check_: str) -> dict[str, Any]:
        return {
            **LIVE,
            "expect": {"rules": [{"name": "recent", "check": check_, "policy": policy}]},
        }

    for clock in (
        "to_date(ordered_at) >= current_date()",
        "unix_timestamp() - unix_timestamp(ordered_at) < 86400",
    ):
        refused = only(check(tmp_path, env_dir, streaming(expecting("quarantine", clock))), "E410")
        assert "reads the clock" in refused.message and refused.param("rule") == "recent"
    # One query decides a drop; a batch reads the clock once.
    assert check(tmp_path, env_dir, streaming(expecting("drop", clock))).ok
    batch = streaming(expecting("quarantine", clock), pipeline_mode="batch")
    assert check(tmp_path, env_dir, batch).ok
