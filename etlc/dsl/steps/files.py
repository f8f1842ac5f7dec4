"""The files extract and load: datasets in files (CSV, JSON, Parquet, Avro...) at a path.

The S3 kinds are these with a connection (see :mod:`etlc.dsl.steps.s3`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from etlc.dsl import ast
from etlc.dsl.durations import duration_problems
from etlc.dsl.plan import SchemaOf
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.dsl.upserts import check_sequence


@dataclass(frozen=True, kw_only=True)
class FilesExtract(ast.Step):
    role: ClassVar[str] = "extract"
    path: ast.Name
    format: ast.Name
    schema: ast.Name
    options: Mapping[str, ast.Scalar] | None = None
    refresh: ast.Name | None = None


@dataclass(frozen=True, kw_only=True)
class FilesLoad(ast.Step):
    role: ClassVar[str] = "load"
    input: ast.Name
    path: ast.Name
    format: ast.Name
    mode: ast.Name
    partition_by: tuple[ast.Name, ...] = ()
    keys: tuple[ast.Name, ...] = ()
    sequence_by: ast.Name | None = None
    options: Mapping[str, ast.Scalar] | None = None

    def inputs(self) -> list[ast.Name]:
        return [self.input]


# Spark reader/writer option names for the DSL's snake_case file options.
_SPARK_FILE_OPTIONS = {
    "header": "header",
    "delimiter": "sep",
    "quote": "quote",
    "escape": "escape",
    "encoding": "encoding",
    "null_value": "nullValue",
    "date_format": "dateFormat",
    "timestamp_format": "timestampFormat",
    "multiline": "multiLine",
    "recursive": "recursiveFileLookup",
    "compression": "compression",
}


def check_extract(
    ctx: CheckContext, step: FilesExtract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    schema = ctx.load_avro(step.schema)
    if schema is None:
        return None
    rules = ctx.validation_rules(schema, step.schema)
    options = _spark_options(step.options)
    return Lowered(
        {
            "path": ctx.text(step.path),
            "format": step.format.value,
            "schema": SchemaOf(step.id.value),
            "options": options,
        },
        schema,
        rules=rules,
    )


def check_load(
    ctx: CheckContext, step: FilesLoad, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    [schema] = inputs
    mode = step.mode.value
    ctx.columns_exist(step.partition_by, schema, "partition_by")
    ctx.columns_exist(step.keys, schema, "keys")
    options = _spark_options(step.options)
    single = options.pop("single_file", None)
    args: dict[str, Any] = {
        "path": ctx.text(step.path),
        "format": step.format.value,
        "options": options,
    }
    if step.partition_by:
        args["partition_by"] = tuple(n.value for n in step.partition_by)
    if single == "true":
        args["single_file"] = True
    if mode == "upsert" and step.keys:
        args["keys"] = tuple(k.value for k in step.keys)
    if not check_sequence(ctx, step, schema, args):
        return None
    return Lowered(args, schema, mode=mode)


class Refreshed(Protocol):
    """An extract a stream may join as its static side, re-read every ``refresh``."""

    @property
    def refresh(self) -> ast.Name | None: ...


def refresh_rule(ctx: CheckContext, step: Refreshed) -> None:
    """The streaming rule of the extracts a stream may join as a static side, re-read every
    ``refresh`` (files, S3, the databases)."""
    # Only a stream uses `refresh` (a batch ignores it with W203), so only a stream bounds it.
    if step.refresh is not None:
        ctx.report(duration_problems((step.refresh,)))


def _spark_options(options: Mapping[str, ast.Scalar] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in sorted((options or {}).items()):
        text = str(value.value).lower() if isinstance(value, ast.Flag) else str(value.value)
        out[_SPARK_FILE_OPTIONS.get(key, key)] = text
    return out


KINDS = (
    StepKind(FilesExtract, check_extract, refresh_rule, types=("files",)),
    StepKind(FilesLoad, check_load, types=("files",)),
)
