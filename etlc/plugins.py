"""The plugin table's parts: a step ``type``'s row (its runtime strategy and capabilities)
and the Maven artifacts rows name.

Each built-in step kind declares its rows in its own module (``etlc.dsl.steps.<kind>``);
installed plugins add theirs under the ``etlc.plugins`` entry-point group, and a plugin's
``options_schema`` (a JSON Schema object) is merged into the definition schema. The checker
reads the capabilities to reject impossible definitions, codegen the implementation path to
emit imports and the artifacts to emit ``--jars`` / ``--packages``. Nothing here imports the
compiler or pyspark, so a plugin package can declare its rows beside its strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal, Union

from etlc.spark_targets import MavenArtifact, NotOnTargetError, SparkTarget

__all__ = [
    "MavenArtifact",
    "NotOnTargetError",
    "PluginSpec",
    "PluginTable",
    "SparkTarget",
    "core_jars",
]

Role = Literal["extract", "transform", "load"]
# The jars a step needs: the same on every Spark line, or chosen per line (raising
# NotOnTargetError for a line that cannot run the step). Union, not `|`: evaluated at import, on
# the oldest Python the runtime supports.
Jars = Union[tuple[MavenArtifact, ...], Callable[[SparkTarget], tuple[MavenArtifact, ...]]]


def core_jars(target: SparkTarget) -> tuple[MavenArtifact, ...]:
    """What every driver needs: spark-avro, since data crosses each stage boundary as Avro."""
    return (target.spark_module("spark-avro"),)


def _jars_of(jars: Jars, target: SparkTarget) -> tuple[MavenArtifact, ...]:
    # A plugin written before the lines may give a list.
    return jars(target) if callable(jars) else tuple(jars)


@dataclass(frozen=True)
class PluginSpec:
    type: str
    role: Role
    impl: str  # "package.module:attribute", imported by generated drivers only
    batch: bool = True
    # Can run in a streaming pipeline. Kafka extracts are the stream; the other extracts are
    # read once, as the static side of a stream-static join. Loads write each micro-batch.
    streaming: bool = False
    # An extract whose dataset is unbounded in a streaming pipeline (the stream it reads).
    stream_source: bool = False
    write_modes: frozenset[str] = frozenset()
    write_mode_notes: Mapping[str, str] = field(default_factory=dict)
    artifacts: Jars = ()
    options_schema: Mapping[str, Any] | None = None
    # What a format of a files/s3 step adds: write modes, jars and session conf (Delta Lake).
    format_write_modes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    format_artifacts: Mapping[str, Jars] = field(default_factory=dict)
    # Session settings a format needs from the start (Delta's SQL extension and catalog).
    format_conf: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # A third-party transform's output: "input" keeps its input's schema (e.g. a dedupe),
    # "declared" takes the step's own `schema` (.avsc).
    output: Literal["input", "declared"] = "declared"
    # Why a step that cannot stream cannot, when there is more to say than that it cannot.
    streaming_note: str = ""
    # A transform that reads every record of its input, whatever the records hold (a filter,
    # an aggregate; not a join, which may skip a side found empty): a batch run whose every
    # transform does may validate its extracts in the pass that writes its load.
    reads_every_record: bool = False

    def jars(self, target: SparkTarget, fmt: str = "") -> tuple[MavenArtifact, ...]:
        """The jars this step needs on ``target`` (with format ``fmt``, for a files or S3
        step); NotOnTargetError when that line cannot run it."""
        own = _jars_of(self.artifacts, target)
        extra = self.format_artifacts.get(fmt)
        return own if extra is None else (*own, *_jars_of(extra, target))

    @property
    def module(self) -> str:
        return self.impl.split(":", 1)[0]

    @property
    def attribute(self) -> str:
        return self.impl.split(":", 1)[1]


class PluginTable:
    """The built-in kinds' rows (declared by each kind, on the compiler's side) and what the
    installed plugins add."""

    def __init__(
        self,
        builtins: Iterable[PluginSpec],
        installed: Iterable[PluginSpec] = (),
        kinds: Iterable[object] = (),
    ) -> None:
        self._specs: dict[tuple[Role, str], PluginSpec] = {}
        for spec in builtins:
            self._specs[(spec.role, spec.type)] = spec
        self._builtin = frozenset(self._specs)
        for spec in installed:
            self._specs[(spec.role, spec.type)] = spec
        # Third-party step kinds that check their own steps (etlc.dsl.steps.StepKind, each
        # with its `specs`); opaque here, where the compiler's types may not be imported.
        self.kinds: tuple[object, ...] = tuple(kinds)

    def get(self, role: Role, type_: str) -> PluginSpec | None:
        return self._specs.get((role, type_))

    def types(self, role: Role) -> list[str]:
        return sorted(t for r, t in self._specs if r == role)

    def stream_sources(self) -> frozenset[str]:
        """The extract types whose dataset is unbounded in a streaming pipeline."""
        return frozenset(
            t for (r, t), s in self._specs.items() if r == "extract" and s.stream_source
        )

    def third_party(self) -> list[PluginSpec]:
        return [s for k, s in sorted(self._specs.items()) if k not in self._builtin]


def installed() -> tuple[list[PluginSpec], list[object]]:
    """What every installed ``etlc.plugins`` entry point provides: a PluginSpec (a step
    checked by etlc's generic plugin step), or a step kind carrying its PluginSpecs as
    ``specs`` (a step with an AST node and check of its own), or a list of them."""
    specs: list[PluginSpec] = []
    kinds: list[object] = []
    for ep in entry_points(group="etlc.plugins"):
        loaded = ep.load()
        for item in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            declared = getattr(item, "specs", ())
            if isinstance(item, PluginSpec):
                specs.append(item)
            elif declared and all(isinstance(s, PluginSpec) for s in declared):
                specs.extend(declared)
                kinds.append(item)
    return specs, kinds
