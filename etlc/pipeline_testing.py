"""``etlc test``: pipeline unit tests, from the test files to the report.

The compiler side: it checks each test file (``etlc.dsl.pipeline_tests``), compiles the
pipeline it names into a fresh private folder, writes every given and expected row there, and
submits etlc's test runner (``etlc.testrun.runner``) once, with spark-submit on local Spark,
for every file: one JVM, one SparkSession. The runner reads only what was written here, runs
each test and writes its outcome; this side prints them, writes JUnit XML when asked, and
decides the exit code. Nothing here imports pyspark.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from etlc.codegen.output import Output, OutputError, write
from etlc.codegen.render import LOG_CONFIG_NAME, jvm_jar_name, log_config, render, runtime_zip
from etlc.dsl.pipeline_tests import TestFileCheck, json_lines
from etlc.dsl.plan import Plan
from etlc.pipeline_test_spec import (
    ExpectedCount,
    ExpectedRows,
    GivenInput,
    Outcome,
    TestCase,
    TestFile,
    TestRun,
    read_outcomes,
)
from etlc.printable import printable
from etlc.project import Project
from etlc.spark_targets import SparkTarget, line_of, spark_target
from etlc.vault.redaction import SPARK_REDACTION_CONF

Echo = Callable[[str], None]

# Fixed text: the application spark-submit runs is etlc's runner, never a file a test names.
RUNNER = "from etlc.testrun.runner import main\n\nraise SystemExit(main())\n"
# The drivers' runtime, and the runner with the types it reads: one zip, one `etlc` package.
TEST_RUNTIME = ("etlc/testrun", "etlc/pipeline_test_spec.py")
ZIP_NAME = "etlc-test-runtime.zip"
# Local Spark for a few rows: two shuffle partitions, no UI, times in UTC as every driver.
CONF = (
    "spark.sql.session.timeZone=UTC",
    "spark.ui.enabled=false",
    "spark.ui.showConsoleProgress=false",
    "spark.sql.shuffle.partitions=2",
    *(f"{key}={value}" for key, value in SPARK_REDACTION_CONF),
)


class TestRunError(Exception):
    """The tests could not be run at all (no jars, spark-submit failed): one line, and the
    last lines of what spark-submit printed, if it ran."""

    __test__ = False  # not a pytest test class

    def __init__(self, message: str, output: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.output = output


@dataclass(frozen=True)
class Prepared:
    run: TestRun
    outputs: list[Output]
    plans: list[Plan]


def prepare(checks: list[TestFileCheck], project: Project, work: Path) -> Prepared:
    """Every file the runner reads, under ``work``: drivers, given and expected rows. Each
    definition is compiled once, into a folder of its own (two definitions may share a
    pipeline name), and each given file is copied once, however many tests name it."""
    outputs: list[Output] = []
    drivers: dict[str, tuple[Path, Plan]] = {}
    copies: dict[Path, Path] = {}
    files: list[TestFile] = []
    for number, check in enumerate(checks):
        assert check.plan is not None and check.pipeline is not None
        plan = check.plan
        if check.pipeline.file not in drivers:
            generated = work / "generated" / str(len(drivers))
            drivers[check.pipeline.file] = (generated / f"{plan.name}.py", plan)
            outputs += render(plan, generated, project)
        cases: list[TestCase] = []
        for index, test in enumerate(check.tests):
            inputs = work / "inputs" / str(number) / str(index)
            given = {g.extract: g for g in test.given}
            givens: list[GivenInput] = []
            for extract in plan.by_role("extract"):
                g = given.get(extract.id)
                if g is not None and g.file is not None:
                    if g.file not in copies:
                        copies[g.file] = work / "files" / f"{len(copies)}.{g.format}"
                        outputs.append(Output(copies[g.file], g.data))
                    givens.append(GivenInput(extract.id, str(copies[g.file]), g.format))
                    continue
                path = inputs / f"given_{extract.id}.json"
                outputs.append(Output(path, json_lines(g.rows) if g is not None else b""))
                givens.append(GivenInput(extract.id, str(path), "json"))
            expected: list[ExpectedRows] = []
            for e in test.expected:
                path = inputs / f"expect_{e.dataset}.jsonl"
                outputs.append(Output(path, json_lines(e.rows)))
                expected.append(ExpectedRows(e.dataset, str(path), e.columns, e.key))
            counts = tuple(ExpectedCount(s, r, n) for s, r, n in test.counts)
            step, rules = test.halt or ("", ())
            halted = tuple(ExpectedCount(step, r, n) for r, n in rules)
            cases.append(TestCase(test.name, tuple(givens), tuple(expected), counts, step, halted))
        driver = str(drivers[check.pipeline.file][0])
        files.append(TestFile(check.file, plan.name, driver, tuple(cases)))
    run = TestRun(tuple(files), str(work / "runs"))
    return Prepared(run, outputs, [plan for _, plan in drivers.values()])


def _check_local_spark(target: SparkTarget) -> None:
    """The runner runs on the pyspark installed beside etlc: of the project's line, or its
    jars would not load."""
    try:
        installed = version("pyspark")
    except PackageNotFoundError:
        raise TestRunError("`etlc test` runs on a local pyspark: install etlc[spark]") from None
    if line_of(installed) != target.line:
        raise TestRunError(
            f"the project compiles for {target.shown} (`spark_version`), but the pyspark "
            f"installed here is {printable(installed)}: `etlc test` runs on it, so install "
            f"pyspark {target.line}.* beside etlc"
        )


def command(prepared: Prepared, project: Project, work: Path, spark_submit: str) -> list[str]:
    """The spark-submit of the runner: the jars every pipeline's steps need, no other."""
    target = spark_target(project.spark_version)
    _check_local_spark(target)
    names = [jvm_jar_name(target), *(a.jar_name for p in prepared.plans for a in p.artifacts)]
    jars = [project.jars / n for n in dict.fromkeys(names)]
    missing = [j for j in jars if not j.is_file()]
    if missing:
        raise TestRunError(
            f"{printable(str(missing[0]))} is missing: run `etlc jars` in the project"
        )
    conf = [*CONF, *dict.fromkeys(c for p in prepared.plans for c in p.spark_conf)]
    return [
        spark_submit,
        "--master",
        "local[2]",
        "--name",
        "etlc:test",
        "--jars",
        ",".join(str(j) for j in jars),
        "--py-files",
        str(work / ZIP_NAME),
        *(part for c in conf for part in ("--conf", c)),
        str(work / "etlc_test_runner.py"),
        str(work / "run.json"),
        str(work / "outcomes.json"),
    ]


def run_tests(
    checks: list[TestFileCheck],
    project: Project,
    environ: Mapping[str, str],
    echo: Echo,
    junit_xml: Path | None = None,
) -> int:
    """Run the checked tests; 0 when every one passed, 1 otherwise. The private folder is
    removed when all passed, kept (and named) when one did not, for its logs; raises
    TestRunError when the tests could not run (the folder kept only if the runner ran)."""
    work = Path(tempfile.mkdtemp(prefix="etlc-test-"))
    try:
        outcomes = _submitted(checks, project, environ, work)
    except TestRunError as exc:
        if not exc.output:
            shutil.rmtree(work, ignore_errors=True)
        raise
    except (OSError, OutputError) as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise TestRunError(f"the tests could not be run: {exc}") from None
    report(outcomes, echo)
    failed = any(not o.passed for o in outcomes)
    if failed:
        echo(f"the runs' logs are under {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    if junit_xml is not None:
        try:
            junit_xml.write_bytes(junit(outcomes))
        except OSError as exc:
            raise TestRunError(f"{junit_xml}: cannot write the JUnit XML: {exc.strerror}") from None
    return 1 if failed else 0


def _submitted(
    checks: list[TestFileCheck], project: Project, environ: Mapping[str, str], work: Path
) -> list[Outcome]:
    """The runner submitted on everything ``prepare`` wrote under ``work``; its outcomes."""
    prepared = prepare(checks, project, work)
    write(
        [
            *prepared.outputs,
            Output(work / "etlc_test_runner.py", RUNNER.encode()),
            Output(work / ZIP_NAME, runtime_zip(TEST_RUNTIME)),
            Output(work / LOG_CONFIG_NAME, log_config()),
        ]
    )
    prepared.run.write(work / "run.json")
    submit = command(prepared, project, work, environ.get("SPARK_SUBMIT", "spark-submit"))
    log = work / "spark-submit.log"
    env = dict(environ)
    # Spark's own lines at WARN, without the known harmless ones, as the drivers' (unless a
    # log4j configuration is chosen already).
    env.setdefault("LOG4J_CONFIGURATION_FILE", str(work / LOG_CONFIG_NAME))
    with open(log, "wb") as out:
        try:
            code = subprocess.call(
                submit, cwd=project.root, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        except OSError as exc:
            raise TestRunError(
                f"cannot start {submit[0]}: {exc.strerror}; install pyspark (etlc[spark])"
            ) from None
    outcomes_file = work / "outcomes.json"
    if code or not outcomes_file.is_file():
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        raise TestRunError(
            f"the test runner failed (exit {code}); its output is in {log}", tuple(tail) or ("",)
        )
    return read_outcomes(outcomes_file)


def report(outcomes: list[Outcome], echo: Echo) -> None:
    for o in outcomes:
        state = "PASS" if o.passed else ("ERROR" if o.error else "FAIL")
        echo(f"{state} {printable(o.file)}::{o.test} ({o.seconds:.1f} s)")
        for line in o.failures:
            echo(f"    {printable(line)}")
    passed = sum(1 for o in outcomes if o.passed)
    files = len({o.file for o in outcomes})
    echo(
        f"{len(outcomes)} test(s) in {files} file(s): {passed} passed, "
        f"{len(outcomes) - passed} failed"
    )


def junit(outcomes: list[Outcome]) -> bytes:
    """JUnit XML: a test suite per test file, a test case per test; a difference is a
    <failure>, a pipeline that did not run to the end an <error>."""
    root = ET.Element("testsuites", name="etlc test")
    by_file: dict[str, list[Outcome]] = {}
    for o in outcomes:
        # Printable: XML 1.0 has no way to hold a control character, even escaped.
        by_file.setdefault(printable(o.file), []).append(o)
    for file, cases in by_file.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=file,
            tests=str(len(cases)),
            failures=str(sum(1 for o in cases if not o.passed and not o.error)),
            errors=str(sum(1 for o in cases if o.error)),
            time=f"{sum(o.seconds for o in cases):.3f}",
        )
        for o in cases:
            case = ET.SubElement(
                suite, "testcase", classname=file, name=o.test, time=f"{o.seconds:.3f}"
            )
            if not o.passed:
                kind = "error" if o.error else "failure"
                lines = [printable(f) for f in o.failures] or ["failed"]
                ET.SubElement(case, kind, message=lines[0]).text = "\n".join(lines)
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out + b"\n"
