"""Column lineage from the compiler: each step kind's own, traced through whole plans."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.codegen import explain_lineage
from etlc.dsl.checker import CheckOptions, check_file, default_options
from etlc.dsl.lineage import (
    ColumnSource,
    Hop,
    LineageError,
    StepLineage,
    Traced,
    trace,
)
from etlc.dsl.plan import Plan

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()


def plan(name: str) -> Plan:
    path = ROOT / "pipelines" / f"{name}.json"
    result = check_file(path, default_options(path))
    assert result.plan is not None, result.diagnostics
    return result.plan


def test_revenue_with_vat_comes_from_the_orders_amount_through_a_derive_and_an_aggregate() -> None:
    p = plan("orders_by_country")
    [load] = p.by_role("load")
    traced = trace(p.steps, load.id, "revenue_with_vat")
    [origin] = traced.origins
    assert (origin.dataset, origin.column, origin.known) == ("orders", "amount", True)
    assert [(h.kind, h.step, h.how) for h in reversed(origin.path)] == [
        ("filter", "live_orders", "identity"),
        ("join", "enriched", "identity"),
        ("derive", "with_vat", "transformation"),
        ("aggregate", "by_country", "aggregation"),
        ("files", load.id, "identity"),
    ]
    # What decided its rows, as the extracts' columns: the filter, the join's keys, the
    # group key (a customers column, through the join and the derive).
    assert rows(traced) == ROWS


ROWS = {
    ("live_orders", "orders", "status", "filter"),
    ("enriched", "orders", "customer_id", "join"),
    ("enriched", "customers", "customer_id", "join"),
    ("by_country", "customers", "country", "group_by"),
}


def rows(traced: Traced) -> set[tuple[str, str, str, str]]:
    return {(r.step, r.origin.dataset, r.origin.column, r.how) for r in traced.rows}


def test_country_comes_from_the_customers_through_the_join() -> None:
    p = plan("orders_by_country")
    [origin] = trace(p.steps, p.by_role("load")[0].id, "country").origins
    assert (origin.dataset, origin.column) == ("customers", "country")
    assert [h.kind for h in reversed(origin.path)] == ["join", "derive", "aggregate", "files"]
    assert {h.how for h in origin.path} == {"identity"}


def test_a_count_of_rows_has_no_column_origin_only_the_rows_deciding_it() -> None:
    p = plan("orders_by_country")
    traced = trace(p.steps, "by_country", "orders")
    assert traced.origins == ()
    assert rows(traced) == ROWS  # every filter, join and group upstream counts


def test_a_join_key_comes_from_both_sides_and_a_condition_decides_rows() -> None:
    p = plan("join_segments")
    key = {(o.dataset, o.column) for o in trace(p.steps, "business_orders", "business_id").origins}
    assert key == {("customers", "customer_id")}  # renamed in a select on the way
    decided = rows(trace(p.steps, "business_orders", "order_id"))
    assert ("business_orders", "orders", "status", "join") in decided  # in the join's condition
    # The filter on the other side of the inner join decides which orders survive it.
    assert ("business_customers", "customers", "segment", "filter") in decided
    anti = p.step("orders_without_customer").lineage
    assert anti is not None and anti.sources("customer_id") == (
        ColumnSource("orders", "customer_id", "identity"),
    )  # an anti join keeps none of the right side's values


def test_windows_say_what_frames_them() -> None:
    p = plan("window_orders")
    hourly = p.step("hourly").lineage
    assert hourly is not None
    assert hourly.sources("window_start") == (
        ColumnSource("orders", "ordered_at", "transformation"),
    )
    assert ColumnSource("orders", "ordered_at", "window") in hourly.rows
    every = p.step("every_100").lineage
    assert every is not None
    assert {s.column for s in every.sources("window_index")} == {"ordered_at", "order_id"}


def test_a_select_copies_or_computes_each_column() -> None:
    slim = plan("select_orders").step("slim").lineage
    assert slim is not None
    assert slim.sources("id") == (ColumnSource("orders", "order_id", "identity"),)
    assert slim.sources("cents") == (ColumnSource("orders", "amount", "transformation"),)


def test_a_trace_stops_at_a_jvm_step_it_cannot_see_into() -> None:
    p = plan("orders_latest_jvm")
    [load] = p.by_role("load")
    origins = trace(p.steps, load.id, "amount").origins
    assert [(o.dataset, o.known) for o in origins] == [("latest", False)]
    assert origins[0].path == (Hop(load.id, load.type, "amount", "identity"),)
    shown = explain_lineage.text(p, "amount")
    assert "sources unknown to the compiler" in shown[1]


def test_explain_lineage_prints_text_and_json() -> None:
    source = str(ROOT / "pipelines" / "orders_by_country.json")
    result = runner.invoke(app, ["explain", source, "--lineage", "revenue_with_vat"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "load_1_by_country.revenue_with_vat (load files)"
    assert lines[1].startswith("  from orders.amount: filter live_orders (identity) -> ")
    args = ["explain", source, "--lineage", "by_country.country", "--format", "json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    [answer] = json.loads(result.output)
    assert answer["origins"] == [
        {
            "dataset": "customers",
            "column": "country",
            "known": True,
            "through": [
                {"step": "enriched", "type": "join", "column": "country", "how": "identity"},
                {"step": "with_vat", "type": "derive", "column": "country", "how": "identity"},
                {"step": "by_country", "type": "aggregate", "column": "country", "how": "identity"},
            ],
        }
    ]
    # The DAG's JSON carries each step's own lineage.
    dag = json.loads(runner.invoke(app, ["explain", source, "--format", "json"]).output)
    lineage = {s["id"]: s["lineage"] for s in dag["steps"]}
    assert lineage["orders"] is None and lineage["live_orders"]["rows"] == [
        {"dataset": "orders", "column": "status", "how": "filter"}
    ]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--lineage", "nope"], "no load of orders_by_country writes a column `nope`"),
        (["--lineage", "ghost.amount"], "no step `ghost`"),
        (["--lineage", "orders.nope"], "step `orders` has no column `nope` (it has order_id"),
        (
            ["--lineage", "country", "--format", "html"],
            "--lineage prints text, json, dot or mermaid",
        ),
    ],
)
def test_a_column_the_plan_does_not_have_is_named(args: list[str], said: str) -> None:
    source = str(ROOT / "pipelines" / "orders_by_country.json")
    result = runner.invoke(app, ["explain", source, *args])
    assert result.exit_code == 1
    assert said in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("how", "sources"),
    [
        ("inner", {("live_orders", "identity")}),
        ("left", {("live_orders", "identity")}),
        ("right", {("customers", "identity")}),
        ("full", {("live_orders", "transformation"), ("customers", "transformation")}),
    ],
)
def test_a_join_key_comes_from_the_side_the_runtime_takes_it_from(
    tmp_path: Path, how: str, sources: set[tuple[str, str]]
) -> None:
    doc = json.loads((ROOT / "pipelines" / "orders_by_country.json").read_text())
    doc["transform"][1]["how"] = how
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    options = CheckOptions((ROOT / "schemas" / "avro",), ROOT / "pipelines" / "env")
    result = check_file(path, options)
    assert result.plan is not None, result.diagnostics
    lineage = result.plan.step("enriched").lineage
    assert lineage is not None
    assert {(s.dataset, s.how) for s in lineage.sources("customer_id")} == sources


@dataclass(frozen=True)
class Made:
    id: str
    role: str
    type: str
    inputs: tuple[str, ...]
    lineage: StepLineage | None


def mixing(steps: int) -> list[Made]:
    """An extract, then ``steps`` derives that each make both columns of both."""
    made = [Made("src", "extract", "files", (), None)]
    for n in range(1, steps + 1):
        before = made[-1].id
        both = [ColumnSource(before, c, "transformation") for c in ("a", "b")]
        made.append(
            Made(f"d{n}", "transform", "derive", (before,), StepLineage.of({"a": both, "b": both}))
        )
    return made


def test_routes_that_fan_out_and_meet_again_are_traced_once() -> None:
    steps = mixing(2000)  # 2^2000 routes, if each were followed; deeper than the stack
    traced = trace(steps, "d2000", "a")
    assert [(o.dataset, o.column) for o in traced.origins] == [("src", "a"), ("src", "b")]
    assert len(traced.origins[0].path) == 2000


def test_a_trace_of_what_the_plan_does_not_have_is_an_error() -> None:
    steps = mixing(2)
    with pytest.raises(LineageError, match="no step `ghost`"):
        trace(steps, "ghost", "a")
    with pytest.raises(LineageError, match="step `d2` has no column `z`"):
        trace(steps, "d2", "z")
    # A cycle (no checked plan has one) ends instead of looping.
    loop = StepLineage.of({"a": [ColumnSource("x", "a", "identity")]})
    assert trace([Made("x", "transform", "derive", ("x",), loop)], "x", "a").origins == ()
