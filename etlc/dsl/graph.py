"""The dataset graph of a pipeline: unique ids, references that resolve, no cycles, and the
order the steps run in (each after the steps it reads)."""

from __future__ import annotations

from collections.abc import Set

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Severity, diag, did_you_mean


def run_order(
    pipeline: ast.Pipeline, reserved: Set[str]
) -> tuple[list[ast.Step], list[Diagnostic]]:
    """The steps in an order that runs each after its inputs (empty if there is a cycle), and
    what is wrong with the graph. ``reserved``: ids of steps that failed to build."""
    found: list[Diagnostic] = []
    producers = _producers(pipeline, reserved, found)
    _check_references(pipeline, producers, reserved, found)
    consumed = {ref.value for step in pipeline.steps() for ref in step.inputs()}
    for sid, step in producers.items():
        if step.role != "load" and sid not in consumed:
            found.append(
                diag(
                    "W201",
                    f"dataset `{sid}` is never used",
                    step.id.span,
                    "load it, use it in a transform, or remove the step",
                    Severity.WARNING,
                    id=sid,
                )
            )
    return _topological(pipeline, producers, found), found


def _producers(
    pipeline: ast.Pipeline, reserved: Set[str], found: list[Diagnostic]
) -> dict[str, ast.Step]:
    producers: dict[str, ast.Step] = {}
    for step in pipeline.steps():
        sid = step.id.value
        if sid in producers or (sid in reserved and step.role != "load"):
            first = producers.get(sid)
            found.append(
                diag(
                    "E201",
                    f"duplicate id `{sid}`",
                    step.id.span,
                    f"first defined at line {first.id.span.line}; ids must be unique"
                    if first
                    else "ids must be unique",
                    id=sid,
                )
            )
            continue
        producers[sid] = step
    return producers


def _check_references(
    pipeline: ast.Pipeline,
    producers: dict[str, ast.Step],
    reserved: Set[str],
    found: list[Diagnostic],
) -> None:
    known = set(producers) | set(reserved)
    for step in pipeline.steps():
        for ref in step.inputs():
            if ref.value not in known:
                found.append(
                    diag(
                        "E202",
                        f"`{ref.value}` is not a dataset of this pipeline",
                        ref.span,
                        did_you_mean(
                            ref.value, [s for s, p in producers.items() if p.role != "load"]
                        ),
                        ref=ref.value,
                    )
                )
            elif ref.value in producers and producers[ref.value].role == "load":
                found.append(
                    diag(
                        "E202",
                        f"`{ref.value}` is a load step; loads produce no dataset",
                        ref.span,
                        "reference an extract or transform id",
                        ref=ref.value,
                    )
                )


def _topological(
    pipeline: ast.Pipeline, producers: dict[str, ast.Step], found: list[Diagnostic]
) -> list[ast.Step]:
    order: list[ast.Step] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    cyclic = False

    def visit(step: ast.Step, trail: list[str]) -> None:
        nonlocal cyclic
        sid = step.id.value
        if state.get(sid) == 2:
            return
        if state.get(sid) == 1:
            cycle = [*trail[trail.index(sid) :], sid]
            cyclic = True
            found.append(
                diag(
                    "E203",
                    "cycle: " + " -> ".join(cycle),
                    step.id.span,
                    "a dataset cannot depend on itself; break the loop",
                    cycle=",".join(cycle),
                )
            )
            return
        state[sid] = 1
        for ref in step.inputs():
            upstream = producers.get(ref.value)
            if upstream is not None and upstream.role != "load":
                visit(upstream, [*trail, sid])
        state[sid] = 2
        order.append(step)

    for step in pipeline.steps():
        if producers.get(step.id.value) is step:
            visit(step, [])
    return [] if cyclic else order


def write_mode(step: ast.Step) -> str | None:
    mode = getattr(step, "mode", None)
    return mode.value if isinstance(mode, ast.Name) else None


def downstream(pipeline: ast.Pipeline, start: ast.Step) -> list[ast.Step]:
    """Every step that reads ``start``'s output, directly or through others, loads too."""
    consumers: dict[str, list[ast.Step]] = {}
    for step in pipeline.steps():
        for ref in step.inputs():
            consumers.setdefault(ref.value, []).append(step)
    found: list[ast.Step] = []
    pending, seen = [start.id.value], {start.id.value}
    while pending:
        for consumer in consumers.get(pending.pop(), []):
            if consumer.role == "load":
                found.append(consumer)
            elif consumer.id.value not in seen:
                seen.add(consumer.id.value)
                found.append(consumer)
                pending.append(consumer.id.value)
    return found
