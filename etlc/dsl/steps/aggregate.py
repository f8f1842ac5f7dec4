"""The aggregate step: one row per combination of its ``group_by`` columns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.expressions import CheckedExpr, Context, Scope
from etlc.dsl.lineage import AGGREGATION, GROUP_BY, ColumnSource, StepLineage, identity, used
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import DataType, RecordSchema
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class Aggregate(ast.Step):
    role: ClassVar[str] = "transform"
    input: ast.Name
    aggregates: Mapping[str, ast.Expr]
    group_by: tuple[ast.Name, ...] = ()

    def inputs(self) -> list[ast.Name]:
        return [self.input]


def check(ctx: CheckContext, step: Aggregate, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    keys_ok = ctx.columns_exist(step.group_by, schema, "group_by")
    aggs = aggregates(ctx, step.aggregates, schema, step.group_by)
    if not keys_ok or aggs is None:
        return None
    keys = [k.value for k in step.group_by]
    columns = {k: schema.columns()[k] for k in keys}
    if not no_clash(ctx, columns, aggs, step.aggregates):
        return None
    columns.update({name: c.type for name, c in aggs.items()})
    args = {"group_by": tuple(keys), "aggregates": {name: c.sql for name, c in aggs.items()}}
    flow = grouped_lineage(step.input.value, keys, aggs)
    return Lowered(args, ctx.derived(step, columns), unique_by=frozenset(keys), lineage=flow)


def grouped_lineage(
    source: str,
    keys: Sequence[str],
    aggs: Mapping[str, CheckedExpr],
    rows: Sequence[ColumnSource] = (),
) -> StepLineage:
    """The group keys copied, each aggregate from the columns it reads; the keys (and
    ``rows``) decide the rows."""
    flow = identity(source, keys)
    flow.update({name: used(source, c.columns, AGGREGATION) for name, c in aggs.items()})
    return StepLineage.of(flow, [*used(source, keys, GROUP_BY), *rows])


def streaming(ctx: CheckContext, step: Aggregate) -> None:
    # Whether Spark can run it depends on the loads downstream (their output mode), which
    # are checked once every step is: see the checker's _check_stream_aggregates.
    source = ctx.stream_input(step)
    if source is not None:
        ctx.stream_aggregate(step, source)


def aggregates(
    ctx: CheckContext,
    exprs: Mapping[str, ast.Expr],
    schema: RecordSchema,
    keys: Sequence[ast.Name],
) -> dict[str, CheckedExpr] | None:
    """Each aggregate expression checked against the input and the group keys, by output
    column (None when any is wrong)."""
    scope = Scope(schema.columns())
    checked: dict[str, CheckedExpr] = {}
    for name, expr in exprs.items():
        done = ctx.expr(expr, scope, Context.AGGREGATE, (k.value for k in keys))
        if done is not None:
            checked[name] = done
    return checked if len(checked) == len(exprs) else None


def no_clash(
    ctx: CheckContext,
    columns: Mapping[str, DataType],
    added: Mapping[str, Any],
    where: Mapping[str, ast.Expr],
) -> bool:
    """Whether no aggregate takes the name of a group key (or window column); E208 if one does."""
    clashes = [n for n in added if n in columns]
    for n in clashes:
        ctx.error(
            "E208",
            f"output column `{n}` is defined twice",
            where[n].span,
            "give the aggregate another name",
            column=n,
        )
    return not clashes


# Fine on the static side of a streaming pipeline; over a stream the checker rejects it with
# E406, which names the fix (a window with a watermark), not E402's bare "cannot run".
SPEC = PluginSpec(
    "aggregate",
    "transform",
    "etlc.transforms.aggregate:aggregate",
    streaming=True,
    reads_every_record=True,
)
KINDS = (StepKind(Aggregate, check, streaming, specs=(SPEC,)),)
