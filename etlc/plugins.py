"""The plugin table: each DSL step ``type`` mapped to its implementation and capabilities.

Pure data, importable by both sides: the checker reads the capabilities to reject impossible
definitions, codegen reads the implementation path to emit imports and the Maven artifacts to
emit ``--jars`` / ``--packages``. Nothing here imports pyspark.

Third-party plugins register a :class:`PluginSpec` under the ``etlc.plugins`` entry-point
group; their ``options_schema`` (a JSON Schema object) is merged into the definition schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal

Role = Literal["extract", "transform", "load"]
SPARK_VERSION = "4.2.0"
SCALA_BINARY = "2.13"


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


def spark_module(name: str) -> MavenArtifact:
    return MavenArtifact("org.apache.spark", f"{name}_{SCALA_BINARY}", SPARK_VERSION)


POSTGRES_JDBC = MavenArtifact("org.postgresql", "postgresql", "42.7.14")
MARIADB_JDBC = MavenArtifact("org.mariadb.jdbc", "mariadb-java-client", "3.5.11")

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
KAFKA: tuple[MavenArtifact, ...] = (
    spark_module("spark-sql-kafka-0-10"),
    spark_module("spark-token-provider-kafka-0-10"),
    MavenArtifact("org.apache.kafka", "kafka-clients", "3.9.2"),
    MavenArtifact("org.apache.commons", "commons-pool2", "2.13.1"),
)

# Every driver needs spark-avro: data crosses each stage boundary as Avro.
CORE_ARTIFACTS: tuple[MavenArtifact, ...] = (spark_module("spark-avro"),)


@dataclass(frozen=True)
class PluginSpec:
    type: str
    role: Role
    impl: str  # "package.module:attribute", imported by generated drivers only
    batch: bool = True
    # Can run in a streaming pipeline. Kafka extracts are the stream; the other extracts are
    # read once, as the static side of a stream-static join. Loads write each micro-batch.
    streaming: bool = False
    write_modes: frozenset[str] = frozenset()
    write_mode_notes: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[MavenArtifact, ...] = ()
    options_schema: Mapping[str, Any] | None = None
    # What a format of a files/s3 step adds: write modes, jars and session conf (Delta Lake).
    format_write_modes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    format_artifacts: Mapping[str, tuple[MavenArtifact, ...]] = field(default_factory=dict)
    # A third-party transform's output: "input" keeps its input's schema (e.g. a dedupe),
    # "declared" takes the step's own `schema` (.avsc).
    output: Literal["input", "declared"] = "declared"
    # Why a step that cannot stream cannot, when there is more to say than that it cannot.
    streaming_note: str = ""

    @property
    def module(self) -> str:
        return self.impl.split(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.impl.split(":", 1)[1]


# Delta Lake 4.4.0 is built against Spark 4.2.0 (Iceberg has no runtime for Spark 4.2 yet).
DELTA: tuple[MavenArtifact, ...] = (
    MavenArtifact("io.delta", "delta-spark_2.13", "4.4.0"),
    MavenArtifact("io.delta", "delta-storage", "4.4.0"),
)
# Delta's SQL extension and catalog: MERGE and Delta's table API need them at session start.
FORMAT_CONF: Mapping[str, tuple[str, ...]] = {
    "delta": (
        "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog",
    )
}
_DELTA_MODES: Mapping[str, frozenset[str]] = {"delta": frozenset({"upsert"})}
_DELTA_JARS: Mapping[str, tuple[MavenArtifact, ...]] = {"delta": DELTA}

_FILE_UPSERT = (
    'plain files have no MERGE; upsert needs a table format: write "format": "delta" '
    "(Delta Lake), or use `append` or `overwrite`"
)

BUILTINS: tuple[PluginSpec, ...] = (
    PluginSpec(
        "files",
        "extract",
        "etlc.connectors.files:FilesExtractor",
        streaming=True,
        format_artifacts=_DELTA_JARS,
    ),
    PluginSpec(
        "files",
        "load",
        "etlc.connectors.files:FilesLoader",
        streaming=True,
        write_modes=frozenset({"append", "overwrite"}),
        write_mode_notes={"upsert": _FILE_UPSERT},
        format_write_modes=_DELTA_MODES,
        format_artifacts=_DELTA_JARS,
    ),
    PluginSpec(
        "s3",
        "extract",
        "etlc.connectors.s3:S3Extractor",
        streaming=True,
        artifacts=S3A,
        format_artifacts=_DELTA_JARS,
    ),
    PluginSpec(
        "s3",
        "load",
        "etlc.connectors.s3:S3Loader",
        streaming=True,
        write_modes=frozenset({"append", "overwrite"}),
        write_mode_notes={"upsert": _FILE_UPSERT},
        artifacts=S3A,
        format_write_modes=_DELTA_MODES,
        format_artifacts=_DELTA_JARS,
    ),
    PluginSpec(
        "kafka",
        "extract",
        "etlc.connectors.kafka:KafkaExtractor",
        streaming=True,
        artifacts=KAFKA,
    ),
    PluginSpec(
        "kafka",
        "load",
        "etlc.connectors.kafka:KafkaLoader",
        streaming=True,
        write_modes=frozenset({"append", "upsert"}),
        write_mode_notes={
            "overwrite": "a Kafka topic is an append-only log and cannot be replaced; use "
            "`append`, or `upsert` with `keys` on a compacted topic"
        },
        artifacts=KAFKA,
    ),
    PluginSpec(
        "postgres",
        "extract",
        "etlc.connectors.postgres:PostgresExtractor",
        streaming=True,
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "postgres",
        "load",
        "etlc.connectors.postgres:PostgresLoader",
        streaming=True,
        write_modes=frozenset({"append", "overwrite", "upsert"}),
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "extract",
        "etlc.connectors.mysql:MySqlExtractor",
        streaming=True,
        artifacts=(MARIADB_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "load",
        "etlc.connectors.mysql:MySqlLoader",
        streaming=True,
        write_modes=frozenset({"append", "overwrite", "upsert"}),
        artifacts=(MARIADB_JDBC,),
    ),
    PluginSpec("filter", "transform", "etlc.transforms.filter:filter_rows", streaming=True),
    PluginSpec("select", "transform", "etlc.transforms.select:select_columns", streaming=True),
    PluginSpec("derive", "transform", "etlc.transforms.derive:derive_columns", streaming=True),
    # Fine on the static side of a streaming pipeline; over a stream the checker rejects it with
    # E406, which names the fix (a window with a watermark), not E402's bare "cannot run".
    PluginSpec("aggregate", "transform", "etlc.transforms.aggregate:aggregate", streaming=True),
    PluginSpec("join", "transform", "etlc.transforms.join:join", streaming=True),
    PluginSpec("window", "transform", "etlc.transforms.window:window", streaming=True),
    # A JVM class is opaque to the checker: whether it keeps state across micro-batches (and
    # so needs a watermark) cannot be known, so streaming pipelines reject it.
    PluginSpec(
        "jvm",
        "transform",
        "etlc.transforms.jvm:jvm_transform",
        streaming_note="a JVM class may keep state the checker cannot see (and so cannot bound "
        'with a watermark); run it in a batch pipeline ("mode": "batch")',
    ),
)


class PluginTable:
    def __init__(self, specs: Iterable[PluginSpec], kinds: Iterable[object] = ()) -> None:
        self._specs: dict[tuple[Role, str], PluginSpec] = {}
        for spec in specs:
            self._specs[(spec.role, spec.type)] = spec
        # Third-party step kinds that check their own steps (etlc.dsl.steps.StepKind, each
        # with its `spec`); opaque here, where the compiler's types may not be imported.
        self.kinds: tuple[object, ...] = tuple(kinds)

    def get(self, role: Role, type_: str) -> PluginSpec | None:
        return self._specs.get((role, type_))

    def types(self, role: Role) -> list[str]:
        return sorted(t for r, t in self._specs if r == role)

    def third_party(self) -> list[PluginSpec]:
        builtin = {(s.role, s.type) for s in BUILTINS}
        return [s for k, s in sorted(self._specs.items()) if k not in builtin]


@cache
def plugin_table() -> PluginTable:
    """Built-ins plus what every installed ``etlc.plugins`` entry point provides: a
    PluginSpec (a step checked by etlc's generic plugin step), or a step kind carrying its
    PluginSpec as ``spec`` (a step with an AST node and check of its own), or a list of them."""
    specs: list[PluginSpec] = list(BUILTINS)
    kinds: list[object] = []
    for ep in entry_points(group="etlc.plugins"):
        loaded = ep.load()
        for item in loaded if isinstance(loaded, list | tuple) else [loaded]:
            spec = getattr(item, "spec", None)
            if isinstance(item, PluginSpec):
                specs.append(item)
            elif isinstance(spec, PluginSpec):
                specs.append(spec)
                kinds.append(item)
    return PluginTable(specs, kinds)


def builtin_write_modes(type_: str, format_: str | None = None) -> frozenset[str]:
    """The write modes of a built-in load (with those its ``format_`` adds): the one source
    for both the checker's E401 and the loader's own refusal at run time."""
    for spec in BUILTINS:
        if spec.role == "load" and spec.type == type_:
            extra = spec.format_write_modes.get(format_, frozenset()) if format_ else frozenset()
            return spec.write_modes | extra
    raise KeyError(f"no built-in load `{type_}`")
