"""The retrying wrapper: transient errors retried with the delay, terminal ones not at all."""

from __future__ import annotations

import io
import json
import logging

import pytest

from etlc.runtime.errors import TerminalError, TransientError, ValidationFailedError
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.pipeline import Pipeline
from etlc.runtime.report import EXIT_FAILED, EXIT_VALIDATION, RunReport, Status
from etlc.runtime.retry import RetryingPipeline, RetryPolicy


class Scripted(Pipeline):
    """Fails with the scripted errors in order, then succeeds."""

    def __init__(self, errors: list[Exception | None]) -> None:
        self.errors = errors
        self.calls = 0

    def run(self) -> RunReport:
        self.calls += 1
        error = self.errors.pop(0) if self.errors else None
        status = Status.SUCCESS if error is None else Status.FAILED
        return RunReport("p", "r", status, error=error)  # type: ignore[arg-type]


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure(stream, logging.INFO)
    return stream


def events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_transient_failures_are_retried_with_the_delay(captured: io.StringIO) -> None:
    inner = Scripted([TransientError("down", "orders"), TransientError("down", "orders")])
    sleeps: list[float] = []
    log = EventLog(RunContext("p", run_id="r1"))
    report = RetryingPipeline(inner, RetryPolicy(3, 5.0), log, sleep=sleeps.append).run()
    assert report.status is Status.SUCCESS
    assert report.attempts == 3
    assert inner.calls == 3
    assert sleeps == [5.0, 5.0]
    failed = [e for e in events(captured) if e["event"] == "attempt_failed"]
    assert [(e["attempt"], e["of"], e["retrying_in_s"], e["step"]) for e in failed] == [
        (1, 4, 5.0, "orders"),
        (2, 4, 5.0, "orders"),
    ]
    assert all(e["run_id"] == "r1" and e["error_kind"] == "transient" for e in failed)


def test_retries_stop_after_max_retries(captured: io.StringIO) -> None:
    inner = Scripted([TransientError("down")] * 10)
    sleeps: list[float] = []
    report = RetryingPipeline(
        inner, RetryPolicy(3, 5.0), EventLog(RunContext("p")), sleeps.append
    ).run()
    assert report.status is Status.FAILED
    assert inner.calls == 4
    assert sleeps == [5.0, 5.0, 5.0]
    assert report.exit_code == EXIT_FAILED
    last = events(captured)[-1]
    assert (last["event"], last["attempt"]) == ("attempt_failed", 4)
    assert "retrying_in_s" not in last  # the final attempt announces no further retry


@pytest.mark.parametrize(
    "error",
    [TerminalError("bad config"), ValidationFailedError("bad rows", "orders", {"x": 1}, [])],
)
def test_terminal_failures_are_not_retried(captured: io.StringIO, error: Exception) -> None:
    inner = Scripted([error])
    sleeps: list[float] = []
    report = RetryingPipeline(
        inner, RetryPolicy(3, 5.0), EventLog(RunContext("p")), sleeps.append
    ).run()
    assert inner.calls == 1
    assert sleeps == []
    assert report.status is Status.FAILED
    expected = EXIT_VALIDATION if isinstance(error, ValidationFailedError) else EXIT_FAILED
    assert report.exit_code == expected


def test_policy_rejects_negative_values() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(-1, 5)
