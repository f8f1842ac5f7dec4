"""The ``etlc`` command line: lint, compile, run, explain, jars.

The compiler side only: nothing here imports pyspark or starts a JVM (``run`` hands the
compiled driver to spark-submit in a separate process).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from etlc.codegen.literals import RenderError
from etlc.codegen.output import Output, OutputError, write
from etlc.codegen.render import render
from etlc.dsl.checker import CheckResult, check_file
from etlc.dsl.diagnostics import render as render_diagnostic
from etlc.dsl.diagnostics import shown_path
from etlc.printable import printable
from etlc.vault.cli import app as vault_app

app = typer.Typer(
    name="etlc",
    help="Compile declarative ETL pipeline definitions (JSON or YAML) into PySpark drivers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(vault_app, name="vault")

Files = Annotated[
    list[Path],
    typer.Argument(
        help="Definition files (*.json, *.yaml) or folders holding them.", show_default=False
    ),
]
OutDir = Annotated[
    Path, typer.Option("--out", "-o", help="Where drivers and submit commands are written.")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    """A user's mistake: one line on stderr, no traceback."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _shown(path: object) -> str:
    """A path or name from the user, safe on a terminal or in a CI log (see diagnostics)."""
    return printable(str(path))


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            try:
                found = [q for q in p.iterdir() if q.suffix in (".json", ".yaml", ".yml")]
            except OSError as exc:
                raise _fail(f"{_shown(p)}: cannot list the folder: {exc.strerror}") from None
            if not found:  # a CI step must not pass for having checked nothing
                raise _fail(f"{_shown(p)}: the folder holds no definitions (*.json, *.yaml)")
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


# Diagnostics shown per file in text form: past this many, more of them help nobody read the
# first ones, and a hostile file could make the log gigabytes long.
MAX_SHOWN = 200


def _report(results: list[CheckResult], fmt: str) -> int:
    errors = sum(1 for r in results for d in r.diagnostics if d.is_error)
    warnings = sum(1 for r in results for d in r.diagnostics if not d.is_error)
    if fmt == "json":
        rows = [
            {
                "file": d.span.file,
                "line": d.span.line,
                "col": d.span.col,
                "end_line": d.span.end_line,
                "end_col": d.span.end_col,
                "severity": d.severity.value,
                "code": d.code,
                "message": d.message,
                "hint": d.hint,
            }
            for r in results
            for d in r.diagnostics
        ]
        typer.echo(json.dumps(rows, indent=2))
    else:
        for r in results:
            for d in r.diagnostics[:MAX_SHOWN]:
                typer.echo(render_diagnostic(d, r.source), err=True)
                typer.echo("", err=True)
            if len(r.diagnostics) > MAX_SHOWN:
                typer.echo(
                    f"{shown_path(r.file)}: {len(r.diagnostics) - MAX_SHOWN} more diagnostic(s) "
                    "not shown (`--format json` lists every one)\n",
                    err=True,
                )
        typer.echo(
            f"{len(results)} file(s) checked: {errors} error(s), {warnings} warning(s)", err=True
        )
    return 1 if errors else 0


@app.command()
def lint(
    files: Files,
    fmt: Annotated[str, typer.Option("--format", help="text (compiler style) or json.")] = "text",
) -> None:
    """Check definitions without Spark or Java: shape, graph, schemas, types, capabilities.

    Every problem of a file is reported in one run as `file:line:col: error[CODE]: message`
    with the offending text underlined and a fix hint. Exit code 1 when any error is found.
    """
    results = [check_file(p) for p in _expand(files)]
    raise typer.Exit(_report(results, fmt))


@app.command(name="compile")
def compile_(files: Files, out: OutDir = Path("generated")) -> None:
    """Lint, then write generated/<name>.py and generated/<name>.submit.sh for each definition.

    The driver is standalone PySpark importing only the etlc runtime; the .submit.sh beside it
    is the exact spark-submit command (jars or --packages, --py-files, conf). Recompiling an
    unchanged definition rewrites nothing (byte-identical output).
    """
    results = [check_file(p) for p in _expand(files)]
    code = _report(results, "text")
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
            rendered.append((r, render(r.plan, out)))
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
        typer.echo(f"{shown_path(r.file)} -> {_shown(outputs[0].path)} ({state})")


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The definition to compile and run.")],
    env: Annotated[str, typer.Option(help="Environment: pipelines/env/<env>.json.")] = "local",
    master: Annotated[str, typer.Option(help="Spark master URL.")] = "local[2]",
    out: OutDir = Path("generated"),
) -> None:
    """Compile one definition and submit its driver with spark-submit (default: local[2]).

    Needs pyspark and the resolved jars (`etlc jars`). The exit code is the driver's:
    0 success, 1 failed, 2 records failed validation, 3 partial.
    """
    compile_([file], out)
    result = check_file(file)
    assert result.plan is not None
    submit = out / f"{result.plan.name}.submit.sh"
    code = subprocess.call(["bash", str(submit)], env=local_submit_env(master, env))
    if code:
        raise typer.Exit(code)


def local_submit_env(master: str, env: str) -> dict[str, str]:
    """spark-submit from the pyspark next to this interpreter, running drivers with it too."""
    bin_dir = Path(sys.executable).parent
    environ = dict(os.environ, SPARK_MASTER=master, ETLC_ENV=env)
    environ.setdefault("PYSPARK_PYTHON", sys.executable)
    environ["PATH"] = f"{bin_dir}{os.pathsep}{environ.get('PATH', '')}"
    spec = importlib.util.find_spec("pyspark")  # locates pyspark without importing it
    if "SPARK_HOME" not in environ and spec and spec.submodule_search_locations:
        environ["SPARK_HOME"] = spec.submodule_search_locations[0]
    if "SPARK_SUBMIT" not in environ and (bin_dir / "spark-submit").exists():
        environ["SPARK_SUBMIT"] = str(bin_dir / "spark-submit")
    return environ


@app.command()
def explain(file: Annotated[Path, typer.Argument(help="The definition to explain.")]) -> None:
    """Print the pipeline's DAG in run order with each dataset's Avro-derived schema."""
    result = check_file(file)
    if result.plan is None:
        raise typer.Exit(_report([result], "text"))
    plan = result.plan
    # Names, fields and rules come from the definition and its schemas: shown escaped.
    lines = [
        f"pipeline {plan.name} ({plan.mode}), retries: {plan.max_retries} x {plan.delay_seconds:g}s"
    ]
    for step in plan.steps:
        arrow = f" <- {', '.join(step.inputs)}" if step.inputs else ""
        mode = f" [{step.mode}]" if step.mode else ""
        lines += ["", f"{step.role} {step.id}: {step.type}{mode}{arrow}"]
        if step.role == "load":
            continue
        lines.extend(f"    {f.name}: {f.type.describe()}" for f in step.schema.fields)
        lines.extend(f"    check {name}" for name, _ in step.rules)
    lines += ["", "jars: " + ", ".join(a.coordinate for a in plan.artifacts)]
    for line in lines:
        typer.echo(printable(line))


@app.command()
def jars(
    dest: Annotated[Path, typer.Option(help="Folder the jars are copied into.")] = Path("jars"),
    checksums: Annotated[Path, typer.Option(help="Pinned sha256 of every jar.")] = Path(
        "jvm/jars.sha256"
    ),
) -> None:
    """Resolve every connector jar (exact versions) from Maven into --dest and verify it."""
    from etlc.jars import JarResolutionError, all_artifacts, read_checksums, resolve

    try:
        paths = resolve(all_artifacts(), dest, read_checksums(checksums))
    except JarResolutionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for p in paths:
        typer.echo(str(p))


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
