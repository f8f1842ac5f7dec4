"""The typed plan: what the checker hands to codegen.

Every step is lowered to the implementation it binds (from the plugin table), keyword
arguments that are plain literals, and the Avro schema of the dataset it produces. Codegen
only lays these out; it makes no decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from etlc.dsl.diagnostics import Span
from etlc.dsl.lineage import StepLineage
from etlc.dsl.types import RecordSchema
from etlc.plugins import MavenArtifact
from etlc.profiles import Profile
from etlc.spark_targets import SparkTarget, spark_target


@dataclass(frozen=True)
class EnvString:
    """A string holding ``${var}`` references, resolved from the environment file at run time."""

    text: str


@dataclass(frozen=True)
class EnvConnection:
    """A connection profile from the environment file, looked up by name at run time as its
    system's type (:mod:`etlc.profiles`)."""

    name: str
    kind: type[Profile]


@dataclass(frozen=True)
class EnvVariables:
    """The environment file's variables, as text (a vault reference stays a reference): what a
    JVM step receives beside its own configuration."""


@dataclass(frozen=True)
class SchemaOf:
    """A dataset's schema, as the driver holds it once (``SCHEMAS[dataset]``): what a strategy
    that reads or writes the dataset is given, instead of a copy of it."""

    dataset: str


@dataclass(frozen=True)
class PlannedExpectation:
    """A rule of a step's ``expect`` block: its name, its predicate (true or null for a good
    record, checked SQL) and its policy (fail, warn or drop)."""

    name: str
    check: str
    policy: str
    columns: tuple[str, ...] = field(default=(), compare=False)  # of the output, read by check


@dataclass(frozen=True)
class PlannedStep:
    id: str
    role: str  # extract | transform | load
    type: str
    impl: str  # "module:attribute" from the plugin table
    args: tuple[tuple[str, Any], ...]
    inputs: tuple[str, ...]
    schema: RecordSchema
    span: Span
    mode: str = ""  # write mode of a load
    rules: tuple[tuple[str, str], ...] = ()  # extract validation: (rule name, SQL predicate)
    refresh: str | None = None  # a static side of a stream: re-read every interval
    # The columns whose values a transform makes, the only ones that cross the Avro boundary
    # again (None: all of them). The others hold input values of a type that admits them:
    # they crossed it upstream, and serializing them again could not reject anything.
    recheck: tuple[str, ...] | None = None
    # Which input columns each column comes from (None for an extract: values start there).
    lineage: StepLineage | None = None
    expectations: tuple[PlannedExpectation, ...] = ()  # in the order the definition gives them
    on_invalid: str = "fail"  # an extract's policy for records that break its schema
    quarantined: bool = False  # a load of the records its input's quarantine rules set aside
    # A load fed by an incremental extract: its write mode in a `--full-refresh` run.
    rebuild_mode: str = ""
    reads_every_record: bool = False  # a transform: its plugin's row says it reads them all


@dataclass(frozen=True)
class Plan:
    name: str
    mode: str
    source: str  # the definition file, as given to the compiler
    steps: tuple[PlannedStep, ...]  # topological order: extracts, transforms, loads
    max_retries: int
    delay_seconds: float
    artifacts: tuple[MavenArtifact, ...]
    variables: tuple[str, ...]  # environment variables the driver reads
    spark_conf: tuple[str, ...] = ()  # "key=value" a format needs at session start (Delta)
    spark: SparkTarget = field(default_factory=spark_target)  # the line it is compiled for
    # The document as written (JSON values), which the driver has etlc's Scala classes read;
    # None when a step is a plugin's kind, which those classes do not know.
    definition: Mapping[str, Any] | None = field(default_factory=dict)

    def step(self, step_id: str) -> PlannedStep:
        return next(s for s in self.steps if s.id == step_id)

    def by_role(self, role: str) -> tuple[PlannedStep, ...]:
        return tuple(s for s in self.steps if s.role == role)
