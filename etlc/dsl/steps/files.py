"""The files extract and load: datasets in files (CSV, JSON, Parquet, Avro...) at a path.

The S3 kinds are these with a connection (see :mod:`etlc.dsl.steps.s3`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from etlc.dsl import ast
from etlc.dsl.diagnostics import Span
from etlc.dsl.durations import duration_problems, seconds
from etlc.dsl.incremental import refused_in_stream
from etlc.dsl.plan import SchemaOf
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.dsl.upserts import check_sequence
from etlc.plugins import Jars, MavenArtifact, NotOnTargetError, PluginSpec, SparkTarget


@dataclass(frozen=True, kw_only=True)
class FilesIncremental:
    lookback: ast.Name | None = None
    span: Span


@dataclass(frozen=True, kw_only=True)
class FilesExtract(ast.Step):
    role: ClassVar[str] = "extract"
    path: ast.Name
    format: ast.Name
    schema: ast.Name
    options: Mapping[str, ast.Scalar] | None = None
    refresh: ast.Name | None = None
    incremental: FilesIncremental | None = None


# How late a file may appear, modified before the newest one a run read, and still be read.
DEFAULT_FILES_LOOKBACK_S = 3600


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
    args: dict[str, Any] = {
        "path": ctx.text(step.path),
        "format": step.format.value,
        "schema": SchemaOf(step.id.value),
        "options": options,
    }
    if step.incremental is not None:
        by = _incremental_by(ctx, step, step.incremental)
        if by is None:
            return None
        args["incremental"] = by
    return Lowered(args, schema, rules=rules)


def _incremental_by(
    ctx: CheckContext, step: FilesExtract, inc: FilesIncremental
) -> dict[str, Any] | None:
    """The runtime's ``Incremental`` of files: by the files listed, with the lookback in
    milliseconds of modification time."""
    if refused_in_stream(ctx, inc.span):
        return None
    if step.format.value == "delta":
        ctx.error(
            "E216",
            "a Delta table is read whole: `incremental` reads the new files of a folder, and a "
            "Delta table's files are its own (a compaction rewrites them)",
            inc.span,
            "drop `incremental`, or read the folder the files land in",
        )
        return None
    lookback = DEFAULT_FILES_LOOKBACK_S
    if inc.lookback is not None:
        found = duration_problems([inc.lookback])
        if found:
            ctx.report(found)
            return None
        lookback = seconds(inc.lookback.value)
    return {"kind": "files", "lookback": lookback * 1000}


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


def delta_jars(target: SparkTarget) -> tuple[MavenArtifact, ...]:
    """The Delta Lake release built for the target's Spark (Iceberg has no runtime for Spark
    4.2 yet)."""
    if target.delta is None:
        raise NotOnTargetError(
            f"Delta Lake has no release built for {target.shown}"
            + (f" ({target.delta_note})" if target.delta_note else "")
        )
    return (
        MavenArtifact("io.delta", f"delta-spark_{target.scala}", target.delta),
        MavenArtifact("io.delta", "delta-storage", target.delta),
    )


# What format `delta` adds to a files or S3 step: MERGE (upsert), its jars, and Delta's SQL
# extension and catalog, which MERGE and Delta's table API need from the session's start.
DELTA_MODES: Mapping[str, frozenset[str]] = {"delta": frozenset({"upsert"})}
DELTA_JARS: Mapping[str, Jars] = {"delta": delta_jars}
DELTA_CONF: Mapping[str, tuple[str, ...]] = {
    "delta": (
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
    )
}
UPSERT_NOTE = (
    'plain files have no MERGE; upsert needs a table format: write "format": "delta" '
    "(Delta Lake), or use `append` or `overwrite`"
)
LOAD_MODES = frozenset({"append", "overwrite"})

EXTRACT = PluginSpec(
    "files",
    "extract",
    "etlc.connectors.files:FilesExtractor",
    streaming=True,
    format_artifacts=DELTA_JARS,
    format_conf=DELTA_CONF,
)
LOAD = PluginSpec(
    "files",
    "load",
    "etlc.connectors.files:FilesLoader",
    streaming=True,
    write_modes=LOAD_MODES,
    write_mode_notes={"upsert": UPSERT_NOTE},
    format_write_modes=DELTA_MODES,
    format_artifacts=DELTA_JARS,
    format_conf=DELTA_CONF,
)
KINDS = (
    StepKind(FilesExtract, check_extract, refresh_rule, specs=(EXTRACT,)),
    StepKind(FilesLoad, check_load, specs=(LOAD,)),
)
