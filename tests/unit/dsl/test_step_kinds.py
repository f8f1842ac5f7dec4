"""The step kinds' table: every AST node the builder makes has exactly one kind to check it."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etlc.codegen.render import render_driver
from etlc.dsl import ast, checker
from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.steps import builtin_specs, node_class, step_kinds
from tests.unit import kind_example
from tests.unit.plugin_install import installed

ROOT = Path(__file__).resolve().parents[3]


def test_every_row_of_the_plugin_table_has_a_node_and_a_kind() -> None:
    for spec in builtin_specs():
        node = node_class(spec.role, spec.type)
        assert node is not None and node.role == spec.role, spec
        assert node in step_kinds(), node
    assert ast.PluginStep in step_kinds()  # third-party steps without a kind of their own


def test_each_kind_is_declared_in_its_own_module_of_the_steps_package() -> None:
    for node, kind in step_kinds().items():
        assert kind.node is node
        assert inspect.getmodule(kind.check).__name__.startswith("etlc.dsl.steps."), node


def test_a_kinds_check_is_typed_by_its_node() -> None:
    # The check's annotation names the node class it is registered for (or a base of it):
    # the dispatch is by class, never by a method's name.
    for node, kind in step_kinds().items():
        hints = inspect.get_annotations(kind.check, eval_str=True)
        assert issubclass(node, hints["step"]), (node, hints["step"])


@pytest.fixture
def noop_kind(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with installed(monkeypatch, "noop", kind_example.KIND):
        yield


def _check(tmp_path: Path, load: dict[str, Any]) -> checker.CheckResult:
    doc = {
        "name": "dry_run",
        "extract": [
            {
                "id": "orders",
                "type": "files",
                "path": "/in",
                "format": "csv",
                "schema": "order.avsc",
            }
        ],
        "load": [load],
    }
    path = tmp_path / "dry_run.json"
    path.write_text(json.dumps(doc, indent=2))
    return check_file(path, CheckOptions(schema_dirs=(ROOT / "schemas" / "avro",)))


def test_a_plugin_kind_is_checked_and_compiled_like_a_built_in(
    noop_kind: None, tmp_path: Path
) -> None:
    assert step_kinds()[kind_example.NoopLoad] is kind_example.KIND
    result = _check(tmp_path, {"type": "noop", "input": "orders", "mode": "append"})
    assert result.ok, result.diagnostics
    [load] = [s for s in result.plan.steps if s.role == "load"]
    assert (load.impl, load.mode, dict(load.args)) == (
        "tests.unit.kind_example:NoopLoader",
        "append",
        {"label": "load_1_orders"},
    )
    driver = render_driver(result.plan, Path("generated"))
    assert "from tests.unit.kind_example import NoopLoader" in driver
    assert 'loader=NoopLoader(\n                    label="load_1_orders",' in driver
    compile(driver, "dry_run.py", "exec")


def test_a_plugin_kinds_own_check_and_its_rows_capabilities_apply(
    noop_kind: None, tmp_path: Path
) -> None:
    unknown = _check(
        tmp_path, {"type": "noop", "input": "orders", "mode": "append", "require": ["nope"]}
    )
    assert [(d.code, d.param("column")) for d in unknown.diagnostics] == [("E302", "nope")]
    upsert = _check(tmp_path, {"type": "noop", "input": "orders", "mode": "upsert"})
    assert [(d.code, d.param("sink")) for d in upsert.diagnostics] == [("E401", "noop")]
    shape = _check(tmp_path, {"type": "noop", "input": "orders", "mode": "append", "extra": 1})
    assert [d.code for d in shape.diagnostics] == ["E101"]


def test_without_the_plugin_its_type_is_unknown(tmp_path: Path) -> None:
    result = _check(tmp_path, {"type": "noop", "input": "orders", "mode": "append"})
    [unknown] = [d for d in result.diagnostics if d.is_error]
    assert (unknown.code, unknown.param("type")) == ("E105", "noop")


def test_the_plugin_kinds_strategy_runs_its_input_and_writes_nothing(spark: Any) -> None:
    result = kind_example.NoopLoader("dry").load(spark.range(1000), "append")
    assert result.details == {"label": "dry"}
