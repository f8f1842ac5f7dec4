"""Column edges in `etlc explain`'s DAG formats (etlc/codegen/explain_columns.py).

Graphviz renders every example's column graph in tests/integration/test_explain.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.codegen import explain, explain_columns
from etlc.dsl.plan import Plan
from tests.unit.codegen.test_explain import EXAMPLES, ROOT, plan_of
from tests.unit.security.test_generated_code import poisoned_lineage

runner = CliRunner()
DEMO = ROOT / "pipelines" / "orders_by_country.json"


def test_revenue_with_vat_is_drawn_from_the_orders_amount() -> None:
    graph = explain_columns.column_graph(plan_of(DEMO), "revenue_with_vat")
    assert set(graph.edges) == {
        (("orders", "amount"), ("live_orders", "amount"), "identity"),
        (("live_orders", "amount"), ("enriched", "amount"), "identity"),
        (("enriched", "amount"), ("with_vat", "amount_with_vat"), "transformation"),
        (("with_vat", "amount_with_vat"), ("by_country", "revenue_with_vat"), "aggregation"),
        (("by_country", "revenue_with_vat"), ("load_1_by_country", "revenue_with_vat"), "identity"),
        (("enriched", "country"), ("with_vat", "country"), "identity"),
        (("customers", "country"), ("enriched", "country"), "identity"),
        (("orders", "customer_id"), ("live_orders", "customer_id"), "identity"),
    }
    assert set(graph.rows) == {
        (("with_vat", "country"), "by_country", "group_by"),
        (("live_orders", "customer_id"), "enriched", "join"),
        (("customers", "customer_id"), "enriched", "join"),
        (("orders", "status"), "live_orders", "filter"),
    }
    assert list(graph.columns) == [
        "orders",
        "customers",
        "live_orders",
        "enriched",
        "with_vat",
        "by_country",
        "load_1_by_country",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_edge_joins_columns_that_are_drawn(path: Path) -> None:
    plan = plan_of(path)
    graph = explain_columns.column_graph(plan)
    drawn = {(s, c) for s, cols in graph.columns.items() for c in cols}
    for load in plan.by_role("load"):
        assert {(load.id, c) for c in load.schema.columns()} <= drawn
    assert {e[0] for e in graph.edges} | {e[1] for e in graph.edges} <= drawn
    assert {r[0] for r in graph.rows} <= drawn and {r[1] for r in graph.rows} <= set(graph.columns)
    mermaid = explain_columns.mermaid(plan, graph).splitlines()
    ids = {m.group(1) for line in mermaid if (m := re.match(r"    (c\d+)\[", line))}
    for line in mermaid:
        if "-->" in line:
            a, b = re.fullmatch(r'  (c\d+) -->\|"[^"]*"\| (c\d+)', line).groups()  # type: ignore[union-attr]
            assert {a, b} <= ids


def hostile(plan: Plan, text: str) -> Plan:
    """Every column name in the plan's lineage and schemas prefixed with ``text``."""
    steps = []
    for step in plan.steps:
        schema = step.schema
        fields = tuple(dataclasses.replace(f, name=text + f.name) for f in schema.fields)
        steps.append(
            dataclasses.replace(
                step,
                lineage=poisoned_lineage(step.lineage, text),
                schema=dataclasses.replace(schema, fields=fields),
            )
        )
    return dataclasses.replace(plan, steps=tuple(steps))


@pytest.mark.parametrize(
    "text", ['"]; x -> y [label="', '"] --> c0 %%{init: {}}%%', "<b>&amp;#quot;\\", "\n\u202e"]
)
def test_a_column_name_cannot_add_a_node_an_edge_or_markup(text: str) -> None:
    plan = hostile(plan_of(DEMO), text)
    graph = explain_columns.column_graph(plan)
    dot = explain_columns.dot(plan, graph).splitlines()
    quoted = r'"(?:[^"\\]|\\.)*"'
    shapes = [
        rf"  {quoted} \[label={quoted}\];",
        rf"    {quoted} \[label={quoted}\];",
        rf"  {quoted} -> {quoted} \[label={quoted}\];",
        rf'  {quoted} -> {quoted} \[style=dashed, label="(?:[^"\\]|\\.)*", lhead=cluster_s_\w+\];',
        rf"    label={quoted};",
        r"  subgraph cluster_s_\w+ \{",
        r"  \}",
    ]
    body = dot[5:-1]
    assert all(any(re.fullmatch(s, line) for s in shapes) for line in body), body
    edges = [line for line in body if any(re.fullmatch(s, line) for s in shapes[2:4])]
    assert len(edges) == len(graph.edges) + len(graph.rows)
    mermaid = explain_columns.mermaid(plan, graph)
    assert "%" not in mermaid and "<b>" not in mermaid
    assert all(line.count('"') in (2, 4) for line in mermaid.splitlines()[1:] if line != "  end")
    page = explain.page(plan)
    assert "<b>" not in page and "\u202e" not in page and "\n" not in page.replace("\n", "", 1)[:-1]
    if "<b>" in text:
        assert "&lt;b&gt;" in page


def test_the_command_draws_column_edges_and_says_which_formats_can() -> None:
    made = runner.invoke(app, ["explain", "--format", "dot", "--columns", str(DEMO)])
    assert made.exit_code == 0 and made.stdout.startswith('digraph "orders_by_country columns"')
    one = runner.invoke(app, ["explain", "--format", "mermaid", "--lineage", "country", str(DEMO)])
    assert one.exit_code == 0 and '["country"]' in one.stdout
    text = runner.invoke(app, ["explain", "--columns", str(DEMO)])
    assert text.exit_code == 1 and "--columns draws dot or mermaid, not text" in text.output
    page = runner.invoke(app, ["explain", "--format", "html", "--lineage", "country", str(DEMO)])
    assert page.exit_code == 1 and "not html" in page.output
    missing = runner.invoke(app, ["explain", "--format", "dot", "--lineage", "nope", str(DEMO)])
    assert (
        missing.exit_code == 1 and "no load of orders_by_country writes a column" in missing.output
    )


def test_the_page_ends_with_the_column_edges() -> None:
    page = explain.page(plan_of(DEMO))
    section = page[page.index('<section id="column-lineage">') :]
    assert "<td><code>orders.amount</code></td><td>identity</td>" in section
    assert "<td>filter (rows)</td><td><code>live_orders</code></td>" in section
