"""The window step: aggregates over windows of event time, or over counted rows.

A time window groups rows into fixed or sliding intervals of a timestamp column; a row
window numbers rows in a total order and groups every ``size`` of them (batch only).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.diagnostics import Span
from etlc.dsl.durations import duration_problems, seconds
from etlc.dsl.expressions import CheckedExpr
from etlc.dsl.lineage import TRANSFORMATION, WINDOW, StepLineage, used
from etlc.dsl.steps.aggregate import aggregates, grouped_lineage, no_clash
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import DataType, RecordSchema
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class TimeWindow:
    column: ast.Name
    size: ast.Name
    span: Span
    slide: ast.Name | None = None
    watermark: ast.Name | None = None  # streaming only


@dataclass(frozen=True, kw_only=True)
class RowWindow:
    order_by: tuple[ast.Name, ...]
    size: ast.Number
    span: Span


@dataclass(frozen=True, kw_only=True)
class Window(ast.Step):
    role: ClassVar[str] = "transform"
    input: ast.Name
    aggregates: Mapping[str, ast.Expr]
    group_by: tuple[ast.Name, ...] = ()
    time: TimeWindow | None = None
    rows: RowWindow | None = None

    def inputs(self) -> list[ast.Name]:
        return [self.input]


def check(ctx: CheckContext, step: Window, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    if (step.time is None) == (step.rows is None):
        ctx.error(
            "E210",
            "a window needs exactly one of `time` or `rows`",
            step.span,
            'use "time": {"column": ..., "size": "10 minutes"} '
            'or "rows": {"order_by": [...], "size": N}',
        )
        return None
    keys_ok = ctx.columns_exist(step.group_by, schema, "group_by")
    columns: dict[str, DataType] = {}
    args: dict[str, Any] = {"group_by": tuple(k.value for k in step.group_by)}
    framed = (
        _time_window(ctx, step, schema, args, columns)
        if step.time is not None
        else _rows_window(ctx, step, schema, args, columns)
    )
    if not framed:
        return None
    aggs = aggregates(ctx, step.aggregates, schema, step.group_by)
    if not keys_ok or aggs is None:
        return None
    framing = columns.copy()  # the window's own columns, made of its time or order columns
    keys = [k.value for k in step.group_by]
    columns.update({k: schema.columns()[k] for k in keys})
    if not no_clash(ctx, columns, aggs, step.aggregates):
        return None
    columns.update({name: c.type for name, c in aggs.items()})
    args["aggregates"] = {name: c.sql for name, c in aggs.items()}
    return Lowered(args, ctx.derived(step, columns), lineage=_lineage(step, keys, aggs, framing))


def _lineage(
    step: Window, keys: Sequence[str], aggs: Mapping[str, CheckedExpr], framing: Iterable[str]
) -> StepLineage:
    source = step.input.value
    if step.time is not None:
        framed_by = [step.time.column.value]
    else:
        assert step.rows is not None
        framed_by = [n.value for n in step.rows.order_by]
    flow = grouped_lineage(source, keys, aggs, used(source, framed_by, WINDOW))
    made = {c: used(source, framed_by, TRANSFORMATION) for c in framing}
    return StepLineage.of({**made, **dict(flow.columns)}, flow.rows)


def _time_window(
    ctx: CheckContext,
    step: Window,
    schema: RecordSchema,
    args: dict[str, Any],
    columns: dict[str, DataType],
) -> bool:
    """A window over event time: its bounds into ``args``, its start and end columns."""
    t = step.time
    assert t is not None
    if not ctx.columns_exist([t.column], schema, "window time column"):
        return False
    ctype = schema.columns()[t.column.value]
    if ctype.kind != "timestamp":
        ctx.error(
            "E304",
            f"window time column `{t.column.value}` is {ctype.describe()}, not a timestamp",
            t.column.span,
            "derive a timestamp first, e.g. to_timestamp(...)",
            column=t.column.value,
        )
        return False
    problems = duration_problems((t.size, *(d for d in (t.slide, t.watermark) if d is not None)))
    if problems:
        ctx.report(problems)
        return False
    if t.slide is not None and seconds(t.slide.value) > seconds(t.size.value):
        ctx.error(
            "E209",
            "the slide is longer than the window",
            t.slide.span,
            "a sliding window's slide must be at most its size",
        )
        return False
    args.update(time_column=t.column.value, size=t.size.value)
    if t.slide is not None and t.slide.value != t.size.value:
        args["slide"] = t.slide.value
    if ctx.streaming and t.watermark is not None:
        args["watermark"] = t.watermark.value
    else:
        ctx.batch_ignores(step, "watermark", t.watermark)
    columns["window_start"] = DataType("timestamp", nullable=False)
    columns["window_end"] = DataType("timestamp", nullable=False)
    return True


def _rows_window(
    ctx: CheckContext,
    step: Window,
    schema: RecordSchema,
    args: dict[str, Any],
    columns: dict[str, DataType],
) -> bool:
    """A count-based window: its order and size into ``args``, its index column."""
    assert step.rows is not None
    if not ctx.columns_exist(step.rows.order_by, schema, "window order_by"):
        return False
    args.update(order_by=tuple(n.value for n in step.rows.order_by), rows=int(step.rows.size.value))
    columns["window_index"] = DataType("long", nullable=False)
    return True


def streaming(ctx: CheckContext, step: Window) -> None:
    source = ctx.stream_input(step)
    if source is None or (step.time is None) == (step.rows is None):
        return  # a static side behaves as in batch; the exactly-one-of error comes later
    if step.rows is not None:
        ctx.error(
            "E405",
            f"window `{step.id.value}` counts rows, which needs a total order over the "
            f"stream `{source.value}`; count-based windows are batch-only",
            step.rows.span,
            'use an event-time window ("time" with a "watermark"), or set "mode": "batch"',
        )
    elif step.time is not None and step.time.watermark is None:
        ctx.error(
            "E406",
            f"window `{step.id.value}` over the stream `{source.value}` has no `watermark`: "
            "Spark would keep every window's state forever and append mode never emits",
            step.time.span,
            'add "watermark": "<duration>" to `time`, how late an event may arrive '
            '(e.g. "10 minutes")',
        )


SPEC = PluginSpec(
    "window", "transform", "etlc.transforms.window:window", streaming=True, reads_every_record=True
)
KINDS = (StepKind(Window, check, streaming, specs=(SPEC,)),)
