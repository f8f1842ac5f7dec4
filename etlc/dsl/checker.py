"""The checker: from a positioned tree to a typed plan, collecting every diagnostic.

It runs the passes every definition goes through, each in a module of its own and none
stopping the others: JSON-Schema shape (``schema_validation``), literal credentials
(``credentials``), AST building (``build``), the dataset graph (``graph``), then per-step
typing in run order: what the plugin table allows (``capabilities``) and the step kind's own
check, found in the table of ``etlc.dsl.steps`` by AST node class. A kind's check sees this
checker as a ``CheckContext``; it propagates an Avro schema through its dataset and lowers
the step to the arguments its runtime strategy takes. Last come a streaming pipeline's rules
(``streaming``) and the environment files' variables and connections (``references``). A
step whose input failed is skipped quietly, so one mistake yields one diagnostic, not a
cascade.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from etlc.dsl import ast, lineage
from etlc.dsl.avro_files import load_avro
from etlc.dsl.build import build_pipeline, step_path
from etlc.dsl.capabilities import capability_problems
from etlc.dsl.credentials import credential_problems
from etlc.dsl.diagnostics import Diagnostic, Severity, Span, diag, did_you_mean, masked
from etlc.dsl.expectations import (
    SetAside,
    expectations,
    on_invalid,
    quarantined_input,
    reserved_column,
    sets_aside,
)
from etlc.dsl.expressions import CheckedExpr, Context, Scope, check_expression
from etlc.dsl.graph import run_order
from etlc.dsl.incremental import incremental_problems, with_rebuild_modes
from etlc.dsl.lineage import StepLineage
from etlc.dsl.parse import parse_file
from etlc.dsl.plan import EnvConnection, EnvString, Plan, PlannedExpectation, PlannedStep
from etlc.dsl.references import reference_problems
from etlc.dsl.resources import schema_path
from etlc.dsl.schema_validation import validate
from etlc.dsl.steps import plugin_table, step_kinds
from etlc.dsl.steps.contract import CheckOptions, Lowered
from etlc.dsl.streaming import aggregate_problems, quarantine_problems, source_problems
from etlc.dsl.tree import JObject, JScalar, JValue, to_python
from etlc.dsl.types import (
    DataType,
    RecordSchema,
    derived_record,
)
from etlc.dsl.validation_rules import validation_rules
from etlc.dsl.variables import ENV_VAR, VAR_NAME
from etlc.plugins import NotOnTargetError, PluginTable, core_jars
from etlc.profiles import Profile
from etlc.project import Project, find_project
from etlc.quarantine_columns import ADDED, RAW_TEXT
from etlc.spark_targets import spark_target

__all__ = [
    "CheckOptions",
    "CheckResult",
    "check_file",
    "default_options",
    "definition_ast",
    "definition_schema",
]


@dataclass
class CheckResult:
    file: str
    source: str | None
    diagnostics: list[Diagnostic]
    plan: Plan | None

    @property
    def ok(self) -> bool:
        return self.plan is not None and not any(d.is_error for d in self.diagnostics)


@cache
def definition_schema() -> dict[str, Any]:
    """The JSON Schema of definitions, with third-party plugins' step types merged in."""
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    for spec in plugin_table().third_party():
        if spec.options_schema is None:
            continue
        ref = f"{spec.role}_{spec.type}"
        schema["$defs"][ref] = dict(spec.options_schema)
        step = schema["$defs"][f"{spec.role}_step"]
        step["properties"]["type"]["enum"].append(spec.type)
        step["allOf"].append(
            {
                "if": {"required": ["type"], "properties": {"type": {"const": spec.type}}},
                "then": {"$ref": f"#/$defs/{ref}"},
            }
        )
    return schema


def check_file(path: str | Path, options: CheckOptions | None = None) -> CheckResult:
    path = Path(path)
    tree, source, diagnostics = parse_file(path)
    if tree is None:
        return CheckResult(str(path), source, diagnostics, None)
    opts = options or default_options(path)
    checker = _Checker(str(path), tree, opts, plugin_table())
    try:
        plan = checker.run()
    except Exception as exc:  # a checker bug must still name the file, never dump a traceback
        plan = None
        checker.diagnostics.append(
            diag(
                "E000",
                f"internal error while checking this file ({type(exc).__name__}: {exc})",
                Span.point(str(path)),
                "this is a bug in etlc; please report it with the definition",
            )
        )
    diagnostics.extend(checker.diagnostics)
    diagnostics.sort(key=lambda d: (d.span.line, d.span.col, d.code))
    has_error = any(d.is_error for d in diagnostics)
    shown = masked(source, diagnostics)
    return CheckResult(str(path), shown, diagnostics, None if has_error else plan)


def definition_ast(path: str | Path) -> ast.Pipeline | None:
    """The AST of a definition that parses and has the schema's shape, before any semantic
    check (None otherwise): the values the JVM side's configuration classes must read alike."""
    path = Path(path)
    tree, _, diagnostics = parse_file(path)
    if not isinstance(tree, JObject) or any(d.is_error for d in diagnostics):
        return None
    if any(d.is_error for d in validate(tree, definition_schema(), str(path))):
        return None
    return build_pipeline(str(path), tree, set())[0]


def default_options(definition: Path, project: Project | None = None) -> CheckOptions:
    """Where the files a definition names are looked up: its project's folders, or, for a
    definition outside the project's definitions folder, ``schemas/avro`` and ``env/`` next
    to the definition's config module.

    ``project`` defaults to the one holding the working directory (``find_project``, which
    raises ``ProjectError`` for a project file it cannot use). These folders are the only
    places a definition's file references resolve in: ``project_files`` keeps every file read
    inside the folder it was found in."""
    if project is None:
        project = find_project()
    # As written, not resolved: a folder that is a symlink out of the project must show as
    # one (project_files refuses it), not be taken for the place it points to.
    here = Path(os.path.abspath(definition)).parent
    if project.holds(project.definitions, definition):
        # pipelines/sales/x.json shares the project's environments and schemas.
        return CheckOptions(
            schema_dirs=tuple(dict.fromkeys((here, project.avro_schemas))),
            env_dir=project.environments if project.environments.is_dir() else None,
            jvm_schema_dirs=(project.jvm_schemas,),
            project_roots=(project.root,),
            env_hint=project.relative(project.environments),
            spark=spark_target(project.spark_version),
        )
    cwd = Path.cwd()
    dirs = [here, here.parent / "schemas" / "avro", cwd / "schemas" / "avro"]
    env_dir = here / "env"
    jvm_dirs = [here.parent / "schemas" / "jvm", cwd / "schemas" / "jvm"]
    return CheckOptions(
        schema_dirs=tuple(dict.fromkeys(dirs)),
        env_dir=env_dir if env_dir.is_dir() else None,
        jvm_schema_dirs=tuple(dict.fromkeys(jvm_dirs)),
        project_roots=tuple(dict.fromkeys((here.parent, cwd))),
        spark=spark_target(project.spark_version),
    )


@dataclass
class _Dataset:
    schema: RecordSchema | None  # None: the producing step failed; skip dependants quietly
    # Columns no two rows share a value combination of (an aggregate's group_by), if known.
    unique_by: frozenset[str] | None = None
    # Unbounded: a Kafka extract of a streaming pipeline or derived from one. Kept even when
    # the producing step failed, so the streaming rules downstream still apply.
    stream: bool = False


@dataclass
class _Checker:
    file: str
    tree: JValue
    options: CheckOptions
    plugins: PluginTable
    diagnostics: list[Diagnostic] = field(default_factory=list)
    datasets: dict[str, _Dataset] = field(default_factory=dict)
    variables: set[str] = field(default_factory=set)
    connections: dict[str, tuple[str, Span]] = field(default_factory=dict)  # name -> system
    streaming: bool = False
    stream_aggregates: list[tuple[ast.Step, ast.Name]] = field(default_factory=list)
    # Each step whose quarantine rules set records aside: what a quarantined load reads.
    held: dict[str, SetAside] = field(default_factory=dict)
    expressions_checked: int = 0  # bounded by MAX_EXPRESSIONS

    def error(self, code: str, message: str, span: Span, hint: str = "", **params: Any) -> None:
        self.diagnostics.append(diag(code, message, span, hint, **params))

    def report(self, found: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(found)

    def variable(self, name: str) -> None:
        self.variables.add(name)

    def unique_by(self, dataset: str) -> frozenset[str] | None:
        return self.datasets.get(dataset, _Dataset(None)).unique_by

    def stream_aggregate(self, step: ast.Step, source: ast.Name) -> None:
        self.stream_aggregates.append((step, source))

    def is_stream(self, dataset: str) -> bool | None:
        ds = self.datasets.get(dataset)
        return None if ds is None or ds.schema is None else ds.stream

    # --- driver -------------------------------------------------------------------------

    def run(self) -> Plan | None:
        shape = validate(self.tree, definition_schema(), self.file)
        found, credential_spans = credential_problems(self.tree)
        self.report(found)
        self.diagnostics.extend(
            d for d in shape if not (d.code == "E101" and d.span in credential_spans)
        )
        if not isinstance(self.tree, JObject) or any(d.param("incomplete") for d in shape):
            return None  # parts of the tree were not validated: nothing may be built from them
        # An unknown key leaves the step buildable (the key is ignored), so checking goes on
        # into its expressions; any other shape error makes the step unusable.
        broken = {step_path(self.tree, d.span) for d in shape if d.code != "E101"}
        pipeline, reserved = build_pipeline(self.file, self.tree, broken)
        self.datasets.update((sid, _Dataset(None)) for sid in reserved)
        self.streaming = pipeline.mode == "streaming"
        order, found = run_order(pipeline, reserved)
        self.report(found)
        steps = self._check_steps(order, pipeline)
        if steps is None:
            return None
        self.report(incremental_problems(pipeline, steps))
        steps = with_rebuild_modes(pipeline, steps, self.plugins)
        if self.streaming:
            self.report(source_problems(self.tree, self.plugins.stream_sources()))
            self.report(aggregate_problems(pipeline, self.stream_aggregates))
            windows = [t for t in pipeline.transforms if t.type.value == "window"]
            streamed = [w for w in windows if self.is_stream(w.id.value)]
            self.report(quarantine_problems(pipeline, self.stream_aggregates, streamed))
        self.report(
            reference_problems(self.file, self.tree, self.options, self.variables, self.connections)
        )
        if not self._driver_name(pipeline.name) or len(steps) != len(order):
            return None
        target = self.options.spark
        artifacts = set(core_jars(target))
        conf: list[str] = list(target.conf)
        for s in steps:
            spec = self.plugins.get(s.role, s.type)  # type: ignore[arg-type]
            fmt = dict(s.args).get("format")
            if spec:
                try:
                    artifacts.update(spec.jars(target, str(fmt) if fmt is not None else ""))
                except NotOnTargetError:  # reported with the step's capabilities (E412)
                    return None
                conf += [c for c in spec.format_conf.get(str(fmt), ()) if c not in conf]
        return Plan(
            name=pipeline.name.value,
            mode=pipeline.mode,
            source=self.file,
            steps=tuple(steps),
            max_retries=pipeline.retry.max_retries,
            delay_seconds=pipeline.retry.delay_seconds,
            artifacts=tuple(sorted(artifacts)),
            variables=tuple(sorted(self.variables)),
            spark_conf=tuple(conf),
            spark=target,
            definition=None if self._uses_plugins(steps) else to_python(self.tree),
        )

    def _uses_plugins(self, steps: Sequence[PlannedStep]) -> bool:
        third_party = {(spec.role, spec.type) for spec in self.plugins.third_party()}
        return any((step.role, step.type) in third_party for step in steps)

    def _driver_name(self, name: ast.Name) -> bool:
        """The name is the driver's file name, ``<name>.py``, which spark-submit runs with its
        folder first on ``sys.path``: a driver named ``json`` would be imported in place of the
        module of that name by the runtime it imports, and never start."""
        if name.value == "":
            return False
        if name.value.split(".")[0] in _SHADOWED_MODULES:
            self.error(
                "E216",
                f"pipeline name `{name.value}` is the name of a Python module the driver "
                "imports; its driver file would take that module's place",
                name.span,
                f'pick another name, e.g. "{name.value}_pipeline"',
            )
            return False
        return True

    def _check_steps(
        self, order: Sequence[ast.Step], pipeline: ast.Pipeline
    ) -> list[PlannedStep] | None:
        """Each step in run order; None once the datasets outgrow MAX_PLAN_COLUMNS."""
        steps: list[PlannedStep] = []
        columns = 0
        for step in order:
            planned = self._check_step(step, pipeline)
            if planned is None:
                continue
            steps.append(planned)
            # Every dataset's schema is embedded in the driver: a few wide schemas read by
            # thousands of steps would make a driver of gigabytes from a 1 MiB definition.
            columns += len(planned.schema.fields)
            if columns > MAX_PLAN_COLUMNS:
                self.error(
                    "E008",
                    f"the pipeline's datasets hold more than {MAX_PLAN_COLUMNS:,} columns in all",
                    planned.span,
                    "split the pipeline into smaller ones, or select the columns you need early",
                )
                return None
        return steps

    # --- stage: per-step typing ------------------------------------------------------------

    def _check_step(self, step: ast.Step, pipeline: ast.Pipeline) -> PlannedStep | None:
        spec = self.plugins.get(step.role, step.type.value)  # type: ignore[arg-type]
        if spec is None:  # shape validation already reported it
            return None
        self.report(
            capability_problems(step, spec, pipeline.mode == "streaming", self.options.spark)
        )
        stream = self.streaming and (
            (step.role == "extract" and spec.stream_source) or self.stream_input(step) is not None
        )
        kind = step_kinds()[type(step)]
        if self.streaming and kind.streaming is not None:
            # Structured Streaming's limits beyond the plugin table's yes or no.
            kind.streaming(self, step)
        before = len(self.diagnostics)
        inputs = self._inputs(step, stream)
        if inputs is None:
            return None
        lowered = kind.check(self, step, inputs)
        failed = lowered is None or any(d.is_error for d in self.diagnostics[before:])
        if step.role != "load":
            self.datasets[step.id.value] = _Dataset(
                None if failed or lowered is None else lowered.schema,
                None if lowered is None else lowered.unique_by,
                stream,
            )
        if failed or lowered is None:
            return None
        expected = expectations(self, step, lowered.schema)
        if any(d.is_error for d in self.diagnostics[before:]):
            return None
        policy = on_invalid(step)
        if not self._held(step, lowered.schema, expected, policy):
            return None
        return PlannedStep(
            id=step.id.value,
            role=step.role,
            type=step.type.value,
            impl=spec.impl,
            args=tuple(lowered.args.items()),
            inputs=tuple(r.value for r in step.inputs()),
            schema=lowered.schema,
            span=step.span,
            mode=lowered.mode,
            rules=lowered.rules,
            refresh=self._refresh(step),
            recheck=lowered.recheck,
            lineage=_lineage(step, lowered, expected, policy),
            expectations=expected,
            on_invalid=policy,
            quarantined=_quarantined(step),
            reads_every_record=spec.reads_every_record,
        )

    def _inputs(self, step: ast.Step, stream: bool) -> list[RecordSchema] | None:
        """The schemas ``step`` reads (a quarantined load: its input's records set aside);
        None when one is not known (its step failed) or cannot be read."""
        inputs: list[RecordSchema] = []
        for ref in step.inputs():
            ds = self.datasets.get(ref.value)
            if ds is None or ds.schema is None:
                self.datasets.setdefault(step.id.value, _Dataset(None, stream=stream))
                return None
            inputs.append(ds.schema)
        if not _quarantined(step):
            return inputs
        aside = quarantined_input(self, step, self.held, self._namespace())
        return None if aside is None else [aside]

    def _held(
        self,
        step: ast.Step,
        schema: RecordSchema,
        expected: Sequence[PlannedExpectation],
        policy: str,
    ) -> bool:
        """Note a step whose rules set records aside, for a quarantined load of it; False
        when it has a column named as quarantine's own (E218)."""
        if step.role == "load" or not sets_aside(tuple(expected), policy):
            return True
        # Noted even so: a quarantined load of it has nothing more to be told.
        self.held[step.id.value] = SetAside(schema, policy == "quarantine")
        return not reserved_column(self, step, schema)

    def stream_input(self, step: ast.Step) -> ast.Name | None:
        return next(
            (r for r in step.inputs() if self.datasets.get(r.value, _Dataset(None)).stream), None
        )

    def _refresh(self, step: ast.Step) -> str | None:
        refresh = getattr(step, "refresh", None)
        if not isinstance(refresh, ast.Name):
            return None
        if not self.streaming:
            self.batch_ignores(step, "refresh", refresh)
            return None
        return refresh.value

    def batch_ignores(self, step: ast.Step, option: str, value: ast.Scalar | None) -> None:
        """A streaming-only option in a batch pipeline: harmless, so a warning, not lowered."""
        if value is None:
            return
        self.diagnostics.append(
            diag(
                "W203",
                f"`{option}` of {step.type.value} `{step.id.value}` only applies to streaming; "
                "a batch pipeline ignores it",
                value.span,
                'remove it, or set "mode": "streaming"',
                Severity.WARNING,
                option=option,
            )
        )

    def _namespace(self) -> str:
        assert isinstance(self.tree, JObject)
        name = self.tree.get("name")
        return f"etlc.{name.value}" if isinstance(name, JScalar) else "etlc"

    def derived(self, step: ast.Step, columns: Mapping[str, DataType]) -> RecordSchema:
        # Spark resolves column names without regard to case (spark.sql.caseSensitive is
        # off): `Amount` beside `amount` is one column to it, so a write would fail or a
        # derive would silently replace the other.
        first: dict[str, str] = {}
        for name in columns:
            other = first.setdefault(name.lower(), name)
            if other != name:
                self.error(
                    "E208",
                    f"output columns `{other}` and `{name}` differ only in case, and Spark "
                    "takes them for one column",
                    step.span,
                    f"rename `{name}`",
                    column=name,
                )
        return derived_record(step.id.value, columns, self._namespace())

    def expr(
        self,
        expr: ast.Expr,
        scope: Scope,
        context: Context,
        group_keys: Iterable[str] = (),
    ) -> CheckedExpr | None:
        self.expressions_checked += 1
        if self.expressions_checked > MAX_EXPRESSIONS:
            if self.expressions_checked == MAX_EXPRESSIONS + 1:
                self.error(
                    "E308",
                    f"the definition holds more than {MAX_EXPRESSIONS} expressions",
                    expr.span,
                    "split the pipeline into smaller definitions",
                )
            return None
        checked, found = check_expression(
            expr.text, scope, expr.span, context, frozenset(group_keys)
        )
        self.diagnostics.extend(found)
        return checked

    def columns_exist(self, names: Sequence[ast.Name], schema: RecordSchema, what: str) -> bool:
        ok = True
        for n in names:
            if schema.field(n.value) is None:
                ok = False
                self.error(
                    "E302",
                    f"unknown column `{n.value}` in {what}",
                    n.span,
                    did_you_mean(n.value, schema.names()),
                    column=n.value,
                )
        return ok

    def text(self, name: ast.Name) -> str | EnvString:
        refs = ENV_VAR.findall(name.value)
        if not refs:
            return name.value
        for ref in refs:
            if not VAR_NAME.match(ref):
                self.error(
                    "E207",
                    f"`${{{ref}}}` is not a valid variable reference",
                    name.span,
                    "variable names are letters, digits and `_`",
                    variable=ref,
                )
            else:
                self.variables.add(ref)
        return EnvString(name.value)

    def connection(self, name: ast.Name, kind: type[Profile]) -> EnvConnection:
        self.connections.setdefault(name.value, (kind.system, name.span))
        return EnvConnection(name.value, kind)

    def load_avro(self, ref: ast.Name) -> RecordSchema | None:
        loaded = load_avro(ref, self.options)
        if isinstance(loaded, Diagnostic):
            self.report([loaded])
            return None
        return loaded

    def validation_rules(self, schema: RecordSchema, ref: ast.Name) -> tuple[tuple[str, str], ...]:
        rules, problems = validation_rules(schema, ref)
        self.report(problems)
        return rules


# --- bounds ------------------------------------------------------------------------------

# Expressions one definition may hold: a step with one costs about 1 ms from parse to plan, so
# a definition at this bound stays well inside lint's time bound. No real pipeline comes near.
MAX_EXPRESSIONS = 2_000
# Modules a driver may import: the standard library, etlc's runtime and what it imports, and
# what pyspark imports when it is installed (numpy, pandas, pyarrow).
_SHADOWED_MODULES = frozenset(
    {*sys.stdlib_module_names, "etlc", "pyspark", "py4j", "cryptography"}
    | {"numpy", "pandas", "pyarrow"}
)
# Columns of all datasets together (each one's schema is embedded in the driver). Fifty steps
# over 1,000-column tables is 50,000; beyond this a definition only makes compile slow and
# the driver huge.
MAX_PLAN_COLUMNS = 200_000
# The schema's rules about one column, named `<kind>:<column>` (etlc.rules read any columns).
_COLUMN_RULES = ("not_null:", "enum:")


def _lineage(
    step: ast.Step,
    lowered: Lowered,
    expected: Sequence[PlannedExpectation] = (),
    invalid: str = "fail",
) -> StepLineage | None:
    """A step's lineage as its kind gave it (with the columns its drop and quarantine rules
    read among those deciding its rows); else what its role says."""
    held = [c for e in expected if e.policy in ("drop", "quarantine") for c in e.columns]
    if step.role == "extract":
        if invalid != "fail":  # the schema's rules leave records out too: those of a column
            held += [r.split(":", 1)[1] for r, _ in lowered.rules if r.startswith(_COLUMN_RULES)]
        if not held:
            return lowered.lineage
        # An extract's own columns decide which of its records go on, as a filter's would.
        return StepLineage.of({}, lineage.used(step.id.value, held, lineage.FILTER))
    if lowered.lineage is not None:
        return lineage.filtered(lowered.lineage, held)
    names = [f.name for f in lowered.schema.fields]
    if step.role == "load" and len(step.inputs()) == 1:  # a plugin's load may read several
        copied = lineage.identity(step.inputs()[0].value, names)
        if _quarantined(step):  # what quarantine adds comes from no column
            copied.update((c, []) for c in (RAW_TEXT, *ADDED) if c in copied)
        return StepLineage.of(copied)
    return lineage.unknown(names)


def _quarantined(step: ast.Step) -> bool:
    """Whether ``step`` is a load of the records its input sets aside in quarantine."""
    return step.role == "load" and step.quarantined is not None and step.quarantined.value
