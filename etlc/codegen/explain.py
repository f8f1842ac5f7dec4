"""`etlc explain`: a checked plan as a person or a tool reads it.

- ``text``: the run order, one line per step with what it reads or writes, its condition or
  keys, then each dataset's columns (what the command always printed, with targets and keys);
- ``json``: the same as data: steps, their inputs and options, schemas, jars;
- ``dot``: the DAG for Graphviz (``etlc explain --format dot x.json | dot -Tsvg > x.svg``);
- ``mermaid``: the DAG as a Mermaid flowchart (GitHub and most wikis render it in Markdown);
- ``html``: one self-contained page (an inline SVG of the DAG, then each step's options and
  columns) that opens in any browser without a network.

Every name, path and expression comes from the definition: each format escapes it its own way
(after ``printable``, so no output holds a control character), and a label can never close its
quotes and add a node, an edge or an attribute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from etlc.codegen import explain_columns
from etlc.codegen.explain_escape import dot_escape, dot_string, h, mermaid_text, node_id
from etlc.codegen.explain_lineage import step_lineage
from etlc.dsl.plan import EnvConnection, EnvString, EnvVariables, Plan, PlannedStep, SchemaOf
from etlc.printable import printable

FORMATS = ("text", "json", "dot", "mermaid", "html")
# The options that say what a step reads, writes or decides, in the order a summary shows them.
SUMMARY = (
    "connection",
    "table",
    "query",
    "incremental",
    "topic",
    "topic_pattern",
    "path",
    "format",
    "class_name",
    "condition",
    "how",
    "on",
    "group_by",
    "aggregates",
    "keys",
)
# Graphviz shapes by role: where data comes from, what is done to it, where it goes.
_SHAPES = {"extract": "cylinder", "transform": "box", "load": "folder"}


def plain(value: Any) -> Any:
    """An option as JSON values: a ``${var}`` string as written, a connection by its name."""
    if isinstance(value, EnvString):
        return value.text
    if isinstance(value, EnvConnection):
        return value.name
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def options(step: PlannedStep) -> dict[str, Any]:
    """The step's options, without what every step has (its schema, the environment)."""
    return {k: plain(v) for k, v in step.args if not isinstance(v, SchemaOf | EnvVariables)}


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ", ".join(value) + ")"
    return str(value)


def _incremental(value: Mapping[str, Any]) -> str:
    """``by ordered_at`` and the lookback in the column's terms (``600 s`` of a timestamp), or
    ``by offsets``."""
    lookback, kind = value.get("lookback") or 0, value.get("kind")
    if kind == "offsets":
        return "by offsets"
    if kind == "files":
        return f"by files listed (lookback {lookback // 1000} s)"
    unit = {"timestamp": " s", "date": " days"}.get(str(kind), "")
    amount = lookback // 1_000_000 if kind == "timestamp" else lookback
    return f"by {value.get('column')}" + (f" (lookback {amount}{unit})" if lookback else "")


def summary(step: PlannedStep) -> str:
    """What the step reads, writes or decides, in one line: ``table customers, keys (id)``."""
    opts = options(step)
    return ", ".join(
        f"{key} {_incremental(opts[key]) if key == 'incremental' else _shown(opts[key])}"
        for key in SUMMARY
        if key in opts
    )


def as_json(plan: Plan) -> dict[str, Any]:
    steps = [
        {
            "id": s.id,
            "role": s.role,
            "type": s.type,
            "mode": s.mode or None,
            "inputs": list(s.inputs),
            "options": options(s),
            "columns": [{"name": f.name, "type": f.type.describe()} for f in s.schema.fields]
            if s.role != "load"
            else None,
            "checks": [{"name": name, "predicate": sql} for name, sql in s.rules],
            "expectations": [
                {"name": e.name, "check": e.check, "policy": e.policy} for e in s.expectations
            ],
            "lineage": step_lineage(s.lineage),
        }
        for s in plan.steps
    ]
    return {
        "pipeline": plan.name,
        "mode": plan.mode,
        "source": plan.source,
        "retry": {"max_retries": plan.max_retries, "delay_seconds": plan.delay_seconds},
        "steps": steps,
        "jars": [a.coordinate for a in plan.artifacts],
    }


def text(plan: Plan) -> list[str]:
    lines = [
        f"pipeline {plan.name} ({plan.mode}), retries: {plan.max_retries} x {plan.delay_seconds:g}s"
    ]
    for step in plan.steps:
        arrow = f" <- {', '.join(step.inputs)}" if step.inputs else ""
        mode = f" [{step.mode}]" if step.mode else ""
        lines += ["", f"{step.role} {step.id}: {step.type}{mode}{arrow}"]
        if what := summary(step):
            lines.append(f"    {what}")
        if step.role == "load":
            continue
        lines.extend(f"    {f.name}: {f.type.describe()}" for f in step.schema.fields)
        lines.extend(f"    check {name}" for name, _ in step.rules)
        lines.extend(f"    expect {e.name} ({e.policy})" for e in step.expectations)
    lines += ["", "jars: " + ", ".join(a.coordinate for a in plan.artifacts)]
    # Names, fields and rules come from the definition and its schemas: shown escaped.
    return [printable(line) for line in lines]


def _label(step: PlannedStep) -> list[str]:
    head = f"{step.role} {step.type}" + (f" [{step.mode}]" if step.mode else "")
    what = summary(step)
    return [step.id, head] + ([what[:80] + ("..." if len(what) > 80 else "")] if what else [])


def dot(plan: Plan) -> str:
    lines = [
        f"digraph {dot_string(plan.name)} {{",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=10];',
    ]
    for step in plan.steps:
        label = "\\n".join(dot_escape(part) for part in _label(step))
        lines.append(f'  {dot_string(step.id)} [shape={_SHAPES[step.role]}, label="{label}"];')
    for step in plan.steps:
        lines += [f"  {dot_string(i)} -> {dot_string(step.id)};" for i in step.inputs]
    return "\n".join([*lines, "}"])


def mermaid(plan: Plan) -> str:
    # Step ids are identifiers; the prefix keeps Mermaid's keywords (`end`) out of node ids.
    shapes = {"extract": ('[("', '")]'), "transform": ('["', '"]'), "load": ('[/"', '"/]')}
    lines = ["flowchart LR"]
    for step in plan.steps:
        opening, closing = shapes[step.role]
        label = "<br/>".join(mermaid_text(part) for part in _label(step))
        lines.append(f"  {node_id(step.id)}{opening}{label}{closing}")
    for step in plan.steps:
        lines += [f"  {node_id(i)} --> {node_id(step.id)}" for i in step.inputs]
    return "\n".join(lines)


# --- html ---------------------------------------------------------------------------------

_BOX_W, _BOX_H, _GAP_X, _GAP_Y, _PAD = 240, 64, 70, 24, 16
_FILL = {"extract": "#e3f2fd", "transform": "#f1f8e9", "load": "#fff3e0"}


def _layers(plan: Plan) -> dict[str, tuple[int, int]]:
    """Each step's (column, row): its column is one past its deepest input's."""
    column: dict[str, int] = {}
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for step in plan.steps:  # run order: inputs come first
        col = 1 + max((column[i] for i in step.inputs), default=-1)
        column[step.id] = col
        place[step.id] = (col, rows.get(col, 0))
        rows[col] = rows.get(col, 0) + 1
    return place


def _svg_node(step: PlannedStep, x: int, y: int) -> str:
    lines = _label(step)
    texts = []
    for i, line in enumerate(lines):
        weight = ' font-weight="bold"' if i == 0 else ""
        shown = line[:38] + ("..." if len(line) > 38 else "")
        texts.append(f'<text x="{x + 10}" y="{y + 18 + 16 * i}"{weight}>{h(shown)}</text>')
    return (
        f'<g class="node" id="node-{h(step.id)}"><title>{h(" / ".join(lines))}</title>'
        f'<rect x="{x}" y="{y}" width="{_BOX_W}" height="{_BOX_H}" rx="8" '
        f'fill="{_FILL[step.role]}" stroke="#555"/>{"".join(texts)}</g>'
    )


def _svg(plan: Plan) -> str:
    place = _layers(plan)
    xy = {
        sid: (_PAD + c * (_BOX_W + _GAP_X), _PAD + r * (_BOX_H + _GAP_Y))
        for sid, (c, r) in place.items()
    }
    width = max(x for x, _ in xy.values()) + _BOX_W + _PAD
    height = max(y for _, y in xy.values()) + _BOX_H + _PAD
    edges = "".join(
        f'<path class="edge" d="M{xy[i][0] + _BOX_W},{xy[i][1] + _BOX_H // 2} '
        f"C{xy[i][0] + _BOX_W + _GAP_X // 2},{xy[i][1] + _BOX_H // 2} "
        f"{xy[s.id][0] - _GAP_X // 2},{xy[s.id][1] + _BOX_H // 2} "
        f'{xy[s.id][0]},{xy[s.id][1] + _BOX_H // 2}" marker-end="url(#arrow)"/>'
        for s in plan.steps
        for i in s.inputs
    )
    nodes = "".join(_svg_node(s, *xy[s.id]) for s in plan.steps)
    arrow = (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">{arrow}'
        f'<g fill="none" stroke="#555">{edges}</g>{nodes}</svg>'
    )


def _step_section(step: PlannedStep) -> str:
    rows = "".join(
        f"<tr><th>{h(k)}</th><td><code>{h(json.dumps(v, ensure_ascii=False))}</code></td></tr>"
        for k, v in options(step).items()
    )
    columns = (
        ""
        if step.role == "load"
        else "<ul>"
        + "".join(
            f"<li><code>{h(f.name)}</code>: {h(f.type.describe())}</li>" for f in step.schema.fields
        )
        + "</ul>"
    )
    inputs = f" &larr; {h(', '.join(step.inputs))}" if step.inputs else ""
    return (
        f'<section id="step-{h(step.id)}"><h2>{h(step.role)} <code>{h(step.id)}</code>: '
        f"{h(step.type)}{inputs}</h2><table>{rows}</table>{columns}</section>"
    )


def page(plan: Plan) -> str:
    """One HTML file, nothing fetched: the DAG as inline SVG, then every step's details."""
    title = h(f"{plan.name} ({plan.mode})")
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "th,td{border:1px solid #ccc;padding:2px 6px;text-align:left;vertical-align:top}"
        "section{margin-top:1.5em}"
    )
    sections = "".join(_step_section(s) for s in plan.steps)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{style}</style></head><body>"
        f"<h1>{title}</h1><p>{h(plan.source)}, retries: {plan.max_retries} x "
        f"{plan.delay_seconds:g}s</p>{_svg(plan)}{sections}"
        f"{explain_columns.html_table(explain_columns.column_graph(plan))}</body></html>\n"
    )


def render(fmt: str, plan: Plan, columns: bool = False) -> str:
    """The plan in ``fmt``, one of :data:`FORMATS`; with ``columns``, a DAG format draws the
    column edges of every column the loads write instead of the steps."""
    if columns and fmt in ("dot", "mermaid"):
        return column_dag(fmt, plan, None)
    if fmt == "text":
        return "\n".join(text(plan))
    if fmt == "json":
        return json.dumps(as_json(plan), indent=2)
    if fmt == "dot":
        return dot(plan)
    if fmt == "mermaid":
        return mermaid(plan)
    if fmt == "html":
        return page(plan)
    raise ValueError(f"no such explain format: {fmt}")


def column_dag(fmt: str, plan: Plan, column: str | None) -> str:
    """The column graph of ``column`` (every load column when None) as dot or mermaid."""
    graph = explain_columns.column_graph(plan, column)
    return (
        explain_columns.dot(plan, graph) if fmt == "dot" else explain_columns.mermaid(plan, graph)
    )
