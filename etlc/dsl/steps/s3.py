"""The S3 extract and load: the files kinds on an object store, through a named connection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from etlc.dsl import ast
from etlc.dsl.steps import files
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.types import RecordSchema
from etlc.plugins import MavenArtifact, PluginSpec
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


_AWS_SDK = "software.amazon.awssdk"
_AWS_SDK_VERSION = "2.35.4"
# S3A from hadoop-aws at pyspark's Hadoop version, with the individual AWS SDK v2 modules it
# loads (checked against a real S3 endpoint) instead of the 650 MB SDK bundle.
S3A: tuple[MavenArtifact, ...] = (
    MavenArtifact("org.apache.hadoop", "hadoop-aws", "3.5.0"),
    # PathOutputCommitProtocol binds the S3A magic/partitioned committers (no rename commits).
    # The one exception to "every Spark jar at 4.2.0": spark-hadoop-cloud has no 4.2.0 release
    # on Maven Central; 4.1.2 is the newest, and every class it uses exists unchanged in 4.2.0
    # (checked against a real S3 endpoint for CSV, JSON, Avro and Parquet).
    MavenArtifact("org.apache.spark", "spark-hadoop-cloud_2.13", "4.1.2"),
    MavenArtifact("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", "1.3.1"),
    MavenArtifact("org.reactivestreams", "reactive-streams", "1.0.4"),
    MavenArtifact("software.amazon.eventstream", "eventstream", "1.0.1"),
    *(
        MavenArtifact(_AWS_SDK, name, _AWS_SDK_VERSION)
        for name in (
            "annotations",
            "apache-client",
            "arns",
            "auth",
            "aws-core",
            "aws-query-protocol",
            "aws-xml-protocol",
            "checksums",
            "checksums-spi",
            "crt-core",
            "endpoints-spi",
            "http-auth",
            "http-auth-aws",
            "http-auth-aws-eventstream",
            "http-auth-spi",
            "http-client-spi",
            "identity-spi",
            "json-utils",
            "metrics-spi",
            "profiles",
            "protocol-core",
            "regions",
            "retries",
            "retries-spi",
            "s3",
            "s3-transfer-manager",
            "sdk-core",
            "sts",
            "third-party-jackson-core",
            "utils",
            "utils-lite",
        )
    ),
)

EXTRACT = PluginSpec(
    "s3",
    "extract",
    "etlc.connectors.s3:S3Extractor",
    streaming=True,
    artifacts=S3A,
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
    artifacts=S3A,
    format_write_modes=files.DELTA_MODES,
    format_artifacts=files.DELTA_JARS,
    format_conf=files.DELTA_CONF,
)
# Keyed by exact class: S3Extract and S3Load subclass the files nodes, so each has its row.
KINDS = (
    StepKind(S3Extract, check_extract, files.refresh_rule, specs=(EXTRACT,)),
    StepKind(S3Load, check_load, specs=(LOAD,)),
)
