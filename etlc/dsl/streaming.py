"""Rules of a streaming pipeline as a whole: a stream to read, and aggregates over a stream
written, or set aside in quarantine, only where their groups can be final. (Each step kind's
own streaming rule is in its module under ``etlc.dsl.steps``.)"""

from __future__ import annotations

from collections.abc import Sequence

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag
from etlc.dsl.expectations import policy_of
from etlc.dsl.graph import downstream, write_mode
from etlc.dsl.tree import JArray, JObject, JScalar


def source_problems(root: JObject, sources: frozenset[str]) -> list[Diagnostic]:
    """E408 when a streaming pipeline has no stream to read: no extract of a ``sources``
    type (those whose rows say they are a stream; other extracts are static)."""
    # Read from the tree, not the AST, so a Kafka extract with a shape error still counts.
    extracts = root.get("extract")
    items = extracts.items if isinstance(extracts, JArray) else ()
    if any(
        isinstance(item, JObject)
        and isinstance(kind := item.get("type"), JScalar)
        and kind.value in sources
        for item in items
    ):
        return []
    mode = root.get("mode")
    return [
        diag(
            "E408",
            "a streaming pipeline needs a Kafka extract: there is nothing to stream from",
            mode.span if mode is not None else root.span,
            'add a `kafka` extract, or set "mode": "batch"',
        )
    ]


def aggregate_problems(
    pipeline: ast.Pipeline, aggregates: Sequence[tuple[ast.Step, ast.Name]]
) -> list[Diagnostic]:
    """An aggregate over a stream has no event time to close its groups: append mode
    would never emit one. Only upsert loads (update mode: each changed group is written
    every micro-batch) can take it."""
    found: list[Diagnostic] = []
    for step, source in aggregates:
        appends = [
            consumer
            for consumer in downstream(pipeline, step)
            if consumer.role == "load" and write_mode(consumer) not in (None, "upsert")
        ]
        found.extend(
            diag(
                "E406",
                f"aggregate `{step.id.value}` over the stream `{source.value}` feeds an "
                f"append load (`{load.type.value}`): without an event-time watermark no "
                "group is ever final, so append mode would never emit one",
                step.type.span,
                'load it with "mode": "upsert" (each changed group is written every '
                'micro-batch), or use a `window` step with a "watermark"',
            )
            for load in appends
        )
    return found


def quarantine_problems(
    pipeline: ast.Pipeline,
    aggregates: Sequence[tuple[ast.Step, ast.Name]],
    windows: Sequence[ast.Step] = (),
) -> list[Diagnostic]:
    """E410 for a quarantine rule whose records are never final when set aside: on or after
    an aggregate over a stream (its groups change from micro-batch to micro-batch), or a
    window over a stream that an upsert load reads (update mode writes each group before it
    closes; quarantined records are the closed ones, so a group set aside would stay in the
    target as first written)."""
    grouping = [
        (a, f"the aggregate `{a.id.value}` over the stream `{s.value}`") for a, s in aggregates
    ]
    for window in windows:
        after = downstream(pipeline, window)
        upserts = [ld for ld in after if ld.role == "load" and write_mode(ld) == "upsert"]
        if upserts:
            what = f"the window `{window.id.value}`, which the upsert `{upserts[0].id.value}` reads"
            grouping.append((window, what))
    found: list[Diagnostic] = []
    seen: set[str] = set()
    for grouped, what in grouping:
        for step in (grouped, *downstream(pipeline, grouped)):
            block = step.expect
            if block is None or step.id.value in seen:
                continue
            seen.add(step.id.value)
            for rule in block.rules:
                written = policy_of(block, rule)
                if written is None or written.value != "quarantine":
                    continue
                found.append(
                    diag(
                        "E410",
                        f"expectation `{rule.name.value}` of `{step.id.value}`: quarantine is "
                        f"not available after {what}: its groups change from micro-batch to "
                        "micro-batch, so none is final to set aside",
                        written.span,
                        'use "drop" or "warn" here, or quarantine the records before the '
                        f"`{grouped.id.value}` step",
                        rule=rule.name.value,
                    )
                )
    return found
