"""The join step: two datasets joined on key columns or on a condition.

In a streaming pipeline a join of two streams needs a time bound (`within`), and a stream
joined with a static dataset may only keep unmatched rows of the stream's side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.diagnostics import Span
from etlc.dsl.durations import duration_problems
from etlc.dsl.expressions import Context, Scope
from etlc.dsl.lineage import JOIN, TRANSFORMATION, ColumnSource, StepLineage, identity, used
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import DataType, RecordSchema, admits, common_type
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class JoinWithin:
    left_time: ast.Name
    right_time: ast.Name
    after: ast.Name
    watermark: ast.Name
    span: Span
    before: ast.Name | None = None


@dataclass(frozen=True, kw_only=True)
class Join(ast.Step):
    role: ClassVar[str] = "transform"
    left: ast.Name
    right: ast.Name
    on: tuple[ast.Name, ...] = ()
    condition: ast.Expr | None = None
    how: ast.Name | None = None
    within: JoinWithin | None = None

    def inputs(self) -> list[ast.Name]:
        return [self.left, self.right]


# Stream-static join types by the side the stream is on. The static side may never be the one
# whose unmatched rows are kept or whose rows are tested for a match: deciding that needs the
# whole stream, which never ends (Spark's supported stream-static outer joins).
_STREAM_STATIC_JOINS = {
    "left": frozenset({"inner", "left", "semi", "anti"}),
    "right": frozenset({"inner", "right"}),
}
# Time-bounded joins of two streams Spark runs in append mode (watermarks on both sides).
_STREAM_STREAM_JOINS = ("inner", "left", "right")


def check(ctx: CheckContext, step: Join, inputs: Sequence[RecordSchema]) -> Lowered | None:
    left, right = inputs
    how = step.how.value if step.how else "inner"
    if bool(step.on) == (step.condition is not None):
        ctx.error(
            "E210",
            "a join needs exactly one of `on` or `condition`",
            step.span,
            'use "on": ["key"] for equi-joins, "condition" for anything else',
        )
        return None
    args: dict[str, Any] = {"how": how}
    columns: dict[str, DataType] = {}
    decided: list[ColumnSource] = []  # the columns that decide which rows match
    sides = (
        _join_on(ctx, step, left, right, args=args, columns=columns)
        if step.on
        else _join_condition(ctx, step, left, right, args, decided=decided)
    )
    if sides is None:
        return None
    lrest, rrest = sides
    columns.update({n: _join_nullability(t, how, "left") for n, t in lrest.items()})
    if how not in ("semi", "anti"):
        for n, t in rrest.items():
            if n in columns:
                ctx.error(
                    "E208",
                    f"column `{n}` exists on both sides of the join",
                    step.right.span,
                    "rename it in a select/derive step first, or join `on` it",
                    column=n,
                )
                return None
            columns[n] = _join_nullability(t, how, "right")
    passthrough = _join_passes_through(columns, lrest, rrest, left=left, right=right, args=args)
    flow = _lineage(step, how, lrest, rrest, decided)
    out = ctx.derived(step, columns)
    return Lowered(args, out, recheck=() if passthrough else None, lineage=flow)


def _lineage(
    step: Join,
    how: str,
    lrest: Mapping[str, DataType],
    rrest: Mapping[str, DataType],
    decided: list[ColumnSource],
) -> StepLineage:
    """Each side's columns copied (the left's alone for semi and anti, which keep no right
    column), a key from the side the runtime takes it from; the keys, the condition's
    columns and a time bound's decide the rows."""
    left, right = step.left.value, step.right.value
    keys = [k.value for k in step.on]
    both = how not in ("semi", "anti")
    # A key as the runtime makes it: the right side's in a right join, coalesce(left, right)
    # in a full one, else the left side's.
    if how == "full":
        flow = {k: used(left, [k], TRANSFORMATION) + used(right, [k], TRANSFORMATION) for k in keys}
    else:
        flow = identity(right if how == "right" else left, keys)
    flow.update(identity(left, lrest))
    if both:
        flow.update(identity(right, rrest))
    rows = [*decided, *used(left, keys, JOIN), *used(right, keys, JOIN)]
    if step.within is not None:  # the time bound decides matches too
        rows += [
            ColumnSource(left, step.within.left_time.value, JOIN),
            ColumnSource(right, step.within.right_time.value, JOIN),
        ]
    return StepLineage.of(flow, rows)


def _join_on(
    ctx: CheckContext,
    step: Join,
    left: RecordSchema,
    right: RecordSchema,
    *,
    args: dict[str, Any],
    columns: dict[str, DataType],
) -> tuple[dict[str, DataType], dict[str, DataType]] | None:
    """An equi-join: keys into ``args`` and ``columns``; the other columns of each side."""
    lcols, rcols = left.columns(), right.columns()
    ok = ctx.columns_exist(step.on, left, f"`on` (left side `{step.left.value}`)")
    ok = ctx.columns_exist(step.on, right, f"`on` (right side `{step.right.value}`)") and ok
    if not ok:
        return None
    keys = [k.value for k in step.on]
    for k in step.on:
        joined = common_type(lcols[k.value], rcols[k.value])
        if joined is None:
            ctx.error(
                "E304",
                f"join key `{k.value}` is {lcols[k.value].describe()} on the left and "
                f"{rcols[k.value].describe()} on the right",
                k.span,
                "cast one side in a derive step first",
                column=k.value,
            )
            return None
        columns[k.value] = _join_nullability(joined, args["how"], "key")
    args["on"] = tuple(keys)
    if step.within is not None:
        bound = _within(ctx, step.within, left, right)
        if bound is None:
            return None
        args["within"] = bound
    return (
        {n: t for n, t in lcols.items() if n not in keys},
        {n: t for n, t in rcols.items() if n not in keys},
    )


def _join_condition(
    ctx: CheckContext,
    step: Join,
    left: RecordSchema,
    right: RecordSchema,
    args: dict[str, Any],
    *,
    decided: list[ColumnSource],
) -> tuple[dict[str, DataType], dict[str, DataType]] | None:
    """A join on a condition: its SQL into ``args``, the columns it reads into ``decided``;
    every column of each side."""
    assert step.condition is not None
    if step.within is not None:
        ctx.error(
            "E210",
            "a time bound (`within`) needs the join's key columns (`on`)",
            step.within.span,
            'join "on": ["key"] and give the time bound in `within`',
        )
        return None
    lcols, rcols = left.columns(), right.columns()
    scope = Scope({}, {"left": lcols, "right": rcols})
    checked = ctx.expr(step.condition, scope, Context.PREDICATE)
    if checked is None:
        return None
    args["condition"] = checked.sql
    sides = {"left": step.left.value, "right": step.right.value}
    for ref in sorted(checked.columns):
        side, _, column = ref.partition(".")
        decided.append(ColumnSource(sides[side], column, JOIN))
    return dict(lcols), dict(rcols)


def _within(
    ctx: CheckContext, within: JoinWithin, left: RecordSchema, right: RecordSchema
) -> dict[str, str] | None:
    ok = True
    for column, schema, side in (
        (within.left_time, left, "left"),
        (within.right_time, right, "right"),
    ):
        if not ctx.columns_exist([column], schema, f"`within` ({side} side)"):
            ok = False
            continue
        ctype = schema.columns()[column.value]
        if ctype.kind != "timestamp":
            ctx.error(
                "E304",
                f"`within` {side} time `{column.value}` is {ctype.describe()}, not a timestamp",
                column.span,
                "name an event-time (timestamp) column",
                column=column.value,
            )
            ok = False
    durations = (within.after, within.watermark, *([within.before] if within.before else []))
    problems = duration_problems(durations)
    ctx.report(problems)
    if not ok or problems:
        return None
    bound = {
        "left_time": within.left_time.value,
        "right_time": within.right_time.value,
        "after": within.after.value,
        "watermark": within.watermark.value,
    }
    if within.before is not None:
        bound["before"] = within.before.value
    return bound


def streaming(ctx: CheckContext, step: Join) -> None:
    left, right = (ctx.is_stream(r.value) for r in (step.left, step.right))
    if left is None or right is None:
        return  # an input failed and said why; which side streams may be unknown
    if left and right:
        how = step.how.value if step.how is not None else "inner"
        if step.within is None:
            ctx.error(
                "E407",
                f"join `{step.id.value}`: `{step.left.value}` and `{step.right.value}` are "
                "both streams; without a time bound each side's state grows forever",
                step.right.span,
                'add "within": {"left_time", "right_time", "after", "watermark"}',
            )
        elif how not in _STREAM_STREAM_JOINS:
            ctx.error(
                "E407",
                f"join `{step.id.value}`: a `{how}` join of two streams is not supported",
                step.how.span if step.how is not None else step.span,
                "use " + ", ".join(_STREAM_STREAM_JOINS),
                how=how,
            )
        return
    if not (left or right):
        return
    side, stream = ("left", step.left) if left else ("right", step.right)
    how = step.how.value if step.how is not None else "inner"
    if how in _STREAM_STATIC_JOINS[side]:
        return
    ctx.error(
        "E407",
        f"join `{step.id.value}`: a `{how}` join with the stream `{stream.value}` on the "
        f"{side} needs the whole stream to decide the static side's rows, and it never ends",
        step.how.span if step.how is not None else step.span,
        "with the stream on the left use inner, left, semi or anti"
        if side == "left"
        else "with the stream on the right use inner or right, "
        "or swap `left` and `right` to put the stream on the left",
        how=how,
        stream=stream.value,
    )


def _join_passes_through(
    columns: Mapping[str, DataType],
    lrest: Mapping[str, DataType],
    rrest: Mapping[str, DataType],
    *,
    left: RecordSchema,
    right: RecordSchema,
    args: Mapping[str, Any],
) -> bool:
    """Whether each output column admits every value of the input columns it comes from.

    A join creates no value: each output column holds values of an input column. Its records
    need the Avro round trip again only where a column's type is not one that admits every
    value of its source (a key widened from int to long, say)."""
    how = args["how"]
    lcols, rcols = left.columns(), right.columns()
    sources: dict[str, list[DataType]] = {n: [t] for n, t in lrest.items()}
    if how not in ("semi", "anti"):
        sources.update({n: [t] for n, t in rrest.items()})
    for k in args.get("on", ()):
        sources[k] = [lcols[k]] if how in ("semi", "anti") else [lcols[k], rcols[k]]
    return all(admits(columns[n], t) for n, ts in sources.items() for t in ts)


def _join_nullability(t: DataType, how: str, side: str) -> DataType:
    outer = {"left": ("right", "full"), "right": ("left", "full"), "key": ("full",)}
    return t.with_nullable(True) if how in outer[side] else t


SPEC = PluginSpec("join", "transform", "etlc.transforms.join:join", streaming=True)
KINDS = (StepKind(Join, check, streaming, specs=(SPEC,)),)
