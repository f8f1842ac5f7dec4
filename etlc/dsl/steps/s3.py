"""The S3 extract and load: the files kinds on an object store, through a named connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etlc.dsl import ast
from etlc.dsl.steps import files
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.plugins import MavenArtifact, PluginSpec, SparkTarget
from etlc.profiles import S3Profile


@dataclass(frozen=True, kw_only=True)
class S3Extract(files.FilesExtract):
    connection: ast.Name


@dataclass(frozen=True, kw_only=True)
class S3Load(files.FilesLoad):
    connection: ast.Name


def check_extract(
    ctx: CheckContext, step: S3Extract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    lowered = files.check_extract(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, S3Profile), **lowered.args}
    return lowered


def check_load(ctx: CheckContext, step: S3Load, inputs: Sequence[RecordSchema]) -> Lowered | None:
    lowered = files.check_load(ctx, step, inputs)
    if lowered is not None:
        lowered.args = {"connection": ctx.connection(step.connection, S3Profile), **lowered.args}
    return lowered


def s3a_jars(target: SparkTarget) -> tuple[MavenArtifact, ...]:
    """S3A from hadoop-aws at pyspark's own Hadoop version, with the AWS SDK it loads, and
    spark-hadoop-cloud's PathOutputCommitProtocol, which binds S3A's committers (no rename
    commits)."""
    return (
        MavenArtifact("org.apache.hadoop", "hadoop-aws", target.hadoop),
        target.spark_module("spark-hadoop-cloud", target.hadoop_cloud),
        *target.aws,
    )


EXTRACT = PluginSpec(
    "s3",
    "extract",
    "etlc.connectors.s3:S3Extractor",
    streaming=True,
    artifacts=s3a_jars,
    format_artifacts=files.DELTA_JARS,
    format_conf=files.DELTA_CONF,
)
LOAD = PluginSpec(
    "s3",
    "load",
    "etlc.connectors.s3:S3Loader",
    streaming=True,
    write_modes=files.LOAD_MODES,
    write_mode_notes={"upsert": files.UPSERT_NOTE},
    artifacts=s3a_jars,
    format_write_modes=files.DELTA_MODES,
    format_artifacts=files.DELTA_JARS,
    format_conf=files.DELTA_CONF,
)
# Keyed by exact class: S3Extract and S3Load subclass the files nodes, so each has its row.
KINDS = (
    StepKind(S3Extract, check_extract, files.refresh_rule, specs=(EXTRACT,)),
    StepKind(S3Load, check_load, specs=(LOAD,)),
)
