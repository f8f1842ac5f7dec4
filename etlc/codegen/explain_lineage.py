"""`etlc explain --lineage COLUMN`: where a column's values come from, as text or JSON.

``COLUMN`` is ``<step>.<column>`` (any step, a load's id included) or a bare column name,
looked up among the loads' columns. The answer follows the compiler's column lineage
(:mod:`etlc.dsl.lineage`) back to the extracts: for each origin, the steps in between in run
order with how each used the value, and every column that decided which rows there are.
"""

from __future__ import annotations

from typing import Any

from etlc.dsl.lineage import ColumnSource, LineageError, Origin, StepLineage, Traced, trace
from etlc.dsl.plan import Plan, PlannedStep
from etlc.printable import printable

__all__ = ["LineageError", "as_json", "step_lineage", "targets", "text"]


def targets(plan: Plan, column: str) -> list[tuple[PlannedStep, str]]:
    """The (step, column) pairs ``column`` names."""
    step_id, dot, name = column.rpartition(".")
    if dot:
        step = next((s for s in plan.steps if s.id == step_id), None)
        if step is None:
            raise LineageError(f"no step `{step_id}` in {plan.name}")
        columns = list(step.schema.columns())
        if name not in columns:
            more = f" and {len(columns) - 20} more" if len(columns) > 20 else ""
            shown = ", ".join(columns[:20]) + more
            raise LineageError(f"step `{step_id}` has no column `{name}` (it has {shown})")
        return [(step, name)]
    found = [(s, column) for s in plan.by_role("load") if column in s.schema.columns()]
    if not found:
        raise LineageError(
            f"no load of {plan.name} writes a column `{column}`; name another as <step>.<column>"
        )
    return found


def step_lineage(lineage: StepLineage | None) -> dict[str, Any] | None:
    """A step's own lineage as JSON (None for an extract, where values start)."""
    if lineage is None:
        return None
    return {
        "known": lineage.known,
        "columns": {c: [_source(s) for s in sources] for c, sources in lineage.columns},
        "rows": [_source(s) for s in lineage.rows],
    }


def _source(s: ColumnSource) -> dict[str, str]:
    return {"dataset": s.dataset, "column": s.column, "how": s.how}


def as_json(plan: Plan, column: str) -> list[dict[str, Any]]:
    out = []
    for step, name in targets(plan, column):
        traced = trace(plan.steps, step.id, name)
        out.append(
            {
                "step": step.id,
                "column": name,
                "origins": [_origin_json(o) for o in traced.origins],
                "rows": [
                    {"step": r.step, "how": r.how, **_origin_json(r.origin)} for r in traced.rows
                ],
            }
        )
    return out


def _origin_json(o: Origin) -> dict[str, Any]:
    out: dict[str, Any] = {"dataset": o.dataset, "column": o.column, "known": o.known}
    if o.path:
        out["through"] = [
            {"step": h.step, "type": h.kind, "column": h.column, "how": h.how}
            for h in reversed(o.path)
        ]
    return out


def text(plan: Plan, column: str) -> list[str]:
    lines: list[str] = []
    for step, name in targets(plan, column):
        traced = trace(plan.steps, step.id, name)
        lines += [""] if lines else []
        lines.append(f"{step.id}.{name} ({step.role} {step.type})")
        lines += [f"  {_origin(plan, o)}" for o in traced.origins] or [
            "  from no input column (a constant, or a count of rows)"
        ]
        lines += _rows(traced)
    # Names come from the definition and its schemas: shown escaped.
    return [printable(line) for line in lines]


def _origin(plan: Plan, o: Origin) -> str:
    through = " -> ".join(
        f"{h.kind} {h.step}" + (f".{h.column}" if h.column != o.column else "") + f" ({h.how})"
        for h in reversed(o.path)
    )
    return f"from {_start(plan, o)}" + (f": {through}" if through else "")


def _start(plan: Plan, o: Origin) -> str:
    if o.known:
        return f"{o.dataset}.{o.column}"
    kind = plan.step(o.dataset).type
    return f"{o.dataset} ({kind}: its column `{o.column}`, sources unknown to the compiler)"


def _rows(traced: Traced) -> list[str]:
    if not traced.rows:
        return []
    shown = ", ".join(
        f"{r.origin.dataset}.{r.origin.column}"
        + ("" if r.origin.known else " (unknown)")
        + f" ({r.how} in {r.step})"
        for r in traced.rows
    )
    return [f"  rows decided by {shown}"]
