"""A third-party step kind, as a plugin package would ship it: a `noop` load that runs its
input's whole plan and writes nothing (Spark's own `noop` data source), for dry runs.

It registers a :class:`StepKind` (its AST node, check and plugin-table row) under the
``etlc.plugins`` entry point group, the same table the built-in kinds are in, and touches
no file of etlc.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class NoopLoad(ast.Step):
    role: ClassVar[str] = "load"
    input: ast.Name
    mode: ast.Name
    # Columns that must exist (a dry run that proves a later load's keys are there).
    require: tuple[ast.Name, ...] = ()

    def inputs(self) -> list[ast.Name]:
        return [self.input]


def check(ctx: CheckContext, step: NoopLoad, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    if not ctx.columns_exist(step.require, schema, "require"):
        return None
    return Lowered({"label": step.id.value}, schema, mode=step.mode.value)


class NoopLoader:
    """The runtime strategy (an etlc.runtime.strategies.Loader): the plan runs in full, through
    Spark's `noop` sink, and nothing is written."""

    modes: ClassVar[frozenset[str]] = frozenset({"append", "overwrite"})

    def __init__(self, label: str) -> None:
        self.label = label

    def load(self, df: Any, mode: str) -> Any:
        from etlc.runtime.strategies import LoadResult

        df.write.format("noop").mode("overwrite").save()
        return LoadResult(details={"label": self.label})

    def describe(self) -> dict[str, Any]:
        return {"label": self.label}


SPEC = PluginSpec(
    "noop",
    "load",
    "tests.unit.kind_example:NoopLoader",
    write_modes=NoopLoader.modes,
    options_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["type", "input", "mode"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "noop"},
            "input": {"type": "string"},
            "mode": {"type": "string"},
            "require": {"type": "array", "items": {"type": "string"}},
        },
    },
)
KIND = StepKind(NoopLoad, check, specs=(SPEC,))
