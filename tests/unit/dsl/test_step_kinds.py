"""The step kinds' table: every AST node the builder makes has exactly one kind to check it."""

from __future__ import annotations

import inspect

from etlc.dsl import ast
from etlc.dsl.steps import step_kinds


def test_every_step_node_has_a_kind() -> None:
    nodes = {*ast.STEP_NODES.values(), ast.PluginStep}
    assert nodes <= set(step_kinds()), nodes - set(step_kinds())


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
