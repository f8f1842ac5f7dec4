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
        return f"{self.artifact}-{self.version}.jar"


def spark_module(name: str) -> MavenArtifact:
    return MavenArtifact("org.apache.spark", f"{name}_{SCALA_BINARY}", SPARK_VERSION)


POSTGRES_JDBC = MavenArtifact("org.postgresql", "postgresql", "42.7.14")
MARIADB_JDBC = MavenArtifact("org.mariadb.jdbc", "mariadb-java-client", "3.5.11")

# Every driver needs spark-avro: data crosses each stage boundary as Avro.
CORE_ARTIFACTS: tuple[MavenArtifact, ...] = (spark_module("spark-avro"),)


@dataclass(frozen=True)
class PluginSpec:
    type: str
    role: Role
    impl: str  # "package.module:attribute", imported by generated drivers only
    batch: bool = True
    streaming: bool = False
    write_modes: frozenset[str] = frozenset()
    write_mode_notes: Mapping[str, str] = field(default_factory=dict)
    artifacts: tuple[MavenArtifact, ...] = ()
    options_schema: Mapping[str, Any] | None = None
    # A third-party transform's output: "input" keeps its input's schema (e.g. a dedupe),
    # "declared" takes the step's own `schema` (.avsc).
    output: Literal["input", "declared"] = "declared"

    @property
    def module(self) -> str:
        return self.impl.split(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.impl.split(":", 1)[1]


_FILE_UPSERT = (
    "plain files have no MERGE; upsert needs a table format (Delta Lake or Iceberg) "
    "- use `append` or `overwrite`"
)

BUILTINS: tuple[PluginSpec, ...] = (
    PluginSpec("files", "extract", "etlc.connectors.files:FilesExtractor"),
    PluginSpec(
        "files",
        "load",
        "etlc.connectors.files:FilesLoader",
        write_modes=frozenset({"append", "overwrite"}),
        write_mode_notes={"upsert": _FILE_UPSERT},
    ),
    PluginSpec(
        "postgres",
        "extract",
        "etlc.connectors.postgres:PostgresExtractor",
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "postgres",
        "load",
        "etlc.connectors.postgres:PostgresLoader",
        write_modes=frozenset({"append", "overwrite", "upsert"}),
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "extract",
        "etlc.connectors.mysql:MySqlExtractor",
        artifacts=(MARIADB_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "load",
        "etlc.connectors.mysql:MySqlLoader",
        write_modes=frozenset({"append", "overwrite", "upsert"}),
        artifacts=(MARIADB_JDBC,),
    ),
    PluginSpec("filter", "transform", "etlc.transforms.filter:filter_rows", streaming=True),
    PluginSpec("select", "transform", "etlc.transforms.select:select_columns", streaming=True),
    PluginSpec("derive", "transform", "etlc.transforms.derive:derive_columns", streaming=True),
    PluginSpec("aggregate", "transform", "etlc.transforms.aggregate:aggregate", streaming=True),
    PluginSpec("join", "transform", "etlc.transforms.join:join", streaming=True),
    PluginSpec("window", "transform", "etlc.transforms.window:window", streaming=True),
)


class PluginTable:
    def __init__(self, specs: Iterable[PluginSpec]) -> None:
        self._specs: dict[tuple[Role, str], PluginSpec] = {}
        for spec in specs:
            self._specs[(spec.role, spec.type)] = spec

    def get(self, role: Role, type_: str) -> PluginSpec | None:
        return self._specs.get((role, type_))

    def types(self, role: Role) -> list[str]:
        return sorted(t for r, t in self._specs if r == role)

    def third_party(self) -> list[PluginSpec]:
        builtin = {(s.role, s.type) for s in BUILTINS}
        return [s for k, s in sorted(self._specs.items()) if k not in builtin]


@cache
def plugin_table() -> PluginTable:
    """Built-ins plus every installed ``etlc.plugins`` entry point (each a PluginSpec)."""
    specs: list[PluginSpec] = list(BUILTINS)
    for ep in entry_points(group="etlc.plugins"):
        loaded = ep.load()
        items = loaded if isinstance(loaded, list | tuple) else [loaded]
        specs.extend(s for s in items if isinstance(s, PluginSpec))
    return PluginTable(specs)
