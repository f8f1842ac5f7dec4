"""`etlc explain --format text|json|dot|mermaid` (etlc/codegen/explain.py).

Graphviz itself renders every example's DOT in tests/integration/test_explain.py.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.codegen import explain
from etlc.codegen.literals import RenderError
from etlc.dsl.checker import check_file, default_options
from etlc.dsl.plan import Plan
from etlc.project import find_project

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(ROOT.glob("pipelines/*.json"))
runner = CliRunner()


def plan_of(path: Path) -> Plan:
    result = check_file(path, default_options(path, find_project(path.parent)))
    assert result.plan is not None, result.diagnostics
    return result.plan


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_has_a_node_per_step_and_an_edge_per_input(path: Path) -> None:
    plan = plan_of(path)
    edges = sum(len(s.inputs) for s in plan.steps)
    dot = explain.dot(plan).splitlines()
    assert dot[0] == f'digraph "{plan.name}" {{' and dot[-1] == "}"
    assert len([line for line in dot if "[shape=" in line]) == len(plan.steps)
    assert len([line for line in dot if " -> " in line]) == edges
    mermaid = explain.mermaid(plan).splitlines()
    assert mermaid[0] == "flowchart LR"
    assert len([line for line in mermaid if " --> " in line]) == edges
    doc = json.loads(explain.render("json", plan))
    assert [s["id"] for s in doc["steps"]] == [s.id for s in plan.steps]
    assert doc["retry"] == {"max_retries": plan.max_retries, "delay_seconds": plan.delay_seconds}


def test_json_holds_targets_expressions_keys_and_checks() -> None:
    doc = json.loads(explain.render("json", plan_of(ROOT / "pipelines" / "customer_revenue.json")))
    steps = {s["id"]: s for s in doc["steps"]}
    assert steps["customers"]["options"]["connection"] == "crm"
    assert steps["orders"]["options"]["path"] == "${data_dir}/orders/*.csv"
    assert steps["live"]["options"] == {"condition": "status <> 'CANCELLED'"}
    assert steps["revenue"]["options"]["aggregates"]["revenue"] == "SUM(amount)"
    load = steps["load_1_revenue"]
    assert (load["mode"], load["options"]["keys"], load["columns"]) == (
        "upsert",
        ["customer_id"],
        None,
    )
    checks = {c["name"]: c["predicate"] for c in steps["orders"]["checks"]}
    assert "status IN ('NEW', 'PAID', 'SHIPPED', 'CANCELLED')" in checks["enum:status"]
    assert doc["jars"] and doc["pipeline"] == "customer_revenue"


def test_json_and_text_show_each_expectation_with_its_policy() -> None:
    plan = plan_of(ROOT / "pipelines" / "orders_quality.json")
    steps = {s["id"]: s for s in json.loads(explain.render("json", plan))["steps"]}
    assert steps["orders"]["expectations"] == [
        {"name": "small_order", "check": "NOT (amount < 900) IS FALSE", "policy": "drop"},
        {"name": "has_coupon", "check": "NOT (NOT coupon IS NULL) IS FALSE", "policy": "warn"},
    ]
    assert steps["load_1_paid"]["expectations"] == []
    assert "    expect positive_amount (fail)" in explain.text(plan)


def test_text_shows_targets_and_keys() -> None:
    lines = explain.text(plan_of(ROOT / "pipelines" / "customer_revenue.json"))
    assert "    connection warehouse, table customer_revenue, keys (customer_id)" in lines
    assert "    group_by (customer_id, country), aggregates (revenue, orders, last_order)" in lines


def hostile_project(tmp_path: Path) -> Path:
    """A definition whose load path tries to close DOT's and Mermaid's quotes."""
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    shutil.copytree(ROOT / "pipelines" / "env", tmp_path / "pipelines" / "env")
    doc = json.loads((ROOT / "pipelines" / "filter_orders.json").read_text(encoding="utf-8"))
    doc["load"][0]["path"] = '/out"]; "x" -> "y" [label="#quot;<b>%%{init: {}}%%\\\\'
    doc["description"] = "hostile"
    path = tmp_path / "pipelines" / "filter_orders.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_a_label_cannot_close_its_quotes(tmp_path: Path) -> None:
    plan = plan_of(hostile_project(tmp_path))
    dot = explain.dot(plan)
    [node] = [line for line in dot.splitlines() if line.startswith('  "load_1_large_paid"')]
    # Every quote inside the label is escaped: the line holds exactly one attribute list.
    assert re.fullmatch(r'  "load_1_large_paid" \[shape=folder, label="(?:[^"\\]|\\.)*"\];', node)
    edges = [line for line in dot.splitlines() if re.fullmatch(r'  "\w+" -> "\w+";', line)]
    assert len(edges) == 2 and len(dot.splitlines()) == 3 + 3 + 2 + 1  # head, nodes, edges, end
    mermaid = explain.mermaid(plan)
    [load] = [line for line in mermaid.splitlines() if line.startswith("  s_load_1_large_paid")]
    assert load.count('"') == 2 and "#35;quot;" in load and "#lt;b#gt;" in load
    # Mermaid reads `%%{...}%%` anywhere as its configuration: no `%` survives.
    assert "%" not in mermaid and "#37;#37;{init" in load
    assert all(line.isprintable() for line in explain.text(plan))


def test_a_node_id_that_is_no_identifier_is_a_bug() -> None:
    with pytest.raises(RenderError, match="not a step id"):
        explain.node_id('a"b')
    with pytest.raises(ValueError, match="no such explain format"):
        explain.render("svg", plan_of(ROOT / "pipelines" / "filter_orders.json"))


@pytest.mark.parametrize("fmt", explain.FORMATS)
def test_the_command_prints_each_format(fmt: str) -> None:
    result = runner.invoke(
        app, ["explain", "--format", fmt, str(ROOT / "pipelines" / "orders_by_country.json")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()


def test_the_html_page_is_self_contained_and_escapes_the_definition(tmp_path: Path) -> None:
    plan = plan_of(hostile_project(tmp_path))
    page = explain.page(plan)
    assert page.startswith("<!DOCTYPE html>") and page.count('<g class="node"') == len(plan.steps)
    assert page.count('<path class="edge"') == sum(len(s.inputs) for s in plan.steps)
    # Nothing is fetched: no URL but the SVG namespace, and a policy that forbids loading.
    assert re.findall(r"https?://[^\"' ]+", page) == ["http://www.w3.org/2000/svg"]
    assert "default-src 'none'" in page
    # The hostile path's markup arrives as text.
    assert "<b>" not in page and "&lt;b&gt;" in page
    assert 'label="#quot;' not in page and "&quot;" in page


def test_columns_follow_the_deepest_input() -> None:
    plan = plan_of(ROOT / "pipelines" / "customer_revenue.json")
    place = explain._layers(plan)
    assert place["orders"] == (0, 0) and place["customers"] == (0, 1)
    assert place["live"] == (1, 0) and place["enriched"] == (2, 0)
    assert place["load_1_revenue"] == (4, 0)
