"""Column edges for `etlc explain`'s DAG formats: which column of which step each column comes
from, and which columns decide a step's rows, as Graphviz, Mermaid or an HTML table.

``etlc explain --format dot --columns`` draws every column the loads write, back to the
extracts; ``--lineage COLUMN`` with a DAG format draws that one column's graph. Each step is a
box (a Graphviz cluster, a Mermaid subgraph) holding the columns the graph reaches; an edge is
labelled with how the column was made (``identity``, ``transformation``, ``aggregation``), and a
dashed edge goes from a column to a step whose rows it decides (``filter``, ``join``,
``group_by``, ``window``). A step the compiler cannot see into (a JVM step) ends the walk.
Names are escaped as the step-level formats escape them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from etlc.codegen.explain_escape import dot_escape, dot_string, h, mermaid_text, node_id
from etlc.codegen.explain_lineage import targets
from etlc.dsl.lineage import LineageError
from etlc.dsl.plan import Plan, PlannedStep

__all__ = ["ColumnGraph", "LineageError", "column_graph", "dot", "html_table", "mermaid"]

Column = tuple[str, str]  # (step id, column)


@dataclass
class ColumnGraph:
    """The columns reached, per step in run order; value edges (from, to, how); row edges
    (from column, to step, how)."""

    columns: dict[str, list[str]] = field(default_factory=dict)
    edges: list[tuple[Column, Column, str]] = field(default_factory=list)
    rows: list[tuple[Column, str, str]] = field(default_factory=list)


def column_graph(plan: Plan, column: str | None = None) -> ColumnGraph:
    """The graph of ``column`` (as ``--lineage`` names it), or of every column a load writes."""
    if column is not None:
        start = [(s.id, c) for s, c in targets(plan, column)]
    else:
        start = [(s.id, c) for s in plan.by_role("load") for c in s.schema.columns()]
    by_id = {s.id: s for s in plan.steps}
    seen: set[Column] = set()
    graph = ColumnGraph()
    todo = list(reversed(start))
    decided: set[str] = set()
    while todo:
        at = todo.pop()
        if at in seen or at[0] not in by_id:
            continue
        seen.add(at)
        step = by_id[at[0]]
        for source in _sources(step, at[1]):
            graph.edges.append((source, at, _how(step, at[1], source)))
            todo.append(source)
        if step.id not in decided and step.lineage is not None:
            decided.add(step.id)
            for row in step.lineage.rows:
                # An extract's rules read its own columns: they are in its box already, and
                # an edge from inside a box to the box itself has no place in the drawing.
                if row.dataset != step.id:
                    graph.rows.append(((row.dataset, row.column), step.id, row.how))
                todo.append((row.dataset, row.column))
    for step in plan.steps:  # run order, each step's columns in its own order
        reached = [c for c in _all_columns(step) if (step.id, c) in seen]
        if reached:
            graph.columns[step.id] = reached
    return graph


def _sources(step: PlannedStep, column: str) -> list[Column]:
    lineage = step.lineage
    if step.role == "extract" or lineage is None or not lineage.known:
        return []
    return sorted({(s.dataset, s.column) for s in lineage.sources(column)})


def _how(step: PlannedStep, column: str, source: Column) -> str:
    assert step.lineage is not None
    hows = {s.how for s in step.lineage.sources(column) if (s.dataset, s.column) == source}
    return "/".join(sorted(hows))


def _all_columns(step: PlannedStep) -> list[str]:
    names = list(step.schema.columns())
    extra = [c for c, _ in step.lineage.columns] if step.lineage is not None else []
    return names + [c for c in extra if c not in names]


# --- formats ------------------------------------------------------------------------------


def _steps(plan: Plan, graph: ColumnGraph) -> Iterable[PlannedStep]:
    return (s for s in plan.steps if s.id in graph.columns)


def _title(step: PlannedStep) -> str:
    unknown = step.lineage is not None and not step.lineage.known
    return f"{step.role} {step.id}: {step.type}" + (" (sources unknown)" if unknown else "")


def dot(plan: Plan, graph: ColumnGraph) -> str:
    """Graphviz: a cluster per step, a node per column, edges labelled with how."""
    lines = [
        f"digraph {dot_string(plan.name + ' columns')} {{",
        "  rankdir=LR;",
        "  compound=true;",
        '  node [shape=box, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for step in _steps(plan, graph):
        lines += [
            f"  subgraph cluster_{node_id(step.id)} {{",
            f"    label={dot_string(_title(step))};",
            *(
                f"    {dot_string(f'{step.id}.{c}')} [label={dot_string(c)}];"
                for c in graph.columns[step.id]
            ),
            "  }",
        ]
    for (fs, fc), (ts, tc), how in graph.edges:
        src, dst = dot_string(f"{fs}.{fc}"), dot_string(f"{ts}.{tc}")
        lines.append(f"  {src} -> {dst} [label={dot_string(how)}];")
    for (fs, fc), step_id, how in graph.rows:
        # The edge ends at the step's box (its first column, clipped to the cluster).
        anchor = dot_string(f"{step_id}.{graph.columns[step_id][0]}")
        cluster = f"cluster_{node_id(step_id)}"
        label = dot_escape(how)
        lines.append(
            f'  {dot_string(f"{fs}.{fc}")} -> {anchor} [style=dashed, label="{label}", '
            f"lhead={cluster}];"
        )
    return "\n".join([*lines, "}"])


def mermaid(plan: Plan, graph: ColumnGraph) -> str:
    """A Mermaid flowchart: a subgraph per step, a node per column."""
    ids: dict[Column, str] = {}
    lines = ["flowchart LR"]
    for step in _steps(plan, graph):
        title = mermaid_text(_title(step))
        lines.append(f'  subgraph {node_id(step.id)}["{title}"]')
        for c in graph.columns[step.id]:
            # Columns are c<n>, steps s_<id>: no column's id can be a step's.
            ids[(step.id, c)] = f"c{len(ids)}"
            lines.append(f'    {ids[(step.id, c)]}["{mermaid_text(c)}"]')
        lines.append("  end")
    for source, target, how in graph.edges:
        lines.append(f'  {ids[source]} -->|"{mermaid_text(how)}"| {ids[target]}')
    for source, step_id, how in graph.rows:
        lines.append(f'  {ids[source]} -.->|"{mermaid_text(how)}"| {node_id(step_id)}')
    return "\n".join(lines)


def html_table(graph: ColumnGraph) -> str:
    """The edges as an HTML table, for the page's column lineage section."""

    rows = [
        f"<tr><td><code>{h(fs)}.{h(fc)}</code></td><td>{h(how)}</td>"
        f"<td><code>{h(ts)}.{h(tc)}</code></td></tr>"
        for (fs, fc), (ts, tc), how in graph.edges
    ]
    rows += [
        f"<tr><td><code>{h(fs)}.{h(fc)}</code></td><td>{h(how)} (rows)</td>"
        f"<td><code>{h(step_id)}</code></td></tr>"
        for (fs, fc), step_id, how in graph.rows
    ]
    return (
        '<section id="column-lineage"><h2>Column lineage</h2><table>'
        "<tr><th>from</th><th>how</th><th>to</th></tr>" + "".join(rows) + "</table></section>"
    )
