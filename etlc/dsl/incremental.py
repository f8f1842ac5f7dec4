"""Rules of a batch pipeline with incremental extracts, as a whole: what each load fed by one
does with a run's new rows. (The option itself is checked by its step kind's module.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Span, diag
from etlc.dsl.graph import downstream, write_mode
from etlc.dsl.plan import PlannedStep
from etlc.dsl.steps.contract import CheckContext
from etlc.plugins import PluginTable


def refused_in_stream(ctx: CheckContext, span: Span) -> bool:
    """E411 for an ``incremental`` option in a streaming pipeline (True: refused)."""
    if ctx.streaming:
        ctx.error(
            "E411",
            "`incremental` is for batch runs; a stream reads each record once through its "
            "checkpoint, and its static sides are read whole",
            span,
            "drop `incremental`",
        )
    return ctx.streaming


def incremental_problems(pipeline: ast.Pipeline, steps: Sequence[PlannedStep]) -> list[Diagnostic]:
    """E411 for a load fed by an incremental extract that would lose or double rows: an
    overwrite (each run would replace the target with its new rows only), and an append fed by
    an extract with a lookback (the rows read again would be written again)."""
    planned = {s.id: s for s in steps}
    found: list[Diagnostic] = []
    for ex in pipeline.extracts:
        step = planned.get(ex.id.value)
        by = dict(step.args).get("incremental") if step is not None else None
        if not isinstance(by, dict):
            continue
        for load in (s for s in downstream(pipeline, ex) if s.role == "load"):
            mode = write_mode(load)
            where = getattr(load, "mode", None)
            span = where.span if isinstance(where, ast.Name) else load.span
            if mode == "overwrite":
                found.append(
                    diag(
                        "E411",
                        f"load `{load.id.value}` overwrites its target, but `{ex.id.value}` is "
                        "incremental: each run would replace the target with that run's new "
                        "rows only",
                        span,
                        'append the new rows ("mode": "append") or upsert them on keys',
                    )
                )
            elif mode == "append" and by.get("lookback") and by.get("column"):
                # A column's lookback reads rows again; a folder's remembers the files read.
                found.append(
                    diag(
                        "E411",
                        f"load `{load.id.value}` appends, but `{ex.id.value}` reads again the "
                        "rows within its `lookback`: they would be written twice",
                        span,
                        'upsert on the target\'s keys ("mode": "upsert"), or drop `lookback`',
                    )
                )
    return found


def with_rebuild_modes(
    pipeline: ast.Pipeline, steps: Sequence[PlannedStep], plugins: PluginTable
) -> list[PlannedStep]:
    """``steps``, each load fed by an incremental extract given the mode a full refresh
    writes it in: overwrite (a rebuild of the target from every row) where its kind can
    overwrite, else its own (a Kafka topic is a log)."""
    fed: set[str] = set()
    for ex in pipeline.extracts:
        step = next((s for s in steps if s.id == ex.id.value), None)
        if step is not None and isinstance(dict(step.args).get("incremental"), dict):
            fed.update(s.id.value for s in downstream(pipeline, ex) if s.role == "load")
    out = []
    for step in steps:
        spec = plugins.get("load", step.type) if step.role == "load" else None
        if step.id in fed and spec is not None:
            rebuild = "overwrite" if "overwrite" in spec.write_modes else step.mode
            out.append(replace(step, rebuild_mode=rebuild))
        else:
            out.append(step)
    return out
