"""Hostile text in a definition reaches generated code only as inert data.

Each test renders a driver and a submit command for a clean definition and for the same
definition with hostile text in its string fields (and file name, and output folder), and
compares them: the Python must have exactly the clean statement structure with the hostile text
only inside string literals, and the submit command, run against a stand-in spark-submit, must
run exactly the clean commands and pass every value through as one exact argument.

Values the checker admits go through the real checker (``check_file`` then ``render``); values
it refuses (names, ids, NUL, lone surrogates) are put into a checked plan directly, since
codegen must stay safe, or refuse with ``RenderError``, even if a check has a gap.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import os
import shutil
import stat
import subprocess
import tokenize
from pathlib import Path
from typing import Any

import pytest

from etlc.codegen.literals import RenderError
from etlc.codegen.render import LOG_CONFIG_NAME, jvm_jar_name, render, runtime_zip_name
from etlc.dsl.checker import check_file
from etlc.dsl.lineage import ColumnSource, StepLineage
from etlc.dsl.plan import Plan, PlannedStep
from etlc.plugins import MavenArtifact

ROOT = Path(__file__).resolve().parents[3]
MARK = "PWNED"  # every payload below that runs would create a file of this name

# Hostile text, each piece aimed at one way out of a string, docstring, comment or word.
PYTHON_BREAKOUTS = [
    f'"""; __import__("os").system("touch {MARK}"); """',
    f"'''; __import__('os').system('touch {MARK}'); '''",
    f'"; __import__("os").system("touch {MARK}"); "',
    f"'); __import__('os').system('touch {MARK}'); ('",
    f"\n__import__('os').system('touch {MARK}')\n",
    f"\r__import__('os').system('touch {MARK}')\r",
    f"\u2028__import__('os').system('touch {MARK}')\u2029",
    f"\x85\x0b\x0c__import__('os').system('touch {MARK}')",
    "trailing backslash\\",
    "\\",
    "\\N{BULLET} \\x41 \\u2028",
]
SHELL_BREAKOUTS = [
    f"$(touch {MARK})",
    f"`touch {MARK}`",
    f"; touch {MARK};",
    f"&& touch {MARK} #",
    f"| touch {MARK}",
    f"'; touch {MARK}; '",
    f'"; touch {MARK}; "',
    f"\ntouch {MARK}\n",
    f"# \n touch {MARK}",
    "~root/*",
]
# `${...}` is a variable reference to the checker (and an unknown one here), so these only go
# in directly, as the text of an environment string.
VARIABLE_LIKE = [f"${{IFS}}touch${{IFS}}{MARK}", "${data_dir$(touch PWNED)}"]
TERMINAL = ["\x1b[2J\x1b]0;title\x07", "\u202eevil", "::error file=x::forged"]
# What no JSON/YAML string the parser accepts can hold: only reachable by a checker gap.
UNREPRESENTABLE = ["nul\x00byte", "lone\ud800surrogate"]

ADMITTED = PYTHON_BREAKOUTS + SHELL_BREAKOUTS + TERMINAL
SHELL_SAFE = ADMITTED + VARIABLE_LIKE
EVERYTHING = SHELL_SAFE + UNREPRESENTABLE
ALL_IN_ONE = "".join(ADMITTED)


# --- the Python side ------------------------------------------------------------------------


class _BlankStrings(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, str):
            return ast.Constant("")
        return node


def python_shape(source: bytes) -> str:
    """The driver's syntax tree with every string constant blanked: what it *does*."""
    return ast.dump(_BlankStrings().visit(ast.parse(source)))


def code_outside_strings(source: bytes) -> str:
    """Every token of the driver that is not inside a string literal, joined."""
    tokens = tokenize.tokenize(io.BytesIO(source).readline)
    return " ".join(t.string for t in tokens if t.type != tokenize.STRING)


def assert_inert_driver(hostile: bytes, clean: bytes) -> None:
    hostile.decode("utf-8")  # always encodable, always decodable
    assert python_shape(hostile) == python_shape(clean)
    outside = code_outside_strings(hostile)
    for word in (MARK, "__import__", "system", "touch"):
        assert word not in outside, f"{word} outside a string literal"
    assert all(ch.isprintable() or ch == "\n" for ch in hostile.decode())


# --- the shell side -------------------------------------------------------------------------


# The environment file's Spark settings reach spark-submit as --conf (a secret-named one not).
ENV_SPARK = {"spark.executor.memory": "1g", "spark.hadoop.fs.s3a.secret.key": "not-on-the-line"}


def run_submit(script: Path, tmp: Path, packages: bool) -> tuple[list[str], list[str]]:
    """Run a submit command against a stand-in spark-submit that records its arguments.

    Returns the arguments and the commands bash ran (from its xtrace), so an extra command,
    a split or merged argument, or an expansion all show up.
    """
    jars = tmp / "jars"
    jars.mkdir(exist_ok=True)
    (jars / jvm_jar_name()).write_bytes(b"")
    record = tmp / "argv"
    stub = tmp / "spark-submit"
    stub.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$RECORD"\n')
    stub.chmod(0o755)
    work = tmp / "cwd"
    work.mkdir(exist_ok=True)
    env_file = tmp / "env.json"
    env_file.write_text(json.dumps({"spark": ENV_SPARK}), encoding="utf-8")
    done = subprocess.run(
        ["bash", "-x", str(script), "driver-arg"],
        cwd=work,
        env={
            "PATH": "/usr/bin:/bin",
            "ETLC_JARS_DIR": str(jars),
            "ETLC_USE_PACKAGES": "1" if packages else "0",
            "SPARK_SUBMIT": str(stub),
            "RECORD": str(record),
            "ETLC_ENV_FILE": str(env_file),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert not (work / MARK).exists() and not (tmp / MARK).exists(), "a payload ran"
    argv = record.read_bytes().decode("utf-8", "surrogateescape").split("\0")[:-1]
    ran = [
        line.lstrip("+ ").split(" ", 1)[0].split("=", 1)[0]
        for line in done.stderr.splitlines()
        if line.startswith("+")
    ]
    return argv, ran


def expected_argv(plan: Plan, script: Path, tmp: Path, packages: bool) -> list[str]:
    here = str(script.parent)
    jars = str(tmp / "jars")
    from etlc.codegen.render import BASE_CONF

    if packages:
        deps = ["--jars", f"{jars}/{jvm_jar_name()}", "--packages"]
        deps.append(",".join(a.coordinate for a in plan.artifacts))
    else:
        names = [jvm_jar_name(), *(a.jar_name for a in plan.artifacts)]
        deps = ["--jars", ",".join(f"{jars}/{n}" for n in names)]
    conf = [x for c in (*BASE_CONF, *plan.spark_conf) for x in ("--conf", c)]
    jars_first = deps[:2]
    return [
        *("--master", "local[2]", "--name", f"etlc:{plan.name}"),
        *jars_first,
        *("--py-files", f"{here}/{runtime_zip_name()}"),
        *deps[2:],
        *conf,
        *("--conf", "spark.executor.memory=1g"),  # not the secret-named one
        f"{here}/{plan.name}.py",
        *("--env-file", str(tmp / "env.json"), "driver-arg"),
    ]


def write_outputs(plan: Plan, folder: Path, out_dir: Path | None = None) -> tuple[Path, Path]:
    """The driver and submit command of ``plan``, written plainly under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = render(plan, out_dir or folder)
    driver = folder / f"{plan.name}.py"
    submit = folder / f"{plan.name}.submit.sh"
    driver.write_bytes(outputs[0].content)
    submit.write_bytes(outputs[1].content)
    (folder / runtime_zip_name()).write_bytes(outputs[2].content)  # the submit command runs it
    (folder / LOG_CONFIG_NAME).write_bytes(outputs[3].content)
    submit.chmod(0o755)
    return driver, submit


def assert_inert_submit(plan: Plan, clean: Plan, tmp: Path) -> None:
    _, clean_submit = write_outputs(clean, tmp / "clean")
    _, submit = write_outputs(plan, tmp / "hostile")
    compare_submits(submit, plan, clean_submit, tmp)


def compare_submits(submit: Path, plan: Plan, clean_submit: Path, tmp: Path) -> None:
    syntax = subprocess.run(["bash", "-n", str(submit)], capture_output=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    for packages in (False, True):
        argv, ran = run_submit(submit, tmp, packages)
        _, clean_ran = run_submit(clean_submit, tmp, packages)
        assert ran == clean_ran, "the hostile submit command ran other commands"
        assert argv == expected_argv(plan, submit, tmp, packages)


# --- plans: through the checker, and poisoned directly --------------------------------------


def project(tmp: Path, file_name: str, text: str) -> Path:
    """A tiny project whose definition holds ``text`` in every field the checker leaves free."""
    (tmp / "schemas" / "avro").mkdir(parents=True)
    shutil.copy(ROOT / "schemas" / "avro" / "order.avsc", tmp / "schemas" / "avro")
    shutil.copytree(ROOT / "pipelines" / "env", tmp / "pipelines" / "env")
    definition = {
        "name": "hostile_strings",
        "extract": [
            {
                "id": "orders",
                "type": "files",
                "path": "${data_dir}/" + text + "/*.csv",
                "format": "csv",
                "schema": "order.avsc",
                "options": {
                    "header": True,
                    "delimiter": text,
                    # quote and escape are one character, encoding a charset name.
                    "null_value": text,
                    "date_format": text,
                    "timestamp_format": text,
                },
            }
        ],
        "transform": [{"id": "kept", "type": "filter", "input": "orders", "condition": "true"}],
        "load": [
            {
                "input": "kept",
                "type": "files",
                "path": "${out_dir}/" + text,
                "format": "parquet",
                "mode": "overwrite",
            }
        ],
    }
    path = tmp / "pipelines" / file_name
    path.write_text(json.dumps(definition), encoding="utf-8")
    return path


def checked_plan(tmp: Path, file_name: str, text: str) -> Plan:
    result = check_file(project(tmp, file_name, text))
    assert result.plan is not None, [(d.code, d.message) for d in result.diagnostics]
    return result.plan


def poison(value: Any, text: str) -> Any:
    """``value`` with every string in it replaced by ``text`` (keeping dict keys, which are
    keyword names the checker chose)."""
    if isinstance(value, str):
        return text
    if isinstance(value, tuple):
        return tuple(poison(v, text) for v in value)
    if isinstance(value, list):
        return [poison(v, text) for v in value]
    if isinstance(value, dict):
        return {k: poison(v, text) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: poison(getattr(value, f.name), text) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def poisoned_step(step: PlannedStep, text: str) -> PlannedStep:
    """Every string a step carries into the driver, except the names codegen checks."""
    return dataclasses.replace(
        step,
        args=tuple((k, poison(v, text)) for k, v in step.args),
        inputs=poison(step.inputs, text),
        rules=poison(step.rules, text),
        refresh=None if step.refresh is None else text,
        mode=text,
        recheck=poison(step.recheck, text),
        lineage=poisoned_lineage(step.lineage, text),
    )


def poisoned_lineage(lineage: StepLineage | None, text: str) -> StepLineage | None:
    """Every column name the lineage carries into the driver, prefixed with ``text`` the same
    way everywhere, so that names still flow from extract to load (step ids and how a column
    is used are checked names)."""
    if lineage is None:
        return None

    def column(s: ColumnSource) -> ColumnSource:
        return dataclasses.replace(s, column=text + s.column)

    return StepLineage(
        tuple((text + c, tuple(map(column, sources))) for c, sources in lineage.columns),
        tuple(map(column, lineage.rows)),
        lineage.known,
    )


def poisoned_plan(plan: Plan, text: str, shell_too: bool = True) -> Plan:
    plan = dataclasses.replace(
        plan,
        mode=text,
        source=f"/somewhere/{text}/{text}.json",
        steps=tuple(poisoned_step(s, text) for s in plan.steps),
    )
    if not shell_too:
        return plan
    return dataclasses.replace(
        plan,
        spark_conf=(f"spark.x={text}", text),
        artifacts=(*plan.artifacts, MavenArtifact(text, text, text)),
    )


@pytest.fixture(scope="module")
def example() -> Plan:
    """A checked plan with every kind of value a driver holds: connection profiles, variables,
    validation rules, recheck columns, and (set here, no example streams one) a refresh."""
    result = check_file(ROOT / "pipelines" / "customer_revenue.json")
    assert result.plan is not None
    plan = result.plan
    driver = render(plan, Path("generated"))[0].content
    assert b"env.connection(" in driver and b"env.interpolate(" in driver
    assert b"recheck=" in driver and b"rules=" in driver
    steps = tuple(
        dataclasses.replace(s, refresh="10 minutes") if s.role == "extract" else s
        for s in plan.steps
    )
    return dataclasses.replace(plan, steps=steps)


# --- tests ----------------------------------------------------------------------------------


def test_the_hostile_file_name_of_the_issue_is_inert(tmp_path: Path) -> None:
    name = 'x""";__import__("os").system("touch PWNED");""".json'
    clean = checked_plan(tmp_path / "clean", "clean.json", "data")
    plan = checked_plan(tmp_path / "hostile", name, "data")
    assert plan.source.endswith(name)
    driver, _ = write_outputs(plan, tmp_path / "gen")
    clean_driver, _ = write_outputs(clean, tmp_path / "gen_clean")
    assert_inert_driver(driver.read_bytes(), clean_driver.read_bytes())
    assert_inert_submit(plan, clean, tmp_path / "run")
    docstring = ast.get_docstring(ast.parse(driver.read_bytes()), clean=False)
    assert docstring is not None and f"pipelines/{name}. " in docstring  # shown, as text


@pytest.mark.parametrize("text", [*ADMITTED, ALL_IN_ONE], ids=repr)
def test_admitted_hostile_text_through_the_checker(text: str, tmp_path: Path) -> None:
    clean = checked_plan(tmp_path / "clean", "clean.json", "data")
    # The file name holds the text too, where a file system can: no "/" in a name.
    file_name = text.replace("/", "_")[:80] + ".json"
    plan = checked_plan(tmp_path / "hostile", file_name, text)
    out_dir = Path(f"out/{text}")  # -o is the user's, shown in the driver's docstring
    driver, _ = write_outputs(plan, tmp_path / "gen", out_dir)
    clean_driver, _ = write_outputs(clean, tmp_path / "gen_clean", Path("generated"))
    assert_inert_driver(driver.read_bytes(), clean_driver.read_bytes())
    # The hostile text really reached the driver, as data, in the fields it was put into.
    constants = {
        n.value
        for n in ast.walk(ast.parse(driver.read_bytes()))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    assert text in constants or any(text in c for c in constants)
    assert_inert_submit(plan, clean, tmp_path / "run")


@pytest.mark.parametrize("text", EVERYTHING, ids=repr)
def test_every_string_of_a_plan_renders_inert(text: str, example: Plan, tmp_path: Path) -> None:
    plan = poisoned_plan(example, text, shell_too=False)
    driver, _ = write_outputs(plan, tmp_path / "gen", Path(f"out/{text}"))
    clean_driver, _ = write_outputs(example, tmp_path / "clean")
    assert_inert_driver(driver.read_bytes(), clean_driver.read_bytes())
    tree = ast.parse(driver.read_bytes())
    values = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert values.count(text) >= len(plan.steps)  # the exact text, read back by Python


@pytest.mark.parametrize("text", SHELL_SAFE, ids=repr)
def test_every_string_of_the_submit_command_stays_one_argument(
    text: str, example: Plan, tmp_path: Path
) -> None:
    assert_inert_submit(poisoned_plan(example, text), example, tmp_path)


@pytest.mark.parametrize("text", UNREPRESENTABLE, ids=repr)
def test_a_shell_word_no_bash_can_hold_is_refused(text: str, example: Plan) -> None:
    with pytest.raises(RenderError):
        render(poisoned_plan(example, text), Path("generated"))


@pytest.mark.parametrize("text", [*EVERYTHING, "evil\n", "Upper", "9lives", "a-b", "x" * 64])
def test_a_pipeline_name_outside_its_pattern_is_an_internal_error(text: str, example: Plan) -> None:
    with pytest.raises(RenderError, match="pipeline name"):
        render(dataclasses.replace(example, name=text), Path("generated"))


@pytest.mark.parametrize("text", [*EVERYTHING, "evil\n", "a-b", "1st"])
def test_a_step_id_outside_its_pattern_is_an_internal_error(text: str, example: Plan) -> None:
    steps = (dataclasses.replace(example.steps[0], id=text), *example.steps[1:])
    with pytest.raises(RenderError, match="step id"):
        render(dataclasses.replace(example, steps=steps), Path("generated"))


@pytest.mark.parametrize("impl", ["etlc.connectors.kafka:os;x", "os.system('id') or x:y", "a:b\n"])
def test_an_implementation_path_must_be_python_names(impl: str, example: Plan) -> None:
    steps = (dataclasses.replace(example.steps[0], impl=impl), *example.steps[1:])
    with pytest.raises(RenderError, match="identifier"):
        render(dataclasses.replace(example, steps=steps), Path("generated"))


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_that_is_not_finite_is_never_a_name(number: float, example: Plan) -> None:
    with pytest.raises(RenderError, match="finite"):
        render(dataclasses.replace(example, delay_seconds=number), Path("generated"))


@pytest.mark.parametrize(
    ("line", "injected"),
    [
        ("set -euo pipefail\n", "set -euo pipefail\ntrue\n"),  # one more command
        ("--name etlc:customer_revenue", "--name etlc:customer revenue"),  # a split word
    ],
)
def test_the_submit_check_detects_an_injected_command(
    line: str, injected: str, example: Plan, tmp_path: Path
) -> None:
    """The shell comparison is not vacuous: a changed submit command fails it."""
    _, clean_submit = write_outputs(example, tmp_path / "clean")
    _, submit = write_outputs(example, tmp_path / "gen")
    text = submit.read_text()
    assert line in text
    submit.write_text(text.replace(line, injected))
    with pytest.raises(AssertionError):
        compare_submits(submit, example, clean_submit, tmp_path)


def test_the_driver_check_detects_an_injected_statement(example: Plan, tmp_path: Path) -> None:
    driver, _ = write_outputs(example, tmp_path / "gen")
    clean = driver.read_bytes()
    injected = clean.replace(b"\nPIPELINE = ", b"\nimport os\nPIPELINE = ", 1)
    with pytest.raises(AssertionError):
        assert_inert_driver(injected, clean)


def test_generated_files_are_plain_text(example: Plan, tmp_path: Path) -> None:
    driver, submit = write_outputs(poisoned_plan(example, ALL_IN_ONE), tmp_path / "gen")
    for path in (driver, submit):
        text = path.read_bytes().decode("utf-8")
        assert all(ch.isprintable() or ch == "\n" for ch in text), path.name
        assert stat.S_ISREG(os.stat(path).st_mode)
