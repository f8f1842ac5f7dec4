"""Render a typed plan into a standalone PySpark driver and its submit command.

Lowering happens here in Python (which import, which constructor, which literal); the jinja
templates only lay the pieces out. Output is deterministic: the same plan gives byte-identical
files, and the driver is already in ``ruff format`` style.

Every value reaches a template through one escaping path per language: ``Code`` from
``literals`` for the driver, ``ShellWord``/``ShellComment`` from ``shell`` for the submit
command. Each template's ``finalize`` refuses anything else, so a template edit cannot paste
raw text from a definition into generated code.
"""

from __future__ import annotations

import functools
import io
import os
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

import etlc
from etlc.codegen.literals import (
    INDENT,
    LINE_LENGTH,
    Code,
    RenderError,
    code,
    docstring_text,
    identifier,
    literal,
    module_path,
    string,
)
from etlc.codegen.output import Output
from etlc.codegen.shell import ShellComment, ShellWord, comment, word
from etlc.dsl.lineage import OutputLineage, output_lineages
from etlc.dsl.plan import EnvConnection, EnvString, EnvVariables, Plan, PlannedStep, SchemaOf
from etlc.project import FOLDERS, RUNTIME_DIRS, Project, find_project
from etlc.spark_targets import SparkTarget, spark_target
from etlc.vault.redaction import SPARK_REDACTION_CONF

_RUNTIME_IMPORTS = {
    "etlc.runtime.driver": ["Wrap", "run_driver"],
    "etlc.runtime.environment": ["Environment"],
    "etlc.runtime.graph": [
        "ColumnLineage",
        "DatasetSchema",
        "ExtractStep",
        "LoadStep",
        "PipelineGraph",
    ],
}
# What generated drivers import: shipped to the cluster with --py-files.
_RUNTIME_PACKAGES = ("etlc/runtime", "etlc/connectors", "etlc/transforms", "etlc/vault")
_RUNTIME_MODULES = (
    "etlc/__init__.py",
    "etlc/database_sql.py",
    "etlc/plugins.py",
    "etlc/printable.py",
    "etlc/quarantine_columns.py",
    "etlc/profiles.py",
    "etlc/spark_submit.py",
    "etlc/spark_targets.py",
)
_NOT_RUNTIME = ("etlc/vault/cli.py",)  # the `etlc vault` command, not needed by drivers
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)

# etlc's JVM module (jvm/etlc-jvm): one JSON line per completed Spark stage, beside the
# driver's own lines. Built by `make setup`, not published, so always shipped with --jars.
STAGE_LISTENER = "etlc.jvm.metrics.StageMetricsListener"

# Spark settings every driver is submitted with (the environment file adds its own).
BASE_CONF = (
    "spark.sql.session.timeZone=UTC",
    "spark.ui.showConsoleProgress=false",
    f"spark.extraListeners={STAGE_LISTENER}",
    # Spark's own logs, UI and plans hide credentials too (Spark's defaults, extended).
    *(f"{key}={value}" for key, value in SPARK_REDACTION_CONF),
)


# What codegen itself requires of names that become file names and dictionary keys, checked
# again here so a gap in the checker's patterns gives an internal error, never a broken file.
_PIPELINE_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
_STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")

# The marked types each template accepts (ints are inert in both languages).
_DRIVER_VALUES: tuple[type[str], ...] = (Code,)
_SUBMIT_VALUES: tuple[type[str], ...] = (ShellWord, ShellComment)


def _only(marked: tuple[type[str], ...]) -> Callable[[object], object]:
    def finalize(value: object) -> object:
        if isinstance(value, marked) or (isinstance(value, int) and not isinstance(value, bool)):
            return value
        raise RenderError(f"a template was handed unescaped {type(value).__name__}")

    return finalize


@functools.cache  # one environment per language: Jinja compiles each template once per process
def _env(marked: tuple[type[str], ...]) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("etlc.codegen", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_only(marked),
    )


def runtime_zip_name() -> str:
    return f"etlc-runtime-{etlc.__version__}.zip"


LOG_CONFIG_NAME = "etlc-log4j2.properties"


@functools.cache
def log_config() -> bytes:
    """Spark's console logging for the drivers (WARN, known harmless warnings quiet)."""
    return (resources.files("etlc.codegen") / "templates" / "log4j2.properties").read_bytes()


def jvm_jar_name(target: SparkTarget | None = None) -> str:
    """etlc's JVM module for the target's Scala, as `etlc jars` leaves it in the jars folder."""
    return (target or spark_target()).jvm_jar(etlc.__version__)


def render(plan: Plan, out_dir: Path, project: Project | None = None) -> list[Output]:
    """Every file ``etlc compile`` writes for one plan, under ``out_dir``.

    ``project`` (default: the one holding the working directory) says where the submit
    command finds the jars and the driver its environment files, as paths relative to the
    output folder and the project's root: no generated file names the machine's own folders.
    Raises ``RenderError`` for a value no checked plan holds (a bug in the checker).
    """
    _full_match(_PIPELINE_NAME, plan.name, "pipeline name")
    project = project or find_project()
    driver = render_driver(plan, out_dir, project)
    submit = render_submit(plan, out_dir, project)
    return [
        Output(out_dir / f"{plan.name}.py", driver.encode()),
        Output(out_dir / f"{plan.name}.submit.sh", submit.encode(), executable=True),
        Output(out_dir / runtime_zip_name(), runtime_zip()),
        Output(out_dir / LOG_CONFIG_NAME, log_config()),
    ]


def _source(plan: Plan, project: Project) -> str:
    """The definition relative to the project's root (``<config module>/<file>`` for one
    outside it), the same wherever compile was run from."""
    # abspath, not resolve: no file system access, so any text (even NUL) renders.
    path = Path(os.path.abspath(plan.source))
    if path.is_relative_to(project.root):
        return path.relative_to(project.root).as_posix()
    return path.relative_to(path.parent.parent).as_posix()


def _shown_out(out_dir: Path, project: Project) -> Path:
    """The output folder as the project's users write it: relative to the root if inside."""
    absolute = Path(os.path.abspath(out_dir))
    return absolute.relative_to(project.root) if absolute.is_relative_to(project.root) else out_dir


def _driver_options(project: Project) -> list[Code]:
    """``run_driver`` arguments for the project's folders where they are not the runtime's
    defaults (which are this module's defaults too: a test holds them equal)."""
    values = {
        "env_dir": (project.relative(project.environments), FOLDERS["environments"]),
        "stage_dir": (project.stage_dir, RUNTIME_DIRS["stage_dir"]),
        "checkpoint_dir": (project.checkpoint_dir, RUNTIME_DIRS["checkpoint_dir"]),
    }
    return [
        code("{}={}", identifier(key), string(value))
        for key, (value, default) in values.items()
        if value != default
    ]


def render_driver(plan: Plan, out_dir: Path, project: Project | None = None) -> str:
    project = project or find_project()
    imports: dict[str, set[str]] = defaultdict(set)
    for module, names in _RUNTIME_IMPORTS.items():
        imports[module].update(names)
    for step in plan.steps:
        _full_match(_STEP_ID, step.id, "step id")
        module, attr = step.impl.split(":", 1)
        imports[module].add(attr)
        if step.role == "transform":  # a pipeline may have none
            imports["etlc.runtime.graph"].add("TransformStep")
        for _, value in step.args:
            if isinstance(value, EnvConnection):
                imports[value.kind.__module__].add(value.kind.__name__)
        if step.expectations:
            imports["etlc.runtime.expectations"].add("Expectation")
    lineage = output_lineages(plan.steps, [s.id for s in plan.by_role("load")])
    context = {
        "name": docstring_text(plan.name),
        "version": docstring_text(etlc.__version__),
        "source": docstring_text(_source(plan, project)),
        "submit": docstring_text(
            (_shown_out(out_dir, project) / f"{plan.name}.submit.sh").as_posix()
        ),
        "datasets": docstring_text(", ".join(s.id for s in plan.steps if s.role != "load")),
        "imports": [_import_line(m, n) for m, n in sorted(imports.items())],
        "pipeline": string(plan.name),
        "schemas": [_schema_entry(s) for s in plan.steps if s.role != "load"],
        "extracts": [_step_call(s, {}) for s in plan.by_role("extract")],
        "transforms": [_step_call(s, {}) for s in plan.by_role("transform")],
        "loads": [_step_call(s, lineage) for s in plan.by_role("load")],
        "mode": string(plan.mode),
        "max_retries": literal(plan.max_retries),
        "delay_seconds": literal(float(plan.delay_seconds)),
        "project_options": _driver_options(project),
        "definition": literal(plan.definition, prefix=len("DEFINITION = ")),
        "definition_checked": plan.definition is not None,
        "definition_file": string(_source(plan, project)),
        "spark_line": string(plan.spark.line),
        "about_spark": docstring_text(f"{plan.spark.shown} (Scala {plan.spark.scala})"),
    }
    return _env(_DRIVER_VALUES).get_template("driver.py.j2").render(context)


def render_submit(plan: Plan, out_dir: Path, project: Project | None = None) -> str:
    _full_match(_PIPELINE_NAME, plan.name, "pipeline name")
    project = project or find_project()
    # The jars folder from where the script lies, so the project may move as a whole.
    out = os.path.abspath(out_dir)
    jars_dir = os.path.relpath(project.jars, out)
    context = {
        "about_driver": comment(f"{plan.name}.py"),
        "about_version": comment(etlc.__version__),
        "about_spark": comment(f"{plan.spark.shown} (Scala {plan.spark.scala})"),
        "about_source": comment(_source(plan, project)),
        "about_env": comment(f"{project.relative(project.environments)}/<ETLC_ENV>.json"),
        "about_jars": comment(f"<project>/{project.relative(project.jars)}"),
        "jars_dir": word(Path(jars_dir).as_posix()),
        "env_dir": word(Path(os.path.relpath(project.environments, out)).as_posix()),
        "about_script": comment(f"{plan.name}.submit.sh"),
        "driver": word(f"{plan.name}.py"),
        "app_name": word(f"etlc:{plan.name}"),
        "packages": word(",".join(a.coordinate for a in plan.artifacts)),
        "jars": [word(a.jar_name) for a in plan.artifacts],
        "jvm_jar": word(jvm_jar_name(plan.spark)),
        "runtime_zip": word(runtime_zip_name()),
        "log_config": word(LOG_CONFIG_NAME),
        "conf": [word(c) for c in (*BASE_CONF, *plan.spark_conf)],
        # JVM steps may name classes from jars of the user's own: ETLC_EXTRA_JARS ships them.
        "extra_jars": any(s.type == "jvm" for s in plan.steps),
    }
    return _env(_SUBMIT_VALUES).get_template("submit.sh.j2").render(context)


def _full_match(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise RenderError(
            f"{what} {string(value)} does not match {pattern.pattern}; the checker must refuse it"
        )


@functools.cache  # the same bytes for every plan of one `etlc compile`
def runtime_zip(extra: tuple[str, ...] = ()) -> bytes:
    """The runtime side of etlc as a deterministic zip (sorted, fixed timestamps); ``extra``
    names more modules or packages (``etlc test`` adds its runner, which no driver needs)."""
    root = Path(etlc.__file__).parent.parent
    files = [root / m for m in (*_RUNTIME_MODULES, *(e for e in extra if e.endswith(".py")))]
    for pkg in (*_RUNTIME_PACKAGES, *(e for e in extra if not e.endswith(".py"))):
        files.extend(sorted((root / pkg).rglob("*.py")))
    files = [f for f in files if f.relative_to(root).as_posix() not in _NOT_RUNTIME]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(set(files)):
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), _ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


# --- pieces ---------------------------------------------------------------------------


def _name_order(name: str) -> tuple[int, str]:
    """isort's order-by-type, as ruff applies it: CONSTANTS, Classes, functions."""
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def _import_line(module: str, names: set[str]) -> Code:
    ordered = [identifier(n) for n in sorted(names, key=_name_order)]
    line = code("from {} import {}", module_path(module), Code(", ".join(ordered)))
    if len(line) <= LINE_LENGTH:
        return line
    body = Code("".join(f"{INDENT}{n},\n" for n in ordered))
    return code("from {} import (\n{})", module_path(module), body)


def _custom(value: Any) -> Code | None:
    if isinstance(value, EnvString):
        return code("env.interpolate({})", string(value.text))
    if isinstance(value, EnvConnection):
        return code("env.connection({}, {})", string(value.name), identifier(value.kind.__name__))
    if isinstance(value, SchemaOf):
        return code("SCHEMAS[{}]", string(value.dataset))
    if isinstance(value, EnvVariables):
        return code("env.variables")
    return None


def _call(func: Code, kwargs: list[tuple[Code, Code]], level: int) -> Code:
    inner = INDENT * (level + 1)
    body = "".join(f"{inner}{k}={v},\n" for k, v in kwargs)
    return Code(f"{func}(\n{body}{INDENT * level})")


def _kwargs(args: tuple[tuple[str, Any], ...], level: int) -> list[tuple[Code, Code]]:
    return [(identifier(k), literal(v, level + 1, _custom, len(k) + 1)) for k, v in args]


def _schema_entry(step: PlannedStep) -> Code:
    # The Avro document as a Python literal, laid out like the formatter would: read field by
    # field in a review, where one JSON line of a wide record is not.
    avro = literal(step.schema.to_avro(), 2, prefix=len("avro="))
    ddl = string(step.schema.spark_ddl())
    body = _call(Code("DatasetSchema"), [(Code("avro"), avro), (Code("ddl"), ddl)], 1)
    return Code(f"{INDENT}{string(step.id)}: {body},")


def _lineage(traced: OutputLineage, level: int) -> Code:
    """A load's column lineage as the compiler traced it, for the run's lineage events."""
    fields = literal(dict(traced.fields), level + 1, prefix=len("fields="))
    dataset = literal(traced.dataset, level + 1, prefix=len("dataset="))
    return _call(
        Code("ColumnLineage"), [(Code("fields"), fields), (Code("dataset"), dataset)], level
    )


def _expectations(step: PlannedStep, level: int) -> Code:
    """A step's expectations, one call each: on one line where it fits, else a keyword a line
    (the trailing commas keep the formatter from joining them again)."""
    calls = []
    for e in step.expectations:
        values = (("name", e.name), ("check", e.check), ("policy", e.policy))
        kwargs = [(Code(k), string(v)) for k, v in values]
        one = Code("Expectation(" + ", ".join(f"{k}={v}" for k, v in kwargs) + ")")
        fits = len(INDENT * (level + 1)) + len(one) + 1 <= LINE_LENGTH
        calls.append(one if fits else _call(Code("Expectation"), kwargs, level + 1))
    body = "".join(f"{INDENT * (level + 1)}{c},\n" for c in calls)
    return Code(f"(\n{body}{INDENT * level})")


def _step_call(step: PlannedStep, lineage: Mapping[str, OutputLineage]) -> Code:
    level = 3
    impl = identifier(step.impl.split(":", 1)[1])
    strategy = _call(impl, _kwargs(step.args, level + 1), level + 1)
    schema_ref = code("SCHEMAS[{}]", string(step.inputs[0] if step.role == "load" else step.id))
    fields: list[tuple[Code, Code]] = [(Code("id"), string(step.id))]
    if step.role == "extract":
        fields += [(Code("extractor"), strategy), (Code("schema"), schema_ref)]
        fields.append((Code("rules"), literal(step.rules, level + 1, prefix=len("rules="))))
        if step.refresh is not None:
            fields.append((Code("refresh"), string(step.refresh)))
        if step.expectations:
            fields.append((Code("expectations"), _expectations(step, level + 1)))
        if step.on_invalid != "fail":
            fields.append((Code("on_invalid"), string(step.on_invalid)))
    elif step.role == "transform":
        fields += [
            (Code("inputs"), literal(step.inputs, level + 1, prefix=len("inputs="))),
            (Code("fn"), strategy),
            (Code("schema"), schema_ref),
        ]
        # Always written: None (every column), () (none) or the columns, so a reader sees what
        # the Avro boundary checks again after this step without knowing the default.
        recheck = literal(step.recheck, level + 1, prefix=len("recheck="))
        fields.append((Code("recheck"), recheck))
        if step.reads_every_record:
            fields.append((Code("reads_every_record"), literal(True, level + 1)))
        if step.expectations:
            fields.append((Code("expectations"), _expectations(step, level + 1)))
    else:
        fields += [
            (Code("input"), string(step.inputs[0])),
            (Code("loader"), strategy),
            (Code("mode"), string(step.mode)),
            (Code("lineage"), _lineage(lineage[step.id], level + 1)),
        ]
        if step.quarantined:
            fields.append((Code("quarantined"), literal(True, level + 1)))
        if step.rebuild_mode:
            fields.append((Code("rebuild_mode"), string(step.rebuild_mode)))
    cls = {"extract": "ExtractStep", "transform": "TransformStep", "load": "LoadStep"}[step.role]
    return Code(INDENT * level + _call(Code(cls), fields, level) + ",")
