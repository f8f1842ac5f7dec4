"""`etlc test`'s compiler side without Spark: what it prepares and submits, the report, the
JUnit XML and the exit code, with a stand-in for spark-submit that writes the outcomes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.dsl.pipeline_tests import check_test_file
from etlc.pipeline_test_spec import Outcome, TestRun
from etlc.pipeline_testing import TestRunError, command, junit, prepare, run_tests
from etlc.project import Project

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "pipelines"
PROJECT = Project.at(ROOT)

# Records its arguments, then writes the outcomes the test put in $ETLC_FAKE_OUTCOMES.
STAND_IN = """#!/bin/sh
printf '%s\\n' "$@" > "$ETLC_FAKE_ARGS"
for last; do :; done
cp "$ETLC_FAKE_OUTCOMES" "$last"
"""


def _checks() -> list:
    return [check_test_file(f, PROJECT) for f in sorted(EXAMPLES.glob("*.test.json"))]


def _stand_in(tmp_path: Path, outcomes: list[Outcome]) -> dict[str, str]:
    script = tmp_path / "spark-submit"
    script.write_text(STAND_IN)
    script.chmod(0o700)
    file = tmp_path / "outcomes.json"
    from etlc.pipeline_test_spec import write_outcomes

    write_outcomes(outcomes, file)
    return dict(
        os.environ,
        SPARK_SUBMIT=str(script),
        ETLC_FAKE_ARGS=str(tmp_path / "args"),
        ETLC_FAKE_OUTCOMES=str(file),
    )


def test_prepare_writes_every_extracts_rows_and_the_spec_reads_back(tmp_path: Path) -> None:
    prepared = prepare(_checks(), PROJECT, tmp_path)
    written = {o.path.relative_to(tmp_path).as_posix(): o.content for o in prepared.outputs}
    # customers.csv, named by two tests, is copied once.
    assert [n for n in written if n.startswith("files/")] == ["files/0.csv"]
    assert written["files/0.csv"] == (EXAMPLES / "customers.csv").read_bytes()
    demo = prepared.run.files[1]
    assert {g.path for t in demo.tests for g in t.given if g.extract == "customers"} == {
        str(tmp_path / "files" / "0.csv")
    }
    assert written["inputs/0/0/given_orders.json"].count(b"\n") == 5
    # Each definition is compiled into a folder of its own.
    assert "generated/1/orders_by_country.py" in written
    assert demo.driver == str(tmp_path / "generated" / "1" / "orders_by_country.py")
    assert [p.name for p in prepared.plans] == [
        "order_revenue_stream",
        "orders_by_country",
        "orders_quality",
    ]
    prepared.run.write(tmp_path / "run.json")
    assert TestRun.read(tmp_path / "run.json") == prepared.run


def test_the_command_ships_only_the_jars_the_steps_need(tmp_path: Path) -> None:
    prepared = prepare(_checks()[1:2], PROJECT, tmp_path)
    argv = command(prepared, PROJECT, tmp_path, "spark-submit")
    jars = argv[argv.index("--jars") + 1].split(",")
    assert [Path(j).name for j in jars] == [
        "etlc-jvm-0.1.0.jar",
        "org.apache.spark.spark-avro_2.13-4.2.0.jar",
    ]
    assert argv[-3:] == [
        str(tmp_path / n) for n in ("etlc_test_runner.py", "run.json", "outcomes.json")
    ]
    empty = Project.at(tmp_path)
    with pytest.raises(TestRunError, match="run `etlc jars` in the project"):
        command(prepared, empty, tmp_path, "spark-submit")


def test_a_failure_is_reported_exit_1_in_junit_and_its_folder_kept(tmp_path: Path) -> None:
    outcomes = [
        Outcome("a.test.json", "ok", True, seconds=1.5),
        Outcome("a.test.json", "off", False, ("d: row k=1 differs in v: expected 1, got 2",)),
        Outcome("b.test.json", "broke", False, ("the pipeline failed: x",), error=True),
    ]
    lines: list[str] = []
    xml = tmp_path / "junit.xml"
    code = run_tests(_checks(), PROJECT, _stand_in(tmp_path, outcomes), lines.append, xml)
    assert code == 1
    assert lines[:5] == [
        "PASS a.test.json::ok (1.5 s)",
        "FAIL a.test.json::off (0.0 s)",
        "    d: row k=1 differs in v: expected 1, got 2",
        "ERROR b.test.json::broke (0.0 s)",
        "    the pipeline failed: x",
    ]
    assert lines[5] == "3 test(s) in 2 file(s): 1 passed, 2 failed"
    kept = Path(lines[6].removeprefix("the runs' logs are under "))
    assert (kept / "run.json").is_file()
    shutil.rmtree(kept)
    suites = ET.parse(xml).getroot()
    assert [
        (s.get("name"), s.get("tests"), s.get("failures"), s.get("errors")) for s in suites
    ] == [
        ("a.test.json", "2", "1", "0"),
        ("b.test.json", "1", "0", "1"),
    ]
    failure = suites[0][1].find("failure")
    assert failure is not None and failure.get("message", "").startswith("d: row k=1")


def test_all_passing_exits_0_and_leaves_nothing_behind(tmp_path: Path) -> None:
    environ = _stand_in(tmp_path, [Outcome("a.test.json", "ok", True)])
    before = set(Path(tempfile.gettempdir()).glob("etlc-test-*"))
    assert run_tests(_checks(), PROJECT, environ, lambda _: None) == 0
    assert set(Path(tempfile.gettempdir()).glob("etlc-test-*")) == before
    args = Path(environ["ETLC_FAKE_ARGS"]).read_text().splitlines()
    assert args[:4] == ["--master", "local[2]", "--name", "etlc:test"]


def test_a_runner_that_fails_names_its_output(tmp_path: Path) -> None:
    environ = dict(os.environ, SPARK_SUBMIT="false")
    with pytest.raises(TestRunError, match="the test runner failed") as err:
        run_tests(_checks(), PROJECT, environ, lambda _: None)
    shutil.rmtree(str(err.value).split(" is in ")[-1].rsplit("/", 1)[0], ignore_errors=True)


def test_no_spark_submit_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    environ = dict(os.environ, SPARK_SUBMIT=str(tmp_path / "missing"))
    before = set(Path(tempfile.gettempdir()).glob("etlc-test-*"))
    with pytest.raises(TestRunError, match=r"cannot start .*missing: No such file"):
        run_tests(_checks(), PROJECT, environ, lambda _: None)
    assert set(Path(tempfile.gettempdir()).glob("etlc-test-*")) == before


def test_junit_escapes_what_the_outcomes_hold() -> None:
    xml = junit([Outcome('x"<&>\x01.test.json', "t", False, ("a <b> & 'c'\x1b[31m", "d"))])
    root = ET.fromstring(xml)  # well-formed: no raw control character
    assert root[0].get("name") == 'x"<&>\\x01.test.json'
    assert root[0][0][0].text == "a <b> & 'c'\\x1b[31m\nd"


def test_the_cli_shows_a_test_files_errors_and_runs_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.test.json"
    bad.write_text(
        json.dumps(
            {
                "pipeline": "orders_by_country.json",
                "tests": [{"name": "t", "given": {"x": {"rows": []}}}],
            }
        )
    )
    result = CliRunner().invoke(app, ["test", str(bad)])
    assert result.exit_code == 1
    assert "error[E701]: no extract `x` in `orders_by_country`" in result.output
    assert (
        "0 definition(s), 1 test file(s) and 0 environment file(s) checked: 1 error(s)"
        in result.output
    )
    none = CliRunner().invoke(app, ["test", str(ROOT / "pipelines" / "orders_by_country.json")])
    assert none.exit_code == 1
    assert "no test files" in none.output


def test_lint_checks_the_projects_test_files_by_default() -> None:
    result = CliRunner().invoke(app, ["lint"])
    assert result.exit_code == 0
    assert ", 3 test file(s) and 1 environment file(s) checked: 0 error(s)" in result.output
