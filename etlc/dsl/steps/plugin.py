"""A third-party step: an extract, transform or load of a type an installed plugin registers
(``etlc.plugins`` entry point), its options handed to the plugin's strategy as written."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from etlc.dsl import ast
from etlc.dsl.plan import EnvString
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.dsl.variables import ENV_VAR, VAR_NAME


def check(
    ctx: CheckContext, step: ast.PluginStep, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    spec = ctx.plugins.get(step.role, step.type.value)  # type: ignore[arg-type]
    assert spec is not None
    args: dict[str, Any] = {k: plugin_value(ctx, v) for k, v in sorted(step.options.items())}
    declared = step.role == "extract" or (step.role == "transform" and spec.output == "declared")
    if declared:
        if step.schema is None:
            ctx.error(
                "E103",
                f"a `{step.type.value}` step needs a `schema` (.avsc)",
                step.span,
                'add "schema": "<name>.avsc"',
            )
            return None
        schema = ctx.load_avro(step.schema)
        if schema is None:
            return None
        args["schema_ddl"] = schema.spark_ddl()
    elif not inputs:
        return None
    else:
        schema = inputs[0]
    if step.keys and ctx.columns_exist(step.keys, schema, "keys"):
        args["keys"] = tuple(n.value for n in step.keys)
    if step.role == "load":
        return Lowered(args, schema, mode=step.mode.value if step.mode else "append")
    if step.role == "extract" and step.schema is not None:
        return Lowered(args, schema, rules=ctx.validation_rules(schema, step.schema))
    return Lowered(args, ctx.derived(step, schema.columns()))


def plugin_value(ctx: CheckContext, value: Any) -> Any:
    """An option value as the strategy is given it: a string holding ``${...}`` is resolved at
    run time, and each reference that is a variable name must be defined by the environment
    files; dicts and lists are walked (lists become tuples)."""
    if isinstance(value, str) and ENV_VAR.search(value):
        for ref in ENV_VAR.findall(value):
            if VAR_NAME.match(ref):
                ctx.variable(ref)
        return EnvString(value)
    if isinstance(value, dict):
        return {k: plugin_value(ctx, v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(plugin_value(ctx, v) for v in value)
    return value


KINDS = (StepKind(ast.PluginStep, check),)
