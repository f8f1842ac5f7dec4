"""The ``etlc`` command line: init, lint, compile, run, explain, jars.

The compiler side only: nothing here imports pyspark or starts a JVM (``run`` hands the
compiled driver to spark-submit in a separate process). Every command works in the project
holding the working directory (``etlc.project``): its folders are the defaults.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup, TyperOption

import etlc
from etlc import spark_submit
from etlc.codegen import ddl as table_ddl
from etlc.codegen import explain as explain_plan
from etlc.codegen import explain_lineage
from etlc.codegen.literals import RenderError
from etlc.codegen.output import Output, OutputError, write
from etlc.codegen.render import render
from etlc.dsl import lint_formats, schema_infer
from etlc.dsl.checker import CheckResult, check_file, default_options
from etlc.dsl.diagnostics import render as render_diagnostic
from etlc.dsl.diagnostics import shown_path
from etlc.dsl.environments import check_environments
from etlc.dsl.pipeline_tests import check_test_file, is_test_file
from etlc.dsl.types import AvroSchemaError
from etlc.printable import printable
from etlc.project import Project, ProjectError, find_project, init_project
from etlc.spark_targets import DEFAULT_LINE, TARGETS, SparkTarget, spark_target, target_problem
from etlc.vault.cli import app as vault_app

app = typer.Typer(
    name="etlc",
    help="Compile declarative ETL pipeline definitions (JSON or YAML) into PySpark drivers.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
app.add_typer(vault_app, name="vault")


class OutputFormat(str, Enum):
    TEXT = "text"
    JSON = "json"


class ExplainFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    DOT = "dot"
    MERMAID = "mermaid"
    HTML = "html"


class LintFormat(str, Enum):
    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    GITHUB = "github"
    JUNIT = "junit"


Files = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Definition files (*.json, *.yaml, *.yml) or folders holding them, searched "
        "recursively. Default: the project's definitions folder.",
        show_default=False,
    ),
]
OutDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="Where drivers and submit commands are written. Default: the project's "
        "`generated` folder.",
        show_default=False,
    ),
]
SparkVersion = Annotated[
    str | None,
    typer.Option(
        "--spark-version",
        metavar="LINE",
        help=f"The Spark line the drivers run on: {', '.join(TARGETS)} (3.5 is Scala 2.12, the "
        "others 2.13). It picks every connector jar and refuses what that line cannot run. "
        "Default: the project's `spark_version` (etlc.toml), else "
        f"{DEFAULT_LINE}.",
        show_default=False,
    ),
]
DEFINITION_SUFFIXES = (".json", ".yaml", ".yml")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"etlc {etlc.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    if ctx.invoked_subcommand == "run":
        _describe_env_option(ctx)


def _describe_env_option(ctx: typer.Context) -> None:
    """`etlc run --help` names the project's own environments folder (the callback runs
    before the subcommand reads its arguments); a broken project file is reported by run."""
    try:
        project = find_project()
    except ProjectError:
        return
    if not isinstance(ctx.command, TyperGroup):
        return
    command = ctx.command.get_command(ctx, "run")
    folder = printable(project.relative(project.environments))
    for param in command.params if command else []:
        if isinstance(param, TyperOption) and param.name == "env":
            param.help = f"Environment: {folder}/<env>.json, the project's environments folder."


def _project(spark_version: str | None = None) -> Project:
    """The project holding the working directory, compiling for ``spark_version`` when one is
    given (--spark-version); a bad project file ends the command."""
    try:
        project = find_project()
    except ProjectError as exc:
        raise _fail(printable(str(exc))) from None
    if spark_version is None:
        return project
    why = target_problem(spark_version)
    if why:
        raise _fail(f"--spark-version {printable(spark_version)}: {why}", code=2)
    return replace(project, spark_version=spark_version)


def _fail(message: str, code: int = 1) -> typer.Exit:
    """A user's mistake: one line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _shown(path: object) -> str:
    """A path or name from the user, safe on a terminal or in a CI log (see diagnostics)."""
    return printable(str(path))


def _expand(paths: list[Path], project: Project | None = None) -> list[Path]:
    """Files as given; folders searched recursively, each one's definitions sorted."""
    project = project or _project()
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = _definitions_in(p, project)
            if not found:  # a CI step must not pass for having checked nothing
                raise _fail(f"{_shown(p)}: the folder holds no definitions (*.json, *.yaml)")
            out.extend(found)
        else:
            out.append(p)
    return list(dict.fromkeys(out))  # a file named twice (a folder and itself) is checked once


def _definitions_in(folder: Path, project: Project) -> list[Path]:
    """Every ``*.json``/``*.yaml``/``*.yml`` under ``folder``, sorted.

    Left out: hidden folders (.git, .etlc), the project's other folders (its environments,
    schemas, generated and jars folders, even inside the definitions folder), and folders
    named ``env`` wherever a project file does not say where environments are (outside the
    definitions folder, or with no project file): that is where environment files are found
    without one. Links to folders are not followed (a loop, or a way out of the project).
    """
    skip = project.other_folders()
    named = project.file is not None
    found: list[Path] = []
    stack = [folder]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise _fail(f"{_shown(current)}: cannot list the folder: {exc.strerror}") from None
        for entry in entries:
            path = current / entry.name
            if not entry.is_dir(follow_symlinks=False):
                if entry.name.endswith(DEFINITION_SUFFIXES):
                    found.append(path)
            elif not (
                entry.name.startswith(".")
                or Path(os.path.abspath(path)) in skip
                or (
                    entry.name == "env" and not (named and project.holds(project.definitions, path))
                )
            ):
                stack.append(path)
    return sorted(found)


# Diagnostics shown per file in text form: past this many, more of them help nobody read the
# first ones, and a hostile file could make the log gigabytes long.
MAX_SHOWN = 200


def _report(
    results: list[CheckResult],
    fmt: str,
    environments: list[CheckResult] | None = None,
    strict: bool = False,
) -> int:
    definitions = sum(1 for r in results if not is_test_file(Path(r.file)))
    tests = len(results) - definitions
    results = results + (environments or [])
    errors = sum(1 for r in results for d in r.diagnostics if d.is_error)
    warnings = sum(1 for r in results for d in r.diagnostics if not d.is_error)
    if fmt != "text":
        checked = [lint_formats.Checked(r.file, r.diagnostics) for r in results]
        typer.echo(lint_formats.render(fmt, checked, strict))
    else:
        for r in results:
            for d in r.diagnostics[:MAX_SHOWN]:
                # A finding in another file (a schema's) is shown without an excerpt.
                source = r.source if d.span.file == r.file else None
                typer.echo(render_diagnostic(d, source), err=True)
                typer.echo("", err=True)
            if len(r.diagnostics) > MAX_SHOWN:
                typer.echo(
                    f"{shown_path(r.file)}: {len(r.diagnostics) - MAX_SHOWN} more diagnostic(s) "
                    "not shown (`--format json` lists every one)\n",
                    err=True,
                )
    files = f"{definitions} definition(s)" + (f", {tests} test file(s)" if tests else "")
    typer.echo(
        f"{files} and {len(results) - definitions - tests} environment file(s) "
        f"checked: {errors} error(s), {warnings} warning(s)",
        err=True,
    )
    return 1 if errors or (strict and warnings) else 0


def _check(
    files: list[Path] | None, project: Project, with_tests: bool = False
) -> tuple[list[CheckResult], list[CheckResult]]:
    """Check the definitions named, by default those of the project's definitions folder,
    and every environment file they may run with: (definitions, environment files). With
    ``with_tests``, test files (named, or those of the project's tests folder by default)
    are checked too, and come last among the definitions' results."""
    if not files:
        if not project.definitions.is_dir():
            folder = _shown(project.relative(project.definitions))
            raise _fail(
                f"no definitions folder `{folder}` in the project at {_shown(project.root)}: "
                "name files or folders, or create one (`etlc init`)"
            )
        files = [_near(project.definitions)]
        if with_tests and project.tests.is_dir() and _definitions_in(project.tests, project):
            files.append(_near(project.tests))
    definitions: list[CheckResult] = []
    tests: list[CheckResult] = []
    env_dirs: dict[Path, tuple[Path, ...]] = {}
    for path in _expand(files, project):
        if is_test_file(path):
            if with_tests:
                checked = check_test_file(path, project)
                tests.append(CheckResult(checked.file, checked.source, checked.diagnostics, None))
            continue
        if project.holds(project.tests, path):  # the rows a test file gives, not a definition
            continue
        options = default_options(path, project)
        definitions.append(check_file(path, options))
        if options.env_dir is not None:
            env_dirs.setdefault(options.env_dir, options.project_roots)
    # Each environment file once per run, however many definitions share it.
    environments = [
        CheckResult(env.file, env.source, env.diagnostics, None)
        for env_dir, roots in env_dirs.items()
        for env in check_environments(_near(env_dir), roots)
    ]
    return definitions + tests, environments


@app.command()
def lint(
    files: Files = None,
    fmt: Annotated[
        LintFormat,
        typer.Option(
            "--format",
            help="text (compiler style, on stderr), or on stdout: json (etlc's rows), sarif "
            "(SARIF 2.1.0, for code scanning), github (GitHub Actions annotations), junit (JUnit "
            "XML).",
        ),
    ] = LintFormat.TEXT,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings fail the check too (exit 1).")
    ] = False,
    spark_version: SparkVersion = None,
) -> None:
    """Check definitions without Spark or Java: shape, graph, schemas, types, capabilities.

    Test files (*.test.json, *.test.yaml) are checked against the definition they name; by
    default the project's tests folder (tests/pipelines) is checked too. Every problem of a
    file is reported in one run as `file:line:col: error[CODE]: message` with the offending
    text underlined and a fix hint. Exit code 1 when any error is found
    (or, with --strict, any warning); the summary line goes to stderr in every format.
    """
    definitions, environments = _check(files, _project(spark_version), with_tests=True)
    raise typer.Exit(_report(definitions, fmt.value, environments, strict))


TestFiles = Annotated[
    list[Path] | None,
    typer.Argument(
        help="Test files (*.test.json, *.test.yaml, *.test.yml) or folders holding them. "
        "Default: the project's tests folder (tests/pipelines).",
        show_default=False,
    ),
]


@app.command(name="test")
def test_(
    files: TestFiles = None,
    junit_xml: Annotated[
        Path | None,
        typer.Option("--junit-xml", help="Also write the results as JUnit XML to this file."),
    ] = None,
) -> None:
    """Run pipeline unit tests: given rows in, expected rows out, on local Spark.

    A test file names a definition ("pipeline": "orders_by_country.json") and holds tests:
    "given" rows per extract (inline "rows", or a CSV/JSON "file" beside the test file; an
    extract not given reads no rows), "expect"ed rows per dataset (any extract or transform
    output, compared as a multiset on the columns the rows name; "key" pairs a missing and
    an extra row into one changed row), and expectation "counts" per step and rule. Sources
    and targets are never touched: extracts read the given rows, validated against their
    Avro schemas as real input is, and no load writes. A streaming definition runs as a batch
    over the given rows. Needs pyspark and the jars (`etlc jars`).

    Exit code 0 when every test passed, 1 when one failed (a diff names the dataset, the row's
    key and the columns that differ) or a test file has errors (as `etlc lint` shows them).
    """
    from etlc.pipeline_testing import TestRunError, run_tests

    project = _project()
    if not files:
        if not project.tests.is_dir():
            folder = _shown(project.relative(project.tests))
            raise _fail(f"no tests folder `{folder}` in the project: name test files or folders")
        files = [_near(project.tests)]
    paths = [p for p in _expand(files, project) if is_test_file(p)]
    if not paths:
        raise _fail("no test files (*.test.json, *.test.yaml, *.test.yml) among those named")
    checks = [check_test_file(p, project) for p in paths]
    results = [CheckResult(c.file, c.source, c.diagnostics, None) for c in checks]
    if any(d.is_error for r in results for d in r.diagnostics):
        raise typer.Exit(_report(results, "text"))
    try:
        code = run_tests(
            checks, project, local_submit_env("local[2]", "test"), typer.echo, junit_xml
        )
    except TestRunError as exc:
        for line in exc.output:
            typer.echo(_shown(line), err=True)
        raise _fail(_shown(exc)) from None
    raise typer.Exit(code)


@app.command(name="compile")
def compile_(files: Files = None, out: OutDir = None, spark_version: SparkVersion = None) -> None:
    """Lint, then write <generated>/<name>.py and <name>.submit.sh for each definition.

    The driver is standalone PySpark importing only the etlc runtime; the .submit.sh beside it
    is the exact spark-submit command (jars or --packages, --py-files, conf). Recompiling an
    unchanged definition rewrites nothing (byte-identical output).
    """
    _compile(files, out, typer.echo, spark_version)


def _compile(
    files: list[Path] | None,
    out: Path | None,
    echo: Callable[[str], None],
    spark_version: str | None = None,
) -> None:
    project = _project(spark_version)
    out = out or project.generated
    results, environments = _check(files, project)
    code = _report(results, "text", environments)
    if code:
        raise typer.Exit(code)
    names: dict[str, str] = {}
    for r in results:
        assert r.plan is not None
        if r.plan.name in names:
            raise _fail(
                f"{_shown(r.file)}: pipeline name `{r.plan.name}` is also used by "
                f"{_shown(names[r.plan.name])}"
            )
        names[r.plan.name] = r.file
    rendered: list[tuple[CheckResult, list[Output]]] = []
    for r in results:
        assert r.plan is not None
        try:
            rendered.append((r, render(r.plan, out, project)))
        except RenderError as exc:  # nothing is written unless every plan renders
            raise _fail(f"{_shown(r.file)}: internal error: {exc} (a bug in etlc)") from None
    try:  # one write: every target is checked before any file is replaced
        changed = set(write([o for _, outputs in rendered for o in outputs]))
    except OutputError as exc:
        raise _fail(str(exc)) from None
    seen: set[Path] = set()
    for r, outputs in rendered:
        own = {o.path for o in outputs} - seen  # the shared runtime zip counts for the first
        seen |= own
        state = "written" if changed & own else "unchanged"
        echo(f"{shown_path(r.file)} -> {_shown(_near(outputs[0].path))} ({state})")


def _near(path: Path) -> Path:
    """``path`` relative to the working directory when it lies below it (the default output
    folder is the project's, an absolute path)."""
    absolute = Path(os.path.abspath(path))
    return absolute.relative_to(Path.cwd()) if absolute.is_relative_to(Path.cwd()) else path


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The definition to compile and run.")],
    env: Annotated[
        str, typer.Option(help="Environment: <environments folder>/<env>.json.")
    ] = "local",
    master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[2]",
    out: OutDir = None,
    full_refresh: Annotated[
        bool,
        typer.Option(
            "--full-refresh",
            help="Read every row of each incremental extract once, whatever its loads "
            "committed, and rebuild the loads it feeds (overwrite, where the sink can).",
        ),
    ] = False,
) -> None:
    """Compile one definition and submit its driver with spark-submit (default: local[2]).

    The driver runs in the project's root folder, where the environment file's relative
    paths start. Needs pyspark and the resolved jars (`etlc jars`). The exit code is the
    driver's: 0 success, 1 failed, 2 records failed validation, 3 partial.
    """
    code = _submit(file, env, master, out, ["--full-refresh"] if full_refresh else [])
    if code:
        raise typer.Exit(code)


def _submit(file: Path, env: str, master: str, out: Path | None, driver_args: list[str]) -> int:
    """Compile ``file`` and submit its driver with ``driver_args``; the driver's exit code."""
    project = _project()
    out = Path(os.path.abspath(out or project.generated))
    compile_([file], out)
    result = check_file(file, default_options(file, project))
    assert result.plan is not None
    submit = out / f"{result.plan.name}.submit.sh"
    command = ["bash", str(submit), *(["--", *driver_args] if driver_args else [])]
    return subprocess.call(command, env=local_submit_env(master, env), cwd=project.root)


state_app = typer.Typer(
    help="The positions of a pipeline's incremental extracts: where its next run starts "
    "reading. Each command compiles the definition and runs its driver (default: local[2]), "
    "which reaches where the loads keep them: their own database (table "
    "etlc_incremental_state), or etlc.state_dir.",
    no_args_is_help=True,
)
app.add_typer(state_app, name="state")
EnvOption = Annotated[str, typer.Option(help="Environment: <environments folder>/<env>.json.")]
MasterOption = Annotated[str, typer.Option(help="Spark master URL.")]


@state_app.command("show")
def state_show(
    file: Annotated[Path, typer.Argument(help="The pipeline's definition.")],
    env: EnvOption = "local",
    master: MasterOption = "local[2]",
    out: OutDir = None,
) -> None:
    """Print each load's position of each incremental extract feeding it.

    A load without one reads every row in the next run."""
    code = _submit(file, env, master, out, ["--state", "show"])
    if code:
        raise typer.Exit(code)


@state_app.command("reset")
def state_reset(
    file: Annotated[Path, typer.Argument(help="The pipeline's definition.")],
    *,
    extract: Annotated[
        str | None,
        typer.Option(help="The incremental extract to reset (default: every one)."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            help="The new position: a timestamp in ISO 8601 (UTC unless it has an offset), a "
            "date or an integer. Without it the next run reads every row."
        ),
    ] = None,
    load: Annotated[
        str | None,
        typer.Option(help="The one load whose position changes (default: every load it feeds)."),
    ] = None,
    env: EnvOption = "local",
    master: MasterOption = "local[2]",
    out: OutDir = None,
) -> None:
    """Move an incremental extract's position, for every load it feeds.

    The next run reads the rows above the new position. Each change is printed with the
    position before it, to undo it."""
    args = ["--state", "reset"]
    args += ["--extract", extract] if extract is not None else []
    args += ["--to", to] if to is not None else []
    args += ["--load", load] if load is not None else []
    code = _submit(file, env, master, out, args)
    if code:
        raise typer.Exit(code)


@app.command(name="submit-spec")
def submit_spec(
    file: Annotated[Path, typer.Argument(help="The definition to compile and describe.")],
    env: Annotated[
        str, typer.Option(help="Environment: <environments folder>/<env>.json.")
    ] = "local",
    master: Annotated[str, typer.Option(help="Spark master URL, e.g. yarn.")] = "local[2]",
    deploy_mode: Annotated[
        str, typer.Option("--deploy-mode", help="client or cluster (where the driver runs).")
    ] = "client",
    out: OutDir = None,
) -> None:
    """Print the spark-submit of a definition's driver as JSON, for an orchestrator.

    Compiles the definition, then runs its submit script against a stand-in for spark-submit
    and prints what it was handed: application, application_args, name, master, deploy_mode,
    jars, py_files, files, packages, conf, options (the other spark-submit options) and argv
    (the whole command). Airflow's SparkSubmitOperator, an EMR step or a Dataproc/Databricks
    job takes these fields. Paths are this machine's, as the submit script's are.
    """
    project = _project()
    out = Path(os.path.abspath(out or project.generated))
    _compile([file], out, lambda line: typer.echo(line, err=True))
    result = check_file(file, default_options(file, project))
    assert result.plan is not None
    script = out / f"{result.plan.name}.submit.sh"
    with tempfile.TemporaryDirectory(prefix="etlc-submit-spec-") as work:
        record, stand_in = Path(work) / "argv", Path(work) / "spark-submit"
        stand_in.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ETLC_SPEC_RECORD"\n')
        stand_in.chmod(0o700)
        environ = local_submit_env(master, env)
        environ.update(SPARK_SUBMIT=str(stand_in), ETLC_SPEC_RECORD=str(record))
        command = ["bash", str(script), "--deploy-mode", deploy_mode, "--", "--env", env]
        done = subprocess.run(
            command, env=environ, cwd=project.root, capture_output=True, text=True, check=False
        )
        if done.stderr:  # the script's own message (`etlc: ...`) when it refuses
            typer.echo(done.stderr.rstrip("\n"), err=True)
        if done.returncode or not record.exists():
            raise typer.Exit(done.returncode or 1)
        argv = record.read_text(encoding="utf-8").split("\0")[:-1]
    typer.echo(json.dumps(spark_submit.spec(argv), indent=2))


def local_submit_env(master: str, env: str) -> dict[str, str]:
    """spark-submit from the pyspark next to this interpreter, running drivers with it too."""
    bin_dir = Path(sys.executable).parent
    environ = dict(os.environ, SPARK_MASTER=master, ETLC_ENV=env)
    if master.startswith("local"):
        # Nothing of a local run talks to another machine: on loopback its ports (the UI's
        # too) stay off the network, and Spark does not warn that the host name is loopback.
        environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    environ.setdefault("PYSPARK_PYTHON", sys.executable)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    spec = importlib.util.find_spec("pyspark")  # locates pyspark without importing it
    if "SPARK_HOME" not in environ and spec and spec.submodule_search_locations:
        environ["SPARK_HOME"] = spec.submodule_search_locations[0]
    if "SPARK_SUBMIT" not in environ and (bin_dir / "spark-submit").exists():
        environ["SPARK_SUBMIT"] = str(bin_dir / "spark-submit")
    return environ


@app.command()
def init(
    folder: Annotated[
        Path, typer.Argument(help="The project's folder, created if missing.")
    ] = Path("."),
) -> None:
    """Create an etlc project in FOLDER (default: here) with an example pipeline.

    It holds etlc.toml, pipelines/example.json with its Avro schema and sample data, a `local`
    environment, a .gitignore and a README. Files that exist are kept as they are, never
    overwritten; a folder that is a project already is refused. Then: `etlc jars`,
    `etlc lint`, `etlc run pipelines/example.json`.
    """
    try:
        done = init_project(folder)
    except (ProjectError, OutputError) as exc:
        raise _fail(printable(str(exc))) from None
    for name in done.created:
        typer.echo(f"created {_shown(name)}")
    for name in done.kept:
        typer.echo(f"kept    {_shown(name)} (it exists; left as it was)")
    where = _shown(_near(done.root))
    typer.echo(f"\nnext: cd {where} && etlc jars && etlc lint && etlc run pipelines/example.json")


@app.command()
def ddl(
    file: Annotated[Path, typer.Argument(help="The definition whose tables to print.")],
) -> None:
    """Print CREATE TABLE for each PostgreSQL or MySQL load's target, in its dialect.

    Columns and types come from the load input's Avro-derived schema (decimals with their
    precision and scale, timestamps as UTC wall-clock TIMESTAMP(6)/DATETIME(6), enums as text
    with a CHECK, NOT NULL where the schema says so); an upsert's `keys` are the primary key.
    Nothing connects to a database: review the script, then apply it, e.g.
    `etlc ddl pipelines/x.json | psql ...` or `| mysql ...`.
    """
    result = check_file(file, default_options(file, _project()))
    if result.plan is None:
        raise typer.Exit(_report([result], "text"))
    try:
        script = table_ddl.render(result.plan, table_ddl.table_ddl(result.plan))
    except table_ddl.DdlError as exc:
        raise _fail(f"{_shown(file)}: {exc}") from None
    typer.echo(script, nl=False)


schema_app = typer.Typer(
    help="Avro schemas (.avsc) for definitions: `etlc schema infer` writes one from sample data.",
    no_args_is_help=True,
)
app.add_typer(schema_app, name="schema")


@schema_app.command("infer")
def schema_infer_command(
    sample: Annotated[
        Path,
        typer.Argument(
            help="A CSV file with a header, a JSON-lines, Avro or Parquet file, or a folder "
            "of them."
        ),
    ],
    *,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="csv, json, avro or parquet. Default: from the files' suffix."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="The record's name. Default: from the file's name.")
    ] = None,
    namespace: Annotated[str, typer.Option(help="The record's namespace.")] = "",
    rows: Annotated[int, typer.Option(help="Records read at most.", min=1)] = 10_000,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the schema here (never over a file). Default: stdout."
        ),
    ] = None,
) -> None:
    """Write an Avro schema from sample data: the narrowest type every value of a column takes
    (boolean, long, a decimal with the values' scale, double, ISO-8601 timestamp or date, an enum
    of few repeating names, string), nullable where a value is missing; Avro and Parquet files
    give the columns they declare. No Spark, no Java. Review it before use: a sample shows what
    is, not what may come."""
    record = name or _record_name(sample)
    try:
        chosen = fmt or schema_infer.sample_format(sample)
        doc = schema_infer.infer(sample, chosen, record, namespace=namespace, max_rows=rows)
    except (schema_infer.InferError, OSError, UnicodeDecodeError, AvroSchemaError) as exc:
        raise _fail(_shown(exc)) from None
    text = json.dumps(doc, indent=2) + "\n"
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        with out.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise _fail(f"{_shown(out)} exists; etlc schema infer never overwrites a file") from None
    except OSError as exc:
        raise _fail(f"cannot write {_shown(out)}: {_shown(exc.strerror)}") from None
    typer.echo(f"{_shown(sample)} -> {_shown(out)}", err=True)


def _record_name(sample: Path) -> str:
    words = re.findall(r"[A-Za-z0-9]+", sample.stem if sample.is_file() else sample.name)
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Record"
    return name if name[0].isalpha() else f"Record{name}"


@app.command()
def explain(
    file: Annotated[Path, typer.Argument(help="The definition to explain.")],
    fmt: Annotated[
        ExplainFormat,
        typer.Option(
            "--format",
            help="text (steps, targets, keys and columns), json (the same as data), dot "
            "(Graphviz: `| dot -Tsvg > dag.svg`), mermaid (a flowchart for Markdown) or html "
            "(one self-contained page: `> dag.html`).",
        ),
    ] = ExplainFormat.TEXT,
    lineage: Annotated[
        str | None,
        typer.Option(
            "--lineage",
            metavar="COLUMN",
            help="Where a column comes from instead: <step>.<column>, or a column a load "
            "writes; each origin with the steps between (text or json), or its column graph "
            "(dot or mermaid).",
        ),
    ] = None,
    columns: Annotated[
        bool,
        typer.Option(
            "--columns",
            help="dot or mermaid: draw the column edges of every column the loads write "
            "(a box per step, an edge per column it comes from) instead of the steps. The "
            "html page always ends with them.",
        ),
    ] = False,
) -> None:
    """Print the pipeline's DAG in run order: each step with what it reads, writes or decides,
    and each dataset's Avro-derived schema; or, with --lineage, one column's lineage."""
    result = check_file(file, default_options(file, _project()))
    if result.plan is None:
        raise typer.Exit(_report([result], "text"))
    if columns and fmt.value not in ("dot", "mermaid"):
        raise _fail(f"--columns draws dot or mermaid, not {fmt.value}")
    if lineage is None:
        typer.echo(explain_plan.render(fmt.value, result.plan, columns=columns))
        return
    try:
        if fmt.value == "json":
            typer.echo(json.dumps(explain_lineage.as_json(result.plan, lineage), indent=2))
        elif fmt.value in ("dot", "mermaid"):
            typer.echo(explain_plan.column_dag(fmt.value, result.plan, lineage))
        elif fmt.value == "text":
            typer.echo("\n".join(explain_lineage.text(result.plan, lineage)))
        else:
            raise _fail(f"--lineage prints text, json, dot or mermaid, not {fmt.value}")
    except explain_lineage.LineageError as exc:
        raise _fail(_shown(exc)) from None


@app.command()
def jars(
    dest: Annotated[
        Path | None,
        typer.Option(
            help="Folder the jars are copied into. Default: the project's `jars` folder.",
            show_default=False,
        ),
    ] = None,
    checksums: Annotated[
        Path | None,
        typer.Option(
            help="Pinned sha256 of every jar. Default: the pins etlc carries.",
            show_default=False,
        ),
    ] = None,
    spark_version: SparkVersion = None,
) -> None:
    """Fetch every connector jar (exact versions) and etlc's JVM module into --dest, for the
    Spark line the project compiles for (or --spark-version's).

    One Maven run fetches the jars --dest lacks (cached in ~/.m2); each jar is checked
    against its pinned sha256 before it is used, and one that does not match is removed.
    """
    from etlc.dsl.resources import jar_checksums_path

    def say(line: str) -> None:
        typer.echo(printable(line))

    project = _project(spark_version)
    if dest is None:
        # Asked for by no one: a `jars` link committed to the checkout would have the jars
        # written wherever it points (--dest names such a folder on purpose).
        if project.leaves(project.jars):
            raise _fail(
                f"{_shown(_near(project.jars))}: the project's jars folder is, or lies in, a "
                "symbolic link that leaves the project; remove it, or name a folder with --dest"
            )
        dest = _near(project.jars)
    pins = checksums or jar_checksums_path()
    target = spark_target(project.spark_version)
    found = _fetch_jars(target, dest, pins, say)
    say(
        f"{len(found)} jars for {target.shown} (Scala {target.scala}) in {dest}, each checked "
        f"against {pins}"
    )


def _fetch_jars(
    target: SparkTarget, dest: Path, pins: Path, say: Callable[[str], None]
) -> list[Path]:
    """The line's connector jars, then etlc's JVM module for its Scala, each checked."""
    from etlc.dsl.resources import jvm_jar_path
    from etlc.jars import (
        JarResolutionError,
        all_artifacts,
        install_jvm_jar,
        read_checksums,
        resolve,
    )

    try:
        if not pins.is_file():
            raise JarResolutionError(f"{pins}: no such checksums file")
        sums = read_checksums(pins)
        found = resolve(all_artifacts(target), dest, sums, progress=say)
        jar = install_jvm_jar(
            jvm_jar_path(target), dest, sums, progress=say, name=target.jvm_jar(etlc.__version__)
        )
    except JarResolutionError as exc:
        raise _fail(_shown(exc)) from None
    except OSError as exc:
        raise _fail(f"{_shown(exc.filename or dest)}: {exc.strerror}") from None
    return [*found, jar]


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="How many orders to generate.")] = 100_000,
    master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[2]",
) -> None:
    """Generate demo data, compile and run pipelines/orders_by_country.json, check the output.

    Runs on local files and local Spark (no servers). The expected result is computed in
    plain Python from the generated data and compared row by row with what Spark wrote.
    """
    from etlc import demo as demo_data

    data = demo_data.generate(orders=orders)
    demo_data.write(data, Path("data/demo"))
    typer.echo(f"generated {len(data.orders)} orders, {len(data.customers)} customers in data/demo")
    try:
        run(Path("pipelines/orders_by_country.json"), env="local", master=master)
    except typer.Exit as exc:
        if exc.exit_code:
            typer.echo(f"demo: the driver failed with exit code {exc.exit_code}", err=True)
            raise
    expected = demo_data.expected_by_country(data)
    actual = demo_data.read_by_country(Path("out/demo/orders_by_country"))
    typer.echo(f"{'country':<8} {'orders':>8} {'customers':>9} {'revenue':>14} {'with VAT':>14}")
    for country, row in actual.items():
        typer.echo(
            f"{country:<8} {row['orders']:>8} {row['customers']:>9} "
            f"{row['revenue']:>14} {row['revenue_with_vat']:>14}"
        )
    if actual != expected:
        typer.echo("demo: FAILED - the output differs from the expected result", err=True)
        raise typer.Exit(1)
    typer.echo(f"demo: OK - {len(actual)} rows equal the expected result")


def main() -> None:  # pragma: no cover - the console script calls app() directly
    app()
