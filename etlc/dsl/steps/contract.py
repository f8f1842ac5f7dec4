"""The contract between the checker and the step kinds.

The checker runs the passes every step shares (shape, graph, capabilities, variables and
connections); a step kind's check types one step of its kind and lowers it to the arguments
its runtime strategy takes. It sees the checker only through :class:`CheckContext`, and the
checker finds it only through its :class:`StepKind` row, so a kind is read and typed in one
place and no dispatch goes by method name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Span
from etlc.dsl.expressions import CheckedExpr, Context, Scope
from etlc.dsl.lineage import StepLineage
from etlc.dsl.plan import EnvConnection, EnvString
from etlc.dsl.types import DataType, RecordSchema
from etlc.plugins import PluginSpec, PluginTable
from etlc.profiles import Profile
from etlc.spark_targets import SparkTarget, spark_target


@dataclass(frozen=True)
class CheckOptions:
    schema_dirs: tuple[Path, ...] = ()  # where `.avsc` files are looked up, in order
    env_dir: Path | None = None  # pipelines/env: every file there must define each ${var}
    # Where `<class>.json`, the options schema of a JVM step class, is looked up, in order;
    # etlc's own classes' (schemas/jvm, shipped with etlc) are always looked up last.
    jvm_schema_dirs: tuple[Path, ...] = ()
    # Folders the ones above must really lie in (symlinks resolved) when they lie in them as
    # written: the project's folder and the working directory.
    project_roots: tuple[Path, ...] = ()
    # Where environment files belong, as a hint shows it (the folder may not exist yet).
    env_hint: str = "pipelines/env"
    # The Spark line the driver is compiled for: its jars, and what it cannot run.
    spark: SparkTarget = field(default_factory=spark_target)


@dataclass
class Lowered:
    """A checked step: the arguments its strategy is constructed with, its output schema,
    and what the driver does around it (write mode, validation rules, columns re-checked)."""

    args: dict[str, Any]
    schema: RecordSchema
    mode: str = ""
    rules: tuple[tuple[str, str], ...] = ()
    recheck: tuple[str, ...] | None = None  # see PlannedStep.recheck
    # Columns no two output rows share a value combination of (an aggregate's group_by), if
    # known: an upsert keyed on them needs no `sequence_by` (W202).
    unique_by: frozenset[str] | None = None
    # Which input columns each output column comes from (None: the checker decides: an
    # extract is where values start, a load copies its input, anything else is unknown).
    lineage: StepLineage | None = None


class CheckContext(Protocol):
    """What a step kind's check may ask of the checker: diagnostics, the shared checks of
    expressions, columns, schema files and references, and the pipeline's streaming state."""

    file: str
    streaming: bool
    options: CheckOptions
    plugins: PluginTable

    def error(self, code: str, message: str, span: Span, hint: str = "", **params: Any) -> None:
        """Report an error at ``span``."""

    def report(self, found: Iterable[Diagnostic]) -> None:
        """Report diagnostics a helper built (warnings included)."""

    def expr(
        self, expr: ast.Expr, scope: Scope, context: Context, group_keys: Iterable[str] = ()
    ) -> CheckedExpr | None:
        """The expression checked in ``scope`` (None after reporting why it is wrong)."""

    def columns_exist(self, names: Sequence[ast.Name], schema: RecordSchema, what: str) -> bool:
        """Whether every name is a column of ``schema``; E302 for each that is not."""

    def derived(self, step: ast.Step, columns: Mapping[str, DataType]) -> RecordSchema:
        """The record schema a step makes of ``columns`` (E208 for names equal but for case)."""

    def text(self, name: ast.Name) -> str | EnvString:
        """A text the driver resolves at run time when it holds ``${var}`` references."""

    def variable(self, name: str) -> None:
        """Note a ``${name}`` the environment files must define."""

    def connection(self, name: ast.Name, kind: type[Profile]) -> EnvConnection:
        """A connection profile of type ``kind`` every environment file must define."""

    def load_avro(self, ref: ast.Name) -> RecordSchema | None:
        """The Avro schema file ``ref`` names, found and parsed (None after an error)."""

    def validation_rules(self, schema: RecordSchema, ref: ast.Name) -> tuple[tuple[str, str], ...]:
        """The record checks an extract applies: nullability, enum symbols, declared rules."""

    def batch_ignores(self, step: ast.Step, option: str, value: ast.Scalar | None) -> None:
        """W203 for a streaming-only option set in a batch pipeline."""

    def stream_input(self, step: ast.Step) -> ast.Name | None:
        """The step's first input that is a stream, if any."""

    def is_stream(self, dataset: str) -> bool | None:
        """Whether ``dataset`` is unbounded; None when the step making it failed."""

    def unique_by(self, dataset: str) -> frozenset[str] | None:
        """Columns no two rows of ``dataset`` share a value combination of, if known."""

    def stream_aggregate(self, step: ast.Step, source: ast.Name) -> None:
        """Note an aggregate over a stream, checked against its loads once all are known."""


S = TypeVar("S", bound=ast.Step)
Check = Callable[[CheckContext, S, Sequence[RecordSchema]], Lowered | None]
StreamingRule = Callable[[CheckContext, S], None]


@dataclass(frozen=True)
class StepKind(Generic[S]):
    """One step kind, all the compiler knows of it: its AST node, its check (given the step
    and its inputs' schemas, in the order of ``step.inputs()``), the limits Structured
    Streaming puts on it beyond its rows' yes or no, if any, and its rows of the plugin table
    (one per definition ``type`` built as this node: its runtime strategy, capabilities,
    write modes and jars).

    A built-in kind declares one in its module of this package; a plugin registers one
    under the ``etlc.plugins`` entry point group. The checker treats both alike."""

    node: type[S]
    check: Check[S]
    streaming: StreamingRule[S] | None = None
    specs: tuple[PluginSpec, ...] = ()

    @property
    def types(self) -> tuple[str, ...]:
        """The definition's ``type`` values built as this node."""
        return tuple(spec.type for spec in self.specs)
