"""Rules of a streaming pipeline as a whole: a stream to read, and aggregates over a stream
written only where their groups can be final. (Each step kind's own streaming rule is in its
module under ``etlc.dsl.steps``.)"""

from __future__ import annotations

from collections.abc import Sequence

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag
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
    consumers: dict[str, list[ast.Step]] = {}
    for step in pipeline.steps():
        for ref in step.inputs():
            consumers.setdefault(ref.value, []).append(step)
    found: list[Diagnostic] = []
    for step, source in aggregates:
        pending, seen = [step.id.value], set()
        appends: list[ast.Step] = []
        while pending:
            current = pending.pop()
            for consumer in consumers.get(current, []):
                mode = getattr(consumer, "mode", None)
                if consumer.role == "load":
                    if isinstance(mode, ast.Name) and mode.value != "upsert":
                        appends.append(consumer)
                elif consumer.id.value not in seen:
                    seen.add(consumer.id.value)
                    pending.append(consumer.id.value)
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
