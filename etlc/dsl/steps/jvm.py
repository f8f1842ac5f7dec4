"""The JVM step: a transform implemented by a JVM class (``etlc.jvm.transform.Transform``),
its options checked against the options schema the class declares, when one is found."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc.dsl import ast
from etlc.dsl.diagnostics import Severity, diag, did_you_mean
from etlc.dsl.jvm_steps import (
    ETLC_PACKAGE,
    OptionsSchema,
    OptionsSchemaError,
    load_options_schema,
    schema_file,
    shipped_classes,
)
from etlc.dsl.lineage import unknown
from etlc.dsl.plan import EnvVariables
from etlc.dsl.schema_validation import validate
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.steps.plugin import plugin_value
from etlc.dsl.tree import JArray, JMember, JObject, JScalar, JValue, locate
from etlc.dsl.types import RecordSchema
from etlc.plugins import PluginSpec


@dataclass(frozen=True, kw_only=True)
class JvmStep(ast.Step):
    """A transform implemented by a JVM class (``etlc.jvm.transform.Transform``)."""

    role: ClassVar[str] = "transform"
    input: ast.Name
    class_: ast.Name
    options: ast.JsonValue | None = None
    schema: ast.Name | None = None  # absent: the output has the input's schema

    def inputs(self) -> list[ast.Name]:
        return [self.input]


def check(ctx: CheckContext, step: JvmStep, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    class_name = step.class_.value
    if not _jvm_class(ctx, step.class_):
        return None
    out = schema if step.schema is None else ctx.load_avro(step.schema)
    if out is None:
        return None
    declared = _jvm_options_schema(ctx, step)
    if declared is not None and not _jvm_options(ctx, step, declared, schema):
        return None
    # The step as the class reads it (etlc.jvm.config.JvmStep), ${var}s resolved at run time.
    config: dict[str, Any] = {
        "id": step.id.value,
        "type": step.type.value,
        "input": step.input.value,
        "class": class_name,
    }
    if step.options is not None:
        config["options"] = _json_value(ctx, step.options.value)
    if step.schema is not None:
        config["schema"] = step.schema.value
    args = {"class_name": class_name, "step": config, "variables": EnvVariables()}
    # The class's code is not the compiler's to read: its declared columns, sources unknown.
    return Lowered(args, ctx.derived(step, out.columns()), lineage=unknown(out.columns()))


def _jvm_class(ctx: CheckContext, ref: ast.Name) -> bool:
    """A class name the JVM could load: qualified, and one etlc ships if in etlc's package."""
    name, known = ref.value, shipped_classes()
    if "." not in name:
        same = [k for k in known if k.rsplit(".", 1)[-1] == name]
        ctx.error(
            "E212",
            f"`{name}` is not a fully qualified class name",
            ref.span,
            f"did you mean `{same[0]}`?"
            if same
            else "write its package too, e.g. `com.example.steps.Dedupe`",
            class_name=name,
        )
        return False
    if name.startswith(ETLC_PACKAGE) and name not in known:
        ctx.error(
            "E212",
            f"etlc's JVM module has no step class `{name}`",
            ref.span,
            did_you_mean(name, known),
            class_name=name,
        )
        return False
    return True


def _jvm_options_schema(ctx: CheckContext, step: JvmStep) -> OptionsSchema | None:
    class_name = step.class_.value
    try:
        path = schema_file(class_name, ctx.options.jvm_schema_dirs, ctx.options.project_roots)
    except OptionsSchemaError as exc:
        ctx.error(exc.code, str(exc), step.class_.span, exc.hint)
        return None
    if path is None:
        if step.options is not None and step.options.value:
            ctx.report(
                [
                    diag(
                        "W204",
                        f"the options of `{class_name}` are not checked at compile time: "
                        f"no options schema `{class_name}.json` was found",
                        step.options.span,
                        f"add schemas/jvm/{class_name}.json (`etlc.jvm.transform.StepSchemas "
                        f"{class_name}` prints the one the class declares)",
                        Severity.WARNING,
                        class_name=class_name,
                    )
                ]
            )
        return None
    try:
        return load_options_schema(path)
    except OptionsSchemaError as exc:
        ctx.error(exc.code, str(exc), step.class_.span, exc.hint)
        return None


def _jvm_options(
    ctx: CheckContext, step: JvmStep, declared: OptionsSchema, input_: RecordSchema
) -> bool:
    """The step's options against the schema its class declares; column names against the
    input. Each problem is one E213 (E302 for a column) at the option it is about."""
    class_name = step.class_.value
    tree: JValue = step.options.tree if step.options is not None else JObject(step.span, ())
    root = JObject(step.span, (JMember("options", tree.span, tree),))
    found = validate(root, declared.wrapper, ctx.file)
    for d in found:
        ctx.error(
            "E213",
            f"{d.message} (the options schema of `{class_name}`)",
            d.span,
            d.hint,
            class_name=class_name,
            rule=d.code,
        )
    if found:
        return False
    ok = True
    for option in declared.column_options():
        node = locate(tree, (option,))
        items = node.items if isinstance(node, JArray) else (node,) if node else ()
        names = [ast.Name(str(i.value), i.span) for i in items if isinstance(i, JScalar)]
        ok = ctx.columns_exist(names, input_, f"option `{option}`") and ok
    return ok


def _json_value(ctx: CheckContext, value: Any) -> Any:
    """A JSON value for the driver to hand over as JSON: arrays stay lists, strings with
    ``${var}`` are resolved at run time."""
    if isinstance(value, list):
        return [_json_value(ctx, v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(ctx, v) for k, v in value.items()}
    return plugin_value(ctx, value)


# A JVM class is opaque to the checker: whether it keeps state across micro-batches (and so
# needs a watermark) cannot be known, so streaming pipelines reject it.
SPEC = PluginSpec(
    "jvm",
    "transform",
    "etlc.transforms.jvm:jvm_transform",
    streaming_note="a JVM class may keep state the checker cannot see (and so cannot bound "
    'with a watermark); run it in a batch pipeline ("mode": "batch")',
)
KINDS = (StepKind(JvmStep, check, specs=(SPEC,)),)
