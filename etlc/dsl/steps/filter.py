"""The filter step: the rows of its input for which a condition holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from etlc.dsl import ast
from etlc.dsl.expressions import Context, Scope
from etlc.dsl.lineage import FILTER, StepLineage, identity, used
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class Filter(ast.Step):
    role: ClassVar[str] = "transform"
    input: ast.Name
    condition: ast.Expr

    def inputs(self) -> list[ast.Name]:
        return [self.input]


def check(ctx: CheckContext, step: Filter, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    checked = ctx.expr(step.condition, Scope(schema.columns()), Context.PREDICATE)
    if checked is None:
        return None
    out = ctx.derived(step, schema.columns())
    source = step.input.value
    flow = StepLineage.of(identity(source, schema.columns()), used(source, checked.columns, FILTER))
    # Its rows are input rows, unchanged: they crossed the Avro boundary already.
    return Lowered({"condition": checked.sql}, out, recheck=(), lineage=flow)


SPEC = PluginSpec(
    "filter",
    "transform",
    "etlc.transforms.filter:filter_rows",
    streaming=True,
    reads_every_record=True,
)
KINDS = (StepKind(Filter, check, specs=(SPEC,)),)
