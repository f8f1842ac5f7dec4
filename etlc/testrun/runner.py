"""Runs the tests ``etlc test`` prepared, inside spark-submit, on one local SparkSession.

Per test: the compiled driver's ``build`` makes the pipeline graph; every extract reads the
test's given rows instead of its source, every load is replaced by a capture of the datasets
the test looks at; the batch pipeline runs as a driver would (validation, expectations, the
Avro boundary), and each captured dataset is compared with the expected rows. A streaming
definition's graph runs the same way, as a batch over the given rows.

Usage (what ``etlc test`` submits): ``<runner>.py RUN_JSON OUTCOMES_JSON``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from pyspark.sql import SparkSession

from etlc.connectors.files import FilesExtractor
from etlc.pipeline_test_spec import (
    ExpectedCount,
    GivenInput,
    Outcome,
    TestCase,
    TestFile,
    TestRun,
    write_outcomes,
)
from etlc.runtime.environment import Settings
from etlc.runtime.errors import ValidationFailedError, summary
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.pipeline import BatchPipeline
from etlc.runtime.report import RunReport, Status
from etlc.runtime.rules import EXPECT_PREFIX
from etlc.runtime.session import SQL_SUBSTITUTION_CONF
from etlc.testrun.compare import ExpectedRowsError, differences, expected_frame
from etlc.testrun.stand_ins import CapturingLoader, Placeholders, UnopenedEnvironment


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: runner.py RUN_JSON OUTCOMES_JSON", file=sys.stderr)
        return 1
    run = TestRun.read(Path(args[0]))
    spark = SparkSession.builder.appName("etlc:test").getOrCreate()
    spark.conf.set(*SQL_SUBSTITUTION_CONF)
    spark.sparkContext.setLogLevel("ERROR")
    outcomes = run_tests(spark, run)
    write_outcomes(outcomes, Path(args[1]))
    return 0


def run_tests(spark: SparkSession, run: TestRun) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for number, file in enumerate(run.files):
        try:
            driver = _driver(file.driver, f"etlc_under_test_{number}")
        except Exception as exc:  # that file's tests are ERRORs; the other files still run
            why = f"etlc test could not import the compiled driver: {summary(exc)}"
            outcomes += [Outcome(file.file, c.name, False, (why,), error=True) for c in file.tests]
            continue
        for index, case in enumerate(file.tests):
            work = f"{run.work_dir}/{number}/{index}"
            outcomes.append(run_case(spark, driver, file, case, work))
    return outcomes


def _driver(path: str, module_name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the compiled driver {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_case(
    spark: SparkSession, driver: ModuleType, file: TestFile, case: TestCase, work: str
) -> Outcome:
    """One test: the pipeline on the given rows, then every comparison it asks for."""
    started = time.monotonic()
    log_path = f"{work}/run.jsonl"
    Path(work).mkdir(parents=True, exist_ok=True)
    env = UnopenedEnvironment(
        name="test",
        path="(etlc test)",
        variables=Placeholders(),
        settings=Settings(
            stage_dir=f"{work}/stage",
            dead_letter_dir=f"{work}/dead-letter",
            quarantine_dir=f"{work}/quarantine",
            runs_dir=f"{work}/runs",
        ),
    )
    error = True
    try:
        with open(log_path, "w", encoding="utf-8") as lines:
            configure(stream=lines)
            graph, captured = under_test(driver.build(env), case, f"{work}/datasets")
            report = BatchPipeline(graph, spark, env, EventLog(RunContext(file.pipeline))).run()
        if case.halt_step:
            error, failures = _halted(report, case)
        else:
            failures = _run_failed(report)
        if not failures and not case.halt_step:
            error = False
            failures = _compared(spark, graph, case, captured) + _counted(report, case.counts)
    except Exception as exc:  # one test's trouble (a plugin's step that wants its
        # connection, say) is that test's ERROR; the other tests still run
        error, failures = True, [f"etlc test could not run it: {summary(exc)}"]
    finally:
        configure(stream=sys.stderr)  # the file is closed; etlc's lines go to the runner's log
    return Outcome(
        file=file.file,
        test=case.name,
        passed=not failures,
        failures=tuple(failures),
        seconds=round(time.monotonic() - started, 3),
        error=error and bool(failures),
        log=log_path,
    )


def under_test(
    graph: PipelineGraph, case: TestCase, capture_dir: str
) -> tuple[PipelineGraph, dict[str, str]]:
    """``graph`` reading the test's given rows and writing nowhere but ``capture_dir``: one
    capture per dataset the test expects rows of, and per dataset a load of it reads (so the
    pipeline's steps, and their expectations, run as they would)."""
    given = {g.extract: g for g in case.given}
    extracts = tuple(_reading(ex, given[ex.id]) for ex in graph.extracts)
    datasets = dict.fromkeys(
        [*(e.dataset for e in case.expected), *(ld.input for ld in graph.loads)]
    )
    captured = {d: f"{capture_dir}/{d}" for d in datasets}
    loads = tuple(
        LoadStep(id=f"capture_{d}", input=d, loader=CapturingLoader(path), mode="overwrite")
        for d, path in captured.items()
    )
    return replace(graph, extracts=extracts, loads=loads), captured


# How each given format is read: a CSV file by its header line, a JSON array as one
# document, JSON lines a record per line; otherwise with Spark's defaults, whatever reader
# options the extract's own source has.
_READERS = {
    "csv": ("csv", {"header": "true"}),
    "json_array": ("json", {"multiLine": "true"}),
    "json": ("json", {}),
}


def _reading(step: ExtractStep, given: GivenInput) -> ExtractStep:
    fmt, options = _READERS[given.format]
    reader = FilesExtractor(given.path, fmt, step.schema, options)
    return replace(step, extractor=reader, refresh=None)


def _run_failed(report: RunReport) -> list[str]:
    if report.status is not Status.FAILED:
        return []
    error = report.error
    lines = [f"the pipeline failed: {error}"]
    if isinstance(error, ValidationFailedError) and error.sample:
        lines.append(f"first offending record: {error.sample[0]}")
    return lines


def _halted(report: RunReport, case: TestCase) -> tuple[bool, list[str]]:
    """Whether the run ended otherwise than by a halt (an error), and how it differs from the
    halt the test expects: at its step, with its rules broken by as many records."""
    error = report.error
    if report.status is not Status.FAILED:
        return False, [f"the run did not halt; the test expects a halt at step `{case.halt_step}`"]
    if not isinstance(error, ValidationFailedError):
        return True, _run_failed(report)
    if error.step != case.halt_step:
        return False, [f"the run halted at step `{error.step}`, not `{case.halt_step}`: {error}"]
    broken = {rule.removeprefix(EXPECT_PREFIX): n for rule, n in error.violations.items()}
    return False, [
        f"{c.step}: rule `{c.rule}` broken by {broken.get(c.rule, 0)} record(s), expected "
        f"{c.records}"
        for c in case.halt_rules
        if broken.get(c.rule, 0) != c.records
    ]


def _compared(
    spark: SparkSession, graph: PipelineGraph, case: TestCase, captured: dict[str, str]
) -> list[str]:
    schemas = {s.id: s.schema for s in graph.extracts}
    schemas.update({s.id: s.schema for s in graph.transforms})
    lines: list[str] = []
    for expected in case.expected:
        struct = schemas[expected.dataset].struct()
        try:
            want = expected_frame(spark, expected.path, struct, expected.columns)
        except ExpectedRowsError as exc:
            lines.append(f"{expected.dataset}: {exc}")
            continue
        got = spark.read.parquet(captured[expected.dataset])
        lines += differences(expected.dataset, got, want, expected.key)
    return lines


def _counted(report: RunReport, counts: Sequence[ExpectedCount]) -> list[str]:
    """Each expected count against the run's: the step's ``expectations`` (warn, drop,
    quarantine rules, and schema rules under ``on_invalid``)."""
    found: dict[tuple[str, str], int] = {}
    for step in report.steps:
        for rule, value in step.extra.get("expectations", {}).items():
            found[(step.step, rule.removeprefix(EXPECT_PREFIX))] = int(value["failed"])
    lines = []
    for c in counts:
        got = found.get((c.step, c.rule), 0)
        if got != c.records:
            lines.append(
                f"{c.step}: rule `{c.rule}` broken by {got} record(s), expected {c.records}"
            )
    return lines


if __name__ == "__main__":  # pragma: no cover - spark-submit runs the file ``etlc test`` writes
    raise SystemExit(main())
