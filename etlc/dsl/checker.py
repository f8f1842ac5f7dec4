"""The checker: from a positioned tree to a typed plan, collecting every diagnostic.

Stages, each adding diagnostics and never stopping the others: JSON-Schema shape, literal
credentials, AST building, the dataset graph (ids, references, cycles), then per-step typing in
topological order, which propagates an Avro schema through every dataset and lowers each step
to the arguments its runtime implementation takes. A step whose input failed is skipped
quietly, so one mistake yields one diagnostic, not a cascade.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from etlc.dsl import ast
from etlc.dsl.avro_files import load_avro
from etlc.dsl.build import build_pipeline, step_path
from etlc.dsl.capabilities import capability_problems
from etlc.dsl.credentials import credential_problems
from etlc.dsl.diagnostics import Diagnostic, Severity, Span, diag, did_you_mean, masked
from etlc.dsl.durations import duration_problems
from etlc.dsl.expressions import CheckedExpr, Context, Scope, check_expression, valid_temporal
from etlc.dsl.graph import run_order
from etlc.dsl.java_regex import HINT as JAVA_REGEX_HINT
from etlc.dsl.java_regex import java_regex
from etlc.dsl.jvm_steps import (
    ETLC_PACKAGE,
    OptionsSchema,
    OptionsSchemaError,
    load_options_schema,
    schema_file,
    shipped_classes,
)
from etlc.dsl.parse import parse_file
from etlc.dsl.plan import EnvConnection, EnvString, Plan, PlannedStep, SchemaOf
from etlc.dsl.references import reference_problems
from etlc.dsl.resources import schema_path
from etlc.dsl.schema_validation import validate
from etlc.dsl.sql_query import check_query
from etlc.dsl.steps import step_kinds
from etlc.dsl.steps.contract import CheckOptions, Lowered
from etlc.dsl.streaming import STREAM_SOURCES, aggregate_problems, source_problems
from etlc.dsl.tree import JArray, JMember, JObject, JScalar, JValue, locate
from etlc.dsl.types import (
    DataType,
    RecordSchema,
    derived_record,
)
from etlc.dsl.validation_rules import validation_rules
from etlc.dsl.variables import ENV_VAR, VAR_NAME
from etlc.plugins import CORE_ARTIFACTS, FORMAT_CONF, PluginTable, plugin_table
from etlc.project import Project, find_project

__all__ = [
    "CheckOptions",
    "CheckResult",
    "check_file",
    "default_options",
    "definition_ast",
    "definition_schema",
]

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
    stream_aggregates: list[tuple[ast.Aggregate, ast.Name]] = field(default_factory=list)
    expressions_checked: int = 0  # bounded by MAX_EXPRESSIONS

    def error(self, code: str, message: str, span: Span, hint: str = "", **params: Any) -> None:
        self.diagnostics.append(diag(code, message, span, hint, **params))

    def report(self, found: Iterable[Diagnostic]) -> None:
        self.diagnostics.extend(found)

    def variable(self, name: str) -> None:
        self.variables.add(name)

    def unique_by(self, dataset: str) -> frozenset[str] | None:
        return self.datasets.get(dataset, _Dataset(None)).unique_by

    def stream_aggregate(self, step: ast.Aggregate, source: ast.Name) -> None:
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
        if self.streaming:
            self.report(source_problems(self.tree))
            self.report(aggregate_problems(pipeline, self.stream_aggregates))
        self.report(
            reference_problems(self.file, self.tree, self.options, self.variables, self.connections)
        )
        if not self._driver_name(pipeline.name) or len(steps) != len(order):
            return None
        artifacts = set(CORE_ARTIFACTS)
        conf: list[str] = []
        for s in steps:
            spec = self.plugins.get(s.role, s.type)  # type: ignore[arg-type]
            fmt = dict(s.args).get("format")
            if spec:
                artifacts.update(spec.artifacts)
                artifacts.update(spec.format_artifacts.get(str(fmt), ()))
            conf += [c for c in FORMAT_CONF.get(str(fmt), ()) if c not in conf]
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
        )

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
        self.report(capability_problems(step, spec, pipeline.mode == "streaming"))
        stream = self.streaming and (
            (step.role == "extract" and step.type.value in STREAM_SOURCES)
            or any(self.datasets.get(r.value, _Dataset(None)).stream for r in step.inputs())
        )
        if self.streaming:
            self._check_streaming(step)
        inputs: list[RecordSchema] = []
        for ref in step.inputs():
            ds = self.datasets.get(ref.value)
            if ds is None or ds.schema is None:
                self.datasets.setdefault(step.id.value, _Dataset(None, stream=stream))
                return None
            inputs.append(ds.schema)
        before = len(self.diagnostics)
        kind = step_kinds().get(type(step))
        if kind is not None:
            lowered = kind.check(self, step, inputs)
        else:  # not moved to its module yet
            handler: Callable[..., Lowered | None] = getattr(
                self, f"_check_{type(step).__name__.lower()}"
            )
            lowered = handler(step, *inputs)
        failed = lowered is None or any(d.is_error for d in self.diagnostics[before:])
        if step.role != "load":
            self.datasets[step.id.value] = _Dataset(
                None if failed or lowered is None else lowered.schema,
                frozenset(g.value for g in step.group_by)
                if isinstance(step, ast.Aggregate)
                else None,
                stream,
            )
        if failed or lowered is None:
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
        )

    # --- stage: streaming rules -------------------------------------------------------------

    def _check_streaming(self, step: ast.Step) -> None:
        """Structured Streaming's limits beyond the plugin table's yes/no, per step kind."""
        kind = step_kinds().get(type(step))
        if kind is not None:
            if kind.streaming is not None:
                kind.streaming(self, step)
            return
        rule: Callable[[Any], None] | None = getattr(
            self, f"_streaming_{type(step).__name__.lower()}", None
        )
        if rule is not None:
            rule(step)

    def stream_input(self, step: ast.Step) -> ast.Name | None:
        return next(
            (r for r in step.inputs() if self.datasets.get(r.value, _Dataset(None)).stream), None
        )

    def _streaming_jdbcextract(self, step: ast.JdbcExtract | ast.FilesExtract) -> None:
        # Only a stream uses `refresh` (a batch ignores it with W203), so only a stream bounds it.
        if step.refresh is not None:
            self.diagnostics.extend(duration_problems((step.refresh,)))

    _streaming_filesextract = _streaming_jdbcextract
    _streaming_s3extract = _streaming_jdbcextract

    def _streaming_kafkaextract(self, step: ast.KafkaExtract) -> None:
        if step.ending_offsets is not None:
            self.error(
                "E408",
                f"kafka extract `{step.id.value}` sets `ending_offsets`, but a stream has no end",
                step.ending_offsets.span,
                'remove `ending_offsets`, or set "mode": "batch" to read a fixed range',
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

    def connection(self, name: ast.Name, system: str) -> EnvConnection:
        self.connections.setdefault(name.value, (system, name.span))
        return EnvConnection(name.value)

    # --- step kinds (dispatched by node class name) ----------------------------------------

    def _check_filesextract(self, step: ast.FilesExtract) -> Lowered | None:
        schema = self.load_avro(step.schema)
        if schema is None:
            return None
        rules = self.validation_rules(schema, step.schema)
        options = _spark_options(step.options)
        return Lowered(
            {
                "path": self.text(step.path),
                "format": step.format.value,
                "schema": SchemaOf(step.id.value),
                "options": options,
            },
            schema,
            rules=rules,
        )

    def _check_filesload(self, step: ast.FilesLoad, schema: RecordSchema) -> Lowered | None:
        mode = step.mode.value
        self.columns_exist(step.partition_by, schema, "partition_by")
        self.columns_exist(step.keys, schema, "keys")
        options = _spark_options(step.options)
        single = options.pop("single_file", None)
        args: dict[str, Any] = {
            "path": self.text(step.path),
            "format": step.format.value,
            "options": options,
        }
        if step.partition_by:
            args["partition_by"] = tuple(n.value for n in step.partition_by)
        if single == "true":
            args["single_file"] = True
        if mode == "upsert" and step.keys:
            args["keys"] = tuple(k.value for k in step.keys)
        if not self._sequence(step, schema, args):
            return None
        return Lowered(args, schema, mode=mode)

    # --- S3 and Kafka -------------------------------------------------------------------------

    def _check_s3extract(self, step: ast.S3Extract) -> Lowered | None:
        lowered = self._check_filesextract(step)
        if lowered is not None:
            lowered.args = {"connection": self.connection(step.connection, "s3"), **lowered.args}
        return lowered

    def _check_s3load(self, step: ast.S3Load, schema: RecordSchema) -> Lowered | None:
        lowered = self._check_filesload(step, schema)
        if lowered is not None:
            lowered.args = {"connection": self.connection(step.connection, "s3"), **lowered.args}
        return lowered

    def _check_kafkaextract(self, step: ast.KafkaExtract) -> Lowered | None:
        if not self.streaming:
            self.batch_ignores(step, "max_offsets_per_trigger", step.max_offsets_per_trigger)
            self.batch_ignores(step, "fail_on_data_loss", step.fail_on_data_loss)
        if (step.topic is None) == (step.topic_pattern is None):
            self.error(
                "E210",
                "a kafka extract needs exactly one of `topic` or `topic_pattern`",
                step.span,
                'name the topic ("topic": "orders") or a pattern ("topic_pattern": "orders\\..*")',
            )
            return None
        if step.topic_pattern is not None:
            # Kafka's consumer compiles it with java.util.regex, not Python's re.
            found = java_regex(step.topic_pattern.value)
            if isinstance(found, str):
                self.error(
                    "E216",
                    f"`topic_pattern` is not a regular expression Java compiles: {found}",
                    step.topic_pattern.span,
                    JAVA_REGEX_HINT + "; escape the dots of topic names: `orders\\..*`",
                )
                return None
        offsets = [
            _kafka_offsets_problem(node, ending, step.topic)
            for node, ending in ((step.starting_offsets, False), (step.ending_offsets, True))
            if node is not None
        ]
        if any(offsets):
            self.diagnostics.extend(d for d in offsets if d is not None)
            return None
        connection = self.connection(step.connection, "kafka")
        schema = self.load_avro(step.schema)
        if schema is None:
            return None
        args: dict[str, Any] = {"connection": connection}
        if step.topic is not None:
            args["topic"] = step.topic.value
        else:
            assert step.topic_pattern is not None
            args["topic_pattern"] = step.topic_pattern.value
        args |= {
            "schema": SchemaOf(step.id.value),
        }
        if step.starting_offsets is not None:
            args["starting_offsets"] = step.starting_offsets.value
        if step.ending_offsets is not None:
            args["ending_offsets"] = step.ending_offsets.value
        if step.confluent_framing is not None and step.confluent_framing.value:
            args["confluent_framing"] = True
        if self.streaming:
            if step.max_offsets_per_trigger is not None:
                args["max_offsets_per_trigger"] = int(step.max_offsets_per_trigger.value)
            # Only the departure from the default (Spark's too), as for confluent_framing.
            if step.fail_on_data_loss is not None and not step.fail_on_data_loss.value:
                args["fail_on_data_loss"] = False
        return Lowered(args, schema, rules=self.validation_rules(schema, step.schema))

    def _check_kafkaload(self, step: ast.KafkaLoad, schema: RecordSchema) -> Lowered | None:
        connection = self.connection(step.connection, "kafka")
        if not self.columns_exist(step.keys, schema, "keys"):
            return None
        args: dict[str, Any] = {
            "connection": connection,
            "topic": step.topic.value,
            "schema": SchemaOf(step.input.value),
        }
        if step.keys:
            args["keys"] = tuple(k.value for k in step.keys)
        if not self._sequence(step, schema, args):
            return None
        return Lowered(args, schema, mode=step.mode.value)

    def _sequence(
        self,
        step: ast.KafkaLoad | ast.JdbcLoad | ast.FilesLoad,
        schema: RecordSchema,
        args: dict[str, Any],
    ) -> bool:
        """Which row an upsert keeps when its input repeats a key; False if that is wrong."""
        seq = step.sequence_by
        if seq is None:
            unique = self.datasets.get(step.input.value, _Dataset(None)).unique_by
            keys = {k.value for k in step.keys}
            if step.mode.value == "upsert" and not (unique is not None and unique <= keys):
                self.diagnostics.append(
                    diag(
                        "W202",
                        "upsert without `sequence_by`: if the input repeats a key, which of "
                        "its rows is written is not defined (joins and shuffles reorder rows)",
                        step.mode.span,
                        'add "sequence_by": "<column>" (e.g. an update timestamp); the row '
                        "with the greatest value wins",
                        Severity.WARNING,
                    )
                )
            return True
        if step.mode.value != "upsert":
            self.error(
                "E404",
                "`sequence_by` only applies to upsert",
                seq.span,
                'remove it, or use "mode": "upsert"',
            )
            return False
        if not self.columns_exist([seq], schema, "sequence_by"):
            return False
        ctype = schema.columns()[seq.value]
        if not (ctype.is_numeric or ctype.is_temporal or ctype.kind == "string"):
            self.error(
                "E404",
                f"`sequence_by` column `{seq.value}` is {ctype.describe()}; "
                "it must be a number, date, timestamp or string",
                seq.span,
                "order updates by a version number or an update timestamp",
            )
            return False
        args["sequence_by"] = seq.value
        return True

    # --- databases ----------------------------------------------------------------------------

    def _check_jdbcextract(self, step: ast.JdbcExtract) -> Lowered | None:
        if (step.table is None) == (step.query is None):
            self.error(
                "E210",
                "a database extract needs exactly one of `table` or `query`",
                step.span,
                'name a table ("table": "schema.table") or give a SELECT ("query")',
            )
            return None
        connection = self.connection(step.connection, step.type.value)
        schema = self.load_avro(step.schema)
        if schema is None:
            return None
        args: dict[str, Any] = {"connection": connection}
        if step.table is not None:
            args["table"] = step.table.value
        else:
            assert step.query is not None
            checked, found = check_query(step.query.value, step.type.value, step.query.span)
            self.diagnostics.extend(found)
            if checked is None:
                return None
            args["query"] = checked.sql
        args["schema"] = SchemaOf(step.id.value)
        if step.partition is not None:
            p = step.partition
            if not self.columns_exist([p.column], schema, "partition"):
                return None
            ctype = schema.columns()[p.column.value]
            if not (ctype.is_integral or ctype.is_temporal):
                self.error(
                    "E304",
                    f"partition column `{p.column.value}` is {ctype.describe()}; "
                    "parallel reads need an integer, date or timestamp column",
                    p.column.span,
                    "pick a numeric or date key, or drop `partition`",
                    column=p.column.value,
                )
                return None
            problems = _partition_problems(p, ctype)
            if problems:
                self.diagnostics.extend(problems)
                return None
            args["partition"] = {
                "column": p.column.value,
                "lower": str(p.lower.value),
                "upper": str(p.upper.value),
                "partitions": int(p.partitions.value),
            }
        if step.fetch_size is not None:
            args["fetch_size"] = int(step.fetch_size.value)
        return Lowered(args, schema, rules=self.validation_rules(schema, step.schema))

    def _check_jdbcload(self, step: ast.JdbcLoad, schema: RecordSchema) -> Lowered | None:
        connection = self.connection(step.connection, step.type.value)
        if not self.columns_exist(step.keys, schema, "keys"):
            return None
        # Every column of the input becomes a column of the target (and of its staging table).
        names = [
            step.table,
            *step.keys,
            *([step.sequence_by] if step.sequence_by else []),
            *(ast.Name(n, step.input.span) for n in schema.names()),
        ]
        too_long = _identifier_problems(names, step.type.value)
        if too_long:
            self.diagnostics.extend(too_long)
            return None
        args: dict[str, Any] = {"connection": connection, "table": step.table.value}
        if step.keys:
            args["keys"] = tuple(k.value for k in step.keys)
        if step.batch_size is not None:
            args["batch_size"] = int(step.batch_size.value)
        if step.parallelism is not None:
            args["parallelism"] = int(step.parallelism.value)
        if not self._sequence(step, schema, args):
            return None
        return Lowered(args, schema, mode=step.mode.value)

    # --- third-party steps -------------------------------------------------------------------

    def _check_pluginstep(self, step: ast.PluginStep, *inputs: RecordSchema) -> Lowered | None:
        spec = self.plugins.get(step.role, step.type.value)  # type: ignore[arg-type]
        assert spec is not None
        args: dict[str, Any] = {k: self._plugin_value(v) for k, v in sorted(step.options.items())}
        declared = step.role == "extract" or (
            step.role == "transform" and spec.output == "declared"
        )
        if declared:
            if step.schema is None:
                self.error(
                    "E103",
                    f"a `{step.type.value}` step needs a `schema` (.avsc)",
                    step.span,
                    'add "schema": "<name>.avsc"',
                )
                return None
            schema = self.load_avro(step.schema)
            if schema is None:
                return None
            args["schema_ddl"] = schema.spark_ddl()
        elif not inputs:
            return None
        else:
            schema = inputs[0]
        if step.keys and self.columns_exist(step.keys, schema, "keys"):
            args["keys"] = tuple(n.value for n in step.keys)
        if step.role == "load":
            return Lowered(args, schema, mode=step.mode.value if step.mode else "append")
        if step.role == "extract" and step.schema is not None:
            return Lowered(args, schema, rules=self.validation_rules(schema, step.schema))
        return Lowered(args, self.derived(step, schema.columns()))

    def _plugin_value(self, value: Any) -> Any:
        if isinstance(value, str) and ENV_VAR.search(value):
            for ref in ENV_VAR.findall(value):
                if VAR_NAME.match(ref):
                    self.variables.add(ref)
            return EnvString(value)
        if isinstance(value, dict):
            return {k: self._plugin_value(v) for k, v in value.items()}
        if isinstance(value, list):
            return tuple(self._plugin_value(v) for v in value)
        return value

    # --- JVM steps ----------------------------------------------------------------------------

    def _check_jvmstep(self, step: ast.JvmStep, schema: RecordSchema) -> Lowered | None:
        class_name = step.class_.value
        if not self._jvm_class(step.class_):
            return None
        out = schema if step.schema is None else self.load_avro(step.schema)
        if out is None:
            return None
        declared = self._jvm_options_schema(step)
        if declared is not None and not self._jvm_options(step, declared, schema):
            return None
        # The step as the class reads it (etlc.jvm.config.JvmStep), ${var}s resolved at run time.
        config: dict[str, Any] = {
            "id": step.id.value,
            "type": step.type.value,
            "input": step.input.value,
            "class": class_name,
        }
        if step.options is not None:
            config["options"] = self._json_value(step.options.value)
        if step.schema is not None:
            config["schema"] = step.schema.value
        return Lowered(
            {"class_name": class_name, "step": config}, self.derived(step, out.columns())
        )

    def _jvm_class(self, ref: ast.Name) -> bool:
        """A class name the JVM could load: qualified, and one etlc ships if in etlc's package."""
        name, known = ref.value, shipped_classes()
        if "." not in name:
            same = [k for k in known if k.rsplit(".", 1)[-1] == name]
            self.error(
                "E212",
                f"`{name}` is not a fully qualified class name",
                ref.span,
                f"did you mean `{same[0]}`?"
                if same
                else "write its package too, e.g. `com.example.steps.Dedupe`",
                class_name=name,
            )
            return False
        if name.startswith(ETLC_PACKAGE) and name not in known:
            self.error(
                "E212",
                f"etlc's JVM module has no step class `{name}`",
                ref.span,
                did_you_mean(name, known),
                class_name=name,
            )
            return False
        return True

    def _jvm_options_schema(self, step: ast.JvmStep) -> OptionsSchema | None:
        class_name = step.class_.value
        try:
            path = schema_file(class_name, self.options.jvm_schema_dirs, self.options.project_roots)
        except OptionsSchemaError as exc:
            self.error(exc.code, str(exc), step.class_.span, exc.hint)
            return None
        if path is None:
            if step.options is not None and step.options.value:
                self.diagnostics.append(
                    diag(
                        "W204",
                        f"the options of `{class_name}` are not checked at compile time: "
                        f"no options schema `{class_name}.json` was found",
                        step.options.span,
                        f"add schemas/jvm/{class_name}.json (`etlc.jvm.transform.StepSchemas "
                        f"{class_name}` prints the one the class declares)",
                        Severity.WARNING,
                        class_name=class_name,
                    )
                )
            return None
        try:
            return load_options_schema(path)
        except OptionsSchemaError as exc:
            self.error(exc.code, str(exc), step.class_.span, exc.hint)
            return None

    def _jvm_options(
        self, step: ast.JvmStep, declared: OptionsSchema, input_: RecordSchema
    ) -> bool:
        """The step's options against the schema its class declares; column names against the
        input. Each problem is one E213 (E302 for a column) at the option it is about."""
        class_name = step.class_.value
        tree: JValue = step.options.tree if step.options is not None else JObject(step.span, ())
        root = JObject(step.span, (JMember("options", tree.span, tree),))
        found = validate(root, declared.wrapper, self.file)
        for d in found:
            self.error(
                "E213",
                f"{d.message} (the options schema of `{class_name}`)",
                d.span,
                d.hint,
                class_name=class_name,
                rule=d.code,
            )
        if found:
            return False
        ok = True
        for option in declared.column_options():
            node = locate(tree, (option,))
            items = node.items if isinstance(node, JArray) else (node,) if node else ()
            names = [ast.Name(str(i.value), i.span) for i in items if isinstance(i, JScalar)]
            ok = self.columns_exist(names, input_, f"option `{option}`") and ok
        return ok

    def _json_value(self, value: Any) -> Any:
        """A JSON value for the driver to hand over as JSON: arrays stay lists, strings with
        ``${var}`` are resolved at run time."""
        if isinstance(value, list):
            return [self._json_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self._json_value(v) for k, v in value.items()}
        return self._plugin_value(value)

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


def _spark_options(options: Mapping[str, ast.Scalar] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in sorted((options or {}).items()):
        text = str(value.value).lower() if isinstance(value, ast.Flag) else str(value.value)
        out[_SPARK_FILE_OPTIONS.get(key, key)] = text
    return out


# --- checked SQL and run-time-valid values (helpers of the step checks above) -------------

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


# The longest identifier each database takes: PostgreSQL truncates past 63 bytes (NAMEDATALEN
# - 1), so two long names could silently become one; MySQL refuses past 64 characters.
_IDENTIFIER_LIMITS: Mapping[str, tuple[int, str, Callable[[str], int]]] = {
    "postgres": (63, "bytes", lambda name: len(name.encode("utf-8"))),
    "mysql": (64, "characters", len),
}


def _identifier_problems(names: Iterable[ast.Name], system: str) -> list[Diagnostic]:
    limit, unit, size = _IDENTIFIER_LIMITS[system]
    found: list[Diagnostic] = []
    seen: set[str] = set()
    for name in names:
        for part in name.value.split("."):
            if size(part) > limit and part not in seen:
                seen.add(part)
                found.append(
                    diag(
                        "E216",
                        f"`{part[:40]}...` is {size(part)} {unit} long; {system} identifiers "
                        f"take at most {limit}",
                        name.span,
                        "rename it (a select step can rename a column)",
                        identifier=part,
                    )
                )
    return found


_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _partition_problems(p: ast.JdbcPartition, ctype: DataType) -> list[Diagnostic]:
    """Spark reads `lowerBound`/`upperBound` as the column's type: integers for an integer
    column, dates or timestamps for a temporal one; lower must be below upper."""
    values: list[Any] = []
    found: list[Diagnostic] = []
    for bound in (p.lower, p.upper):
        raw = bound.value
        value: Any = None
        if ctype.is_integral:
            if isinstance(raw, int) and not isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw):
                value = int(raw)
            if isinstance(value, int) and not _LONG_MIN <= value <= _LONG_MAX:
                value = None
            what = "an integer (a 64-bit long)"
        else:
            if isinstance(raw, str) and valid_temporal(raw, ctype.kind):
                value = raw.strip()
            what = f"a {ctype.kind} like '2024-01-31" + (
                " 00:00:00'" if ctype.kind == "timestamp" else "'"
            )
        if value is None:
            found.append(
                diag(
                    "E216",
                    f"partition bound {str(raw)[:40]!r} is not {what} for column "
                    f"`{p.column.value}` ({ctype.describe()})",
                    bound.span,
                    "give the bounds in the partition column's type",
                )
            )
        values.append(value)
    lower, upper = values
    if not found and _ordered(lower, ctype) >= _ordered(upper, ctype):
        found.append(
            diag(
                "E216",
                f"partition bounds are inverted or equal: lower {lower!r} is not below "
                f"upper {upper!r}",
                p.lower.span,
                "lower is the smallest value to split from, upper the largest",
            )
        )
    return found


def _ordered(value: Any, ctype: DataType) -> Any:
    """A bound as a comparable key (dates before times on the same day, zero-padded)."""
    if ctype.is_integral:
        return value
    date, _, time = str(value).replace("T", " ").partition(" ")
    parts = [int(x) for x in re.findall(r"[0-9]+", date)[:3]]
    clock = [float(x) for x in re.findall(r"[0-9]+(?:\.[0-9]+)?", time)[:3]]
    return [*parts, 1, 1][:3] + [*clock, 0.0, 0.0, 0.0][:3]


_KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_KAFKA_MAX_PARTITION = 2**31 - 1


def _kafka_offsets_problem(
    node: ast.Name, ending: bool, topic: ast.Name | None
) -> Diagnostic | None:
    """`earliest`/`latest` or Spark's JSON {"topic": {"partition": offset}}; -2 means earliest
    and -1 latest in the JSON, and an end cannot be earliest."""
    text = node.value
    which = "ending_offsets" if ending else "starting_offsets"
    words = ("latest",) if ending else ("earliest", "latest")
    if text in words:
        return None
    lowest = -1 if ending else -2

    def problem(why: str) -> Diagnostic:
        return diag(
            "E216",
            f"`{which}` {why}",
            node.span,
            f"write {' or '.join(repr(w) for w in words)}, or JSON like "
            '{"orders": {"0": 42, "1": -1}}',
        )

    if not text.lstrip().startswith("{"):
        return problem(f"must be {' or '.join(words)}, or a JSON object of offsets")
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return problem(f"is not valid JSON: {str(exc)[:80]}")
    if not isinstance(doc, dict) or not doc:
        return problem("must be a non-empty JSON object of topics")
    for name, partitions in doc.items():
        if not _KAFKA_TOPIC.fullmatch(name):
            return problem(f"names {name[:40]!r}, which is not a Kafka topic name")
        if topic is not None and name != topic.value:
            return problem(f"names topic `{name}`, but this step reads `{topic.value}`")
        if not isinstance(partitions, dict) or not partitions:
            return problem(f"must map topic `{name}` to {{partition: offset}}")
        for partition, offset in partitions.items():
            if not (partition.isascii() and partition.isdigit()) or (
                int(partition) > _KAFKA_MAX_PARTITION
            ):
                return problem(f"has partition {partition[:20]!r}, not a partition number")
            if (
                not isinstance(offset, int)
                or isinstance(offset, bool)
                or not lowest <= offset < 2**63
            ):
                return problem(
                    f"has offset {str(offset)[:30]} for `{name}` partition {partition}: "
                    f"offsets are integers from {lowest}"
                    + (" (-2 earliest, -1 latest)" if not ending else " (-1 latest)")
                )
    return None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key is given twice")
    return dict(pairs)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")
