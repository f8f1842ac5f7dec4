"""What ``etlc test`` hands the test runner, and what the runner hands back.

The compiler side (``etlc.pipeline_testing``) checks the test files, compiles each pipeline's
driver and writes every given and expected row to files of its own; the runner
(``etlc.testrun``) runs inside spark-submit and reads only those. Both sides read and write
these types as JSON, so this module imports neither (nor pyspark): the standard library only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GivenInput:
    """The rows one extract reads instead of its source: a file the compiler side wrote."""

    extract: str
    path: str
    format: str  # json (JSON lines), json_array or csv (with a header line)


@dataclass(frozen=True)
class ExpectedRows:
    """The rows a dataset must hold, compared on ``columns`` (those the test's rows name)."""

    dataset: str
    path: str  # JSON lines
    columns: tuple[str, ...]
    key: tuple[str, ...] = ()  # pairs a missing and an extra row into one changed row


@dataclass(frozen=True)
class ExpectedCount:
    step: str
    rule: str
    records: int


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest test class

    name: str
    given: tuple[GivenInput, ...]
    expected: tuple[ExpectedRows, ...]
    counts: tuple[ExpectedCount, ...] = ()
    # The step the run must halt at ("" for a run that must finish), and the records that
    # broke each of its fail rules there.
    halt_step: str = ""
    halt_rules: tuple[ExpectedCount, ...] = ()


@dataclass(frozen=True)
class TestFile:
    __test__ = False  # not a pytest test class

    file: str  # as the user named it, for the report
    pipeline: str
    driver: str  # the compiled driver's path
    tests: tuple[TestCase, ...]


@dataclass(frozen=True)
class TestRun:
    __test__ = False  # not a pytest test class

    files: tuple[TestFile, ...]
    work_dir: str  # the runner's own files (captured datasets, stage, logs) go below it

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> TestRun:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            files=tuple(_file(f) for f in doc["files"]),
            work_dir=str(doc["work_dir"]),
        )


def _file(doc: dict[str, Any]) -> TestFile:
    return TestFile(
        file=str(doc["file"]),
        pipeline=str(doc["pipeline"]),
        driver=str(doc["driver"]),
        tests=tuple(
            TestCase(
                name=str(t["name"]),
                given=tuple(GivenInput(**g) for g in t["given"]),
                expected=tuple(
                    ExpectedRows(
                        dataset=e["dataset"],
                        path=e["path"],
                        columns=tuple(e["columns"]),
                        key=tuple(e["key"]),
                    )
                    for e in t["expected"]
                ),
                counts=tuple(ExpectedCount(**c) for c in t["counts"]),
                halt_step=str(t["halt_step"]),
                halt_rules=tuple(ExpectedCount(**c) for c in t["halt_rules"]),
            )
            for t in doc["tests"]
        ),
    )


@dataclass(frozen=True)
class Outcome:
    """One test's result: passed, or the lines saying why not (a diff, a count, an error)."""

    file: str
    test: str
    passed: bool
    failures: tuple[str, ...] = ()
    seconds: float = 0.0
    error: bool = False  # the pipeline did not run to the end (not a difference in its output)
    log: str = ""  # the run's JSON lines


def write_outcomes(outcomes: list[Outcome], path: Path) -> None:
    path.write_text(json.dumps([asdict(o) for o in outcomes], indent=1), encoding="utf-8")


def read_outcomes(path: Path) -> list[Outcome]:
    docs = json.loads(path.read_text(encoding="utf-8"))
    return [
        Outcome(
            file=str(d["file"]),
            test=str(d["test"]),
            passed=bool(d["passed"]),
            failures=tuple(str(f) for f in d["failures"]),
            seconds=float(d["seconds"]),
            error=bool(d["error"]),
            log=str(d["log"]),
        )
        for d in docs
    ]
