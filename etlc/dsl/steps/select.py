"""The select and derive steps: columns computed from expressions over each input row.

A select keeps only the columns it names; a derive adds them to (or replaces them among) the
input's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from etlc.dsl import ast
from etlc.dsl.expressions import Context, Scope
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
    sqls: dict[str, str] = {}
    types: dict[str, DataType] = {}
    for name, expr in step.columns.items():
        checked = ctx.expr(expr, scope, Context.ROW)
        if checked is not None:
            sqls[name] = checked.sql
            types[name] = checked.type
    if len(sqls) != len(step.columns):
        return None
    columns = schema.columns()
    # A column that only names an input column, of a type admitting it, makes no value.
    made = tuple(
        name
        for name, expr in step.columns.items()
        if not admits(types[name], columns.get(expr.text.strip().strip("`")))
    )
    if isinstance(step, Derive):
        merged = dict(columns)
        merged.update(types)
        return Lowered({"columns": sqls}, ctx.derived(step, merged), recheck=made)
    return Lowered({"columns": sqls}, ctx.derived(step, types), recheck=made)


SELECT = PluginSpec("select", "transform", "etlc.transforms.select:select_columns", streaming=True)
DERIVE = PluginSpec("derive", "transform", "etlc.transforms.derive:derive_columns", streaming=True)
KINDS = (
    StepKind(Select, check, specs=(SELECT,)),
    StepKind(Derive, check, specs=(DERIVE,)),
)
