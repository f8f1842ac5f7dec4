"""``etlc state``: the positions a pipeline's incremental extracts stand at, shown or reset by an
operator, through the pipeline's own driver (which reaches where its loads keep them)."""

from __future__ import annotations

from pyspark.sql import SparkSession

from etlc.runtime.environment import Environment
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.graph import PipelineGraph
from etlc.runtime.incremental import IncrementalRun, LoadPositions, by_of
from etlc.runtime.logs import EventLog
from etlc.runtime.positions import kind_of, parsed, shown
from etlc.runtime.strategies import Incremental


def _next_run(positioned: bool, by: Incremental) -> str:
    """What the next run reads, in words (unless loads of the extract stand apart: then the
    next run catches the ones behind up first)."""
    if not positioned:
        return "every record"
    if by.kind == "files":
        return "the files not read yet"
    if by.column is None:
        return "the records after the offsets"
    return "the rows above the position" + (" less the lookback" if by.lookback else "")


def show_state(graph: PipelineGraph, spark: SparkSession, env: Environment, log: EventLog) -> None:
    """One ``incremental_position`` line per load and incremental extract feeding it (no
    position: the next run reads every row)."""
    plan = IncrementalRun(graph, spark, env, log)
    if not plan.incremental_extracts():
        log.info("incremental_position", reason="the pipeline has no incremental extract")
        return
    for ld in graph.loads:
        fed = plan.fed_by(ld)
        if not fed:
            continue
        store = LoadPositions(ld, spark, env, graph.name)
        held = store.read()
        for ex in fed:
            by = by_of(ex)
            log.info(
                "incremental_position",
                load=ld.id,
                extract=ex.id,
                column=by.column,
                position=shown(held.get(ex.id), by.kind),
                next_run=_next_run(ex.id in held, by),
                kept_in=store.where(),
            )


def reset_state(
    graph: PipelineGraph,
    spark: SparkSession,
    env: Environment,
    log: EventLog,
    *,
    extract: str | None,
    to: str | None,
    load: str | None = None,
) -> None:
    """Set ``extract``'s position (every incremental extract's without one) for every load it
    feeds (``load`` alone, when named) to ``to``; without ``to``, remove it, so that the next
    run reads every row."""
    plan = IncrementalRun(graph, spark, env, log)
    found = plan.incremental_extracts()
    names = ", ".join(f"`{e.id}`" for e in found) or "none"
    chosen = [e for e in found if extract is None or e.id == extract]
    if not chosen:
        raise ConfigurationError(
            f"no incremental extract `{extract}` in {graph.name} (incremental extracts: {names})"
        )
    loads = [ld for ld in graph.loads if plan.fed_by(ld) and load in (None, ld.id)]
    if not loads:
        held = ", ".join(f"`{ld.id}`" for ld in graph.loads if plan.fed_by(ld))
        raise ConfigurationError(
            f"no load `{load}` fed by an incremental extract in {graph.name} (those: {held})"
        )
    if to is not None and len(chosen) > 1:
        raise ConfigurationError(
            f"--to sets one extract's position: name it with --extract (one of {names})"
        )
    value = None if to is None else parsed(to, by_of(chosen[0]).kind)
    for ld in loads:
        fed = [e for e in plan.fed_by(ld) if e in chosen]
        if not fed:
            continue
        store = LoadPositions(ld, spark, env, graph.name)
        before = store.read()
        after = dict(before)
        for ex in fed:
            if value is None:
                after.pop(ex.id, None)
            else:
                after[ex.id] = kind_of(by_of(ex).kind).replaced(before.get(ex.id), value)
        store.replace(after, log.context.run_id)
        for ex in fed:
            kind = by_of(ex).kind
            log.info(
                "incremental_position_set",
                load=ld.id,
                extract=ex.id,
                before=shown(before.get(ex.id), kind),
                after=shown(after.get(ex.id), kind),
                next_run=_next_run(value is not None, by_of(ex)),
                kept_in=store.where(),
            )
