"""The Spark lines etlc compiles drivers for, and the exact jars each one runs with.

A connector jar must match the Spark and Scala its cluster runs: one built for another Spark
fails with a class-loading or binary-compatibility error at run time, far from the
definition. A project names its line (``spark_version`` in etlc.toml, or ``etlc compile
--spark-version``); the compiler takes every step's coordinates from that line's row here,
refuses what the line cannot run (:class:`NotOnTargetError`), and writes the line into the driver,
which checks it against the Spark it finds. Every jar named here is pinned by its sha256
(``jvm/jars.sha256``).

The releases are the newest of each line whose connector jars all resolve from the package
registry together, so that a line's jars come from one Spark release.

Shared by the compiler and the drivers: the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class MavenArtifact:
    group: str
    artifact: str
    version: str

    @property
    def coordinate(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}"

    @property
    def jar_name(self) -> str:
        # Group-qualified: several AWS SDK modules are called `utils`, `auth`, `annotations`.
        return f"{self.group}.{self.artifact}-{self.version}.jar"


class NotOnTargetError(Exception):
    """What a Spark line cannot run; ``str()`` says why in one line, naming the line."""


@dataclass(frozen=True)
class SparkTarget:
    """One Spark line, as its drivers run on it."""

    line: str  # what `spark_version` names: "3.5"
    release: str  # the Spark release its connector jars come from
    scala: str  # the Scala binary version its jars are built for
    python: str  # the lowest Python the runtime runs on there (pyspark's own lowest)
    hadoop: str  # the Hadoop client pyspark bundles, which hadoop-aws must match
    kafka_clients: str  # what spark-sql-kafka of that release depends on
    commons_pool2: str
    hadoop_cloud: str  # spark-hadoop-cloud: the release's own, where one was published
    aws: tuple[MavenArtifact, ...]  # the AWS SDK modules that release's hadoop-aws loads
    delta: str | None  # the Delta Lake release built for the line, if any
    delta_note: str = ""  # why there is none
    # Session settings every driver of the line is submitted with: where its defaults differ
    # from the semantics `etlc lint` checks against (Spark 4's).
    conf: tuple[str, ...] = ()

    # A module taken from a later patch release of the line than ``release``, for a fix.
    patched: tuple[tuple[str, str], ...] = ()  # (module, release)

    def spark_module(self, name: str, version: str | None = None) -> MavenArtifact:
        """``org.apache.spark:<name>_<scala>:<release>`` (or the module's patched release)."""
        release = version or dict(self.patched).get(name, self.release)
        return MavenArtifact("org.apache.spark", f"{name}_{self.scala}", release)

    @property
    def shown(self) -> str:
        return f"Spark {self.line}"

    def jvm_jar(self, version: str) -> str:
        """etlc's own JVM module for this line's Scala, as the jars folder holds it (the 2.13
        build keeps the name it had when it was the only one)."""
        suffix = "" if self.scala == "2.13" else f"_{self.scala}"
        return f"etlc-jvm{suffix}-{version}.jar"


def _aws_v2(version: str, names: tuple[str, ...]) -> tuple[MavenArtifact, ...]:
    return tuple(MavenArtifact("software.amazon.awssdk", name, version) for name in names)


# The AWS SDK v2 modules S3A loads (checked against a real S3 endpoint), instead of the SDK's
# bundle of 650 MB.
_SDK_V2_MODULES = (
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
_ANALYTICS = "software.amazon.s3.analyticsaccelerator"
_S3A_STREAMS = (
    MavenArtifact("org.reactivestreams", "reactive-streams", "1.0.4"),
    MavenArtifact("software.amazon.eventstream", "eventstream", "1.0.1"),
)

DEFAULT_LINE = "4.2"
TARGETS: Mapping[str, SparkTarget] = {
    "3.5": SparkTarget(
        line="3.5",
        release="3.5.7",
        scala="2.12",
        # Amazon EMR 7 runs Python 3.9 (pyspark 3.5 itself takes 3.8).
        python="3.9",
        hadoop="3.3.4",
        kafka_clients="3.4.1",
        commons_pool2="2.11.1",
        hadoop_cloud="3.5.7",
        # Hadoop 3.3's S3A is written against the AWS SDK v1, which it takes whole.
        aws=(MavenArtifact("com.amazonaws", "aws-java-sdk-bundle", "1.12.262"),),
        delta="3.3.3",
        # ANSI SQL is Spark 4's default: a bad cast or an overflow fails the run instead of
        # writing NULL, as the checker's types assume.
        # Spark 3.5 never fills an observation whose part of the plan adaptive execution
        # replaced with an empty relation (4.x reports it empty), so the counts of a step
        # that read nothing would never arrive: that rewrite stays off.
        conf=(
            "spark.sql.ansi.enabled=true",
            "spark.sql.adaptive.optimizer.excludedRules="
            "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation",
        ),
    ),
    "4.0": SparkTarget(
        line="4.0",
        release="4.0.0",
        scala="2.13",
        python="3.9",
        hadoop="3.4.1",
        kafka_clients="3.9.0",
        commons_pool2="2.12.0",
        hadoop_cloud="4.0.0",
        # Hadoop 3.4.1's S3A is built against the SDK v2 bundle 2.24.6, taken whole: not every
        # mirror serves each of its modules alone (s3-transfer-manager 2.24.6, for one).
        aws=(MavenArtifact("software.amazon.awssdk", "bundle", "2.24.6"),),
        delta="4.0.1",
    ),
    "4.1": SparkTarget(
        line="4.1",
        release="4.1.1",
        scala="2.13",
        python="3.10",
        hadoop="3.4.2",
        kafka_clients="3.9.1",
        commons_pool2="2.12.1",
        hadoop_cloud="4.1.1",
        # 4.1.1's Kafka source fails a stream's query after a restart that re-runs a batch
        # begun before a crash (SPARK-57438: a NullPointerException in its progress metrics);
        # 4.1.3 has the fix. Its kafka-clients and commons-pool2 are 4.1.1's.
        patched=(("spark-sql-kafka-0-10", "4.1.3"),),
        aws=(
            MavenArtifact(_ANALYTICS, "analyticsaccelerator-s3", "1.2.1"),
            *_S3A_STREAMS,
            *_aws_v2("2.29.52", tuple(m for m in _SDK_V2_MODULES if m != "utils-lite")),
        ),
        delta="4.1.0",
    ),
    "4.2": SparkTarget(
        line="4.2",
        release="4.2.0",
        scala="2.13",
        python="3.10",
        hadoop="3.5.0",
        kafka_clients="3.9.2",
        commons_pool2="2.13.1",
        # No 4.2.0 release on Maven Central; 4.1.2 is the newest, and every class it uses
        # exists unchanged in 4.2.0 (checked against a real S3 endpoint for CSV, JSON, Avro
        # and Parquet).
        hadoop_cloud="4.1.2",
        aws=(
            MavenArtifact(_ANALYTICS, "analyticsaccelerator-s3", "1.3.1"),
            *_S3A_STREAMS,
            *_aws_v2("2.35.4", _SDK_V2_MODULES),
        ),
        delta="4.4.0",
    ),
}


_SHOWN = re.compile(r"[0-9A-Za-z.+_-]{1,32}")


def target_problem(line: str) -> str | None:
    """Why ``line`` names no Spark line etlc compiles for (None when it names one). The
    value is repeated only when it looks like a version: it comes from a command line or a
    project file, and may hold anything."""
    if line in TARGETS:
        return None
    known = ", ".join(TARGETS)
    release = next((t for t in TARGETS if line.startswith(f"{t}.")), None)
    if release is not None:
        return f"name the Spark line, not a release: `{release}` (etlc compiles for {known})"
    shown = f", not `{line}`" if _SHOWN.fullmatch(line) else ""
    return f"etlc compiles drivers for Spark {known}{shown}"


def spark_target(line: str = DEFAULT_LINE) -> SparkTarget:
    """The row of ``line``; ValueError (``target_problem``'s text) for another."""
    why = target_problem(line)
    if why:
        raise ValueError(why)
    return TARGETS[line]


def line_of(version: str) -> str:
    """The line of a Spark version string (``3.5.7`` -> ``3.5``; ``4.1.0-SNAPSHOT`` too)."""
    return ".".join(version.split(".")[:2])
