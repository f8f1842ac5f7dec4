"""The select and derive steps: columns computed from expressions over each input row.

A select keeps only the columns it names; a derive adds them to (or replaces them among) the
input's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from etlc.dsl import ast
from etlc.dsl.expressions import CheckedExpr, Context, Scope
from etlc.dsl.lineage import IDENTITY, TRANSFORMATION, ColumnSource, StepLineage, identity, used
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import DataType, RecordSchema, admits
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class Select(ast.Step):
    role: ClassVar[str] = "transform"
    input: ast.Name
    columns: Mapping[str, ast.Expr]

    def inputs(self) -> list[ast.Name]:
        return [self.input]


@dataclass(frozen=True, kw_only=True)
class Derive(Select):
    pass


def check(ctx: CheckContext, step: Select, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    scope = Scope(schema.columns())
    checked: dict[str, CheckedExpr] = {}
    for name, expr in step.columns.items():
        done = ctx.expr(expr, scope, Context.ROW)
        if done is not None:
            checked[name] = done
    if len(checked) != len(step.columns):
        return None
    sqls = {name: c.sql for name, c in checked.items()}
    types = {name: c.type for name, c in checked.items()}
    columns = schema.columns()
    named = {name: _named_column(c, columns) for name, c in checked.items()}
    # A column that only names an input column, of a type admitting it, makes no value.
    made = tuple(
        name for name in step.columns if not admits(types[name], columns.get(named[name] or ""))
    )
    source = step.input.value
    flow: dict[str, list[ColumnSource]] = (
        identity(source, columns) if isinstance(step, Derive) else {}
    )
    for name, c in checked.items():
        how = IDENTITY if named[name] is not None else TRANSFORMATION
        flow[name] = used(source, c.columns, how)
    lineage = StepLineage.of(flow)
    if isinstance(step, Derive):
        merged = dict(columns)
        merged.update(types)
        return Lowered({"columns": sqls}, ctx.derived(step, merged), recheck=made, lineage=lineage)
    return Lowered({"columns": sqls}, ctx.derived(step, types), recheck=made, lineage=lineage)


def _named_column(checked: CheckedExpr, columns: Mapping[str, DataType]) -> str | None:
    """The input column an expression only names, if it does (as parsed: `(amount)` and
    `amount -- note` name it too)."""
    if len(checked.columns) != 1:
        return None
    [name] = checked.columns
    return name if name in columns and checked.sql.replace("`", "") == name else None


SELECT = PluginSpec(
    "select",
    "transform",
    "etlc.transforms.select:select_columns",
    streaming=True,
    reads_every_record=True,
)
DERIVE = PluginSpec(
    "derive",
    "transform",
    "etlc.transforms.derive:derive_columns",
    streaming=True,
    reads_every_record=True,
)
KINDS = (
    StepKind(Select, check, specs=(SELECT,)),
    StepKind(Derive, check, specs=(DERIVE,)),
)
