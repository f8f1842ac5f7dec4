"""From the positioned JSON tree to the AST: the pipeline and one node per step.

Only steps whose shape the definition schema accepted are built; a broken step still
reserves its id, so a reference to it is not reported again as unknown.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from etlc.dsl import ast
from etlc.dsl.diagnostics import Span
from etlc.dsl.steps import node_class
from etlc.dsl.tree import JArray, JObject, JScalar, JValue

SECTIONS = ("extract", "transform", "load")
StepPath = tuple[str, int]  # (section, index)


def step_path(root: JObject, span: Span) -> StepPath | None:
    """Which step a span falls in, to skip building broken steps."""
    for section in SECTIONS:
        arr = root.get(section)
        if isinstance(arr, JArray):
            # Steps are in source order and do not overlap: only the last one starting
            # before the span can hold it (a scan made lint quadratic in the steps).
            start = (span.line, span.col)
            i = bisect_right(arr.items, start, key=lambda s: (s.span.line, s.span.col)) - 1
            if i >= 0 and _contains(arr.items[i].span, span):
                return (section, i)
    return None


def build_pipeline(
    file: str, root: JObject, broken: set[StepPath | None]
) -> tuple[ast.Pipeline, set[str]]:
    """The pipeline of the steps not in ``broken``, and the ids the broken ones reserve."""
    reserved: set[str] = set()
    sections: dict[str, list[ast.Step]] = {s: [] for s in SECTIONS}
    for section, steps in sections.items():
        arr = root.get(section)
        if not isinstance(arr, JArray):
            continue
        for i, item in enumerate(arr.items):
            if not isinstance(item, JObject):
                continue
            if (section, i) in broken:
                node = item.get("id")
                if isinstance(node, JScalar) and isinstance(node.value, str):
                    reserved.add(node.value)
                continue
            steps.append(_build_step(section, i, item))
    mode_node = root.get("mode")
    pipeline = ast.Pipeline(
        file,
        _name(root),
        str(mode_node.value) if isinstance(mode_node, JScalar) else "batch",
        tuple(sections["extract"]),
        tuple(sections["transform"]),
        tuple(sections["load"]),
        _retry(root, broken),
        root.span,
    )
    return pipeline, reserved


def _name(root: JObject) -> ast.Name:
    node = root.get("name")
    if isinstance(node, JScalar) and isinstance(node.value, str):
        return ast.Name(node.value, node.span)
    return ast.Name("", root.span)


def _retry(root: JObject, broken: set[StepPath | None]) -> ast.Retry:
    node = root.get("retry")
    if not isinstance(node, JObject) or ("retry", 0) in broken:
        return ast.Retry()
    raw = {m.key: m.value for m in node.members}
    retries = _number(raw.get("max_retries"))
    delay = _number(raw.get("delay_seconds"))
    return ast.Retry(
        int(retries) if retries is not None else 3,
        float(delay) if delay is not None else 5.0,
    )


def _build_step(section: str, index: int, item: JObject) -> ast.Step:
    type_node = item.get("type")
    assert isinstance(type_node, JScalar)
    extra: dict[str, Any] = {}
    if item.get("id") is None:  # loads may leave their id out
        inp = item.get("input")
        default = f"load_{index + 1}_{inp.value if isinstance(inp, JScalar) else ''}"
        extra["id"] = ast.Name(default, item.span)
    cls = node_class(section, str(type_node.value))
    if cls is None:  # a plugin's type (the schema admitted it), checked as a plugin step
        id_node = item.get("id")
        step_id = extra.get("id") or ast.Name(
            str(id_node.value) if isinstance(id_node, JScalar) else "", item.span
        )
        return ast.build_plugin_step(section, item, step_id)
    return ast.build_node(cls, item, **extra)


def _number(node: JValue | None) -> int | float | None:
    if isinstance(node, JScalar) and isinstance(node.value, int | float):
        return None if isinstance(node.value, bool) else node.value
    return None


def _contains(outer: Span, inner: Span) -> bool:
    return (outer.line, outer.col) <= (inner.line, inner.col) and (
        inner.end_line,
        inner.end_col,
    ) <= (outer.end_line, outer.end_col)
