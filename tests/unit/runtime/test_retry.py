"""The retrying wrapper: transient errors retried with the delay, terminal ones not at all."""

from __future__ import annotations

import io
import logging

import pytest

from etlc.runtime.errors import TerminalError, TransientError, ValidationFailedError
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.pipeline import Pipeline
from etlc.runtime.report import EXIT_FAILED, EXIT_VALIDATION, RunReport, Status
from etlc.runtime.retry import RetryingPipeline, RetryPolicy
from tests.unit.runtime.log_lines import events


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


class Stream(Pipeline):
    """A stream's attempts, scripted: each runs ``healthy_ms`` committing ``batches`` (the
    fewest of any load), then fails transiently; after the script it is stopped cleanly."""

    def __init__(self, attempts: list[tuple[int, int]]) -> None:
        self.attempts = attempts
        self.calls = 0

    def run(self) -> RunReport:
        self.calls += 1
        if not self.attempts:
            return RunReport("p", "r", Status.SUCCESS)
        ran_ms, batches = self.attempts.pop(0)
        error = TransientError("broker down", "events")
        return RunReport("p", "r", Status.FAILED, duration_ms=ran_ms, error=error, batches=batches)


HOUR_MS = 3_600_000
STREAM_POLICY = RetryPolicy(3, 5.0, reset_after_ms=600_000)


def test_a_stream_survives_outages_separated_by_healthy_progress(captured: io.StringIO) -> None:
    # Four outages a day apart: each attempt that ran a day committing every micro-batch and
    # then failed opens an outage, which two more quick failures do not exhaust; the next
    # attempt is healthy again. Without the reset, the third failure in all would end it.
    quick = (2_000, 0)
    day = (24 * HOUR_MS, 86_400)
    script = [quick, quick, *[a for _ in range(4) for a in (day, quick, quick)]]
    failures = len(script)
    inner = Stream(script)
    sleeps: list[float] = []
    log = EventLog(RunContext("p"))
    report = RetryingPipeline(inner, STREAM_POLICY, log, sleeps.append).run()
    assert report.status is Status.SUCCESS
    assert inner.calls == failures + 1 and report.attempts == failures + 1
    assert sleeps == [5.0] * failures
    lines = events(captured)
    resets = [e for e in lines if e["event"] == "retry_budget_reset"]
    assert [(e["after_attempts"], e["batches"]) for e in resets] == [(2, 86_400)] + [
        (3, 86_400)
    ] * 3
    failed = [e for e in lines if e["event"] == "attempt_failed"]
    assert [e["outage_attempt"] for e in failed] == [1, 2] + [1, 2, 3] * 4
    assert [e["attempt"] for e in failed] == list(range(1, failures + 1))


def test_an_outage_still_ends_the_stream_after_four_attempts(captured: io.StringIO) -> None:
    # A day of progress, then it fails and every retry fails quickly: the outage its failure
    # opened ends after its fourth attempt, as a batch run's would.
    inner = Stream([(24 * HOUR_MS, 86_400), *[(2_000, 0)] * 5])
    report = RetryingPipeline(inner, STREAM_POLICY, EventLog(RunContext("p")), lambda _: None).run()
    assert report.status is Status.FAILED and inner.calls == 4
    failed = [e for e in events(captured) if e["event"] == "attempt_failed"]
    assert [e["outage_attempt"] for e in failed] == [1, 2, 3, 4]
    assert "retrying_in_s" not in failed[-1]


@pytest.mark.parametrize(
    ("ran_ms", "batches"),
    [
        (599_999, 10_000),  # committed, but not for long enough
        (24 * HOUR_MS, 0),  # long, but some load committed nothing: it was not healthy
    ],
)
def test_an_attempt_that_was_not_healthy_does_not_reset_the_budget(
    captured: io.StringIO, ran_ms: int, batches: int
) -> None:
    inner = Stream([(2_000, 0), (ran_ms, batches), (2_000, 0), (2_000, 0), (2_000, 0)])
    report = RetryingPipeline(inner, STREAM_POLICY, EventLog(RunContext("p")), lambda _: None).run()
    assert report.status is Status.FAILED and inner.calls == 4
    assert not [e for e in events(captured) if e["event"] == "retry_budget_reset"]


def test_a_batch_run_never_resets_its_budget() -> None:
    assert not RetryPolicy(3, 5.0).healthy(
        RunReport("p", "r", Status.FAILED, duration_ms=24 * HOUR_MS, batches=1)
    )
    with pytest.raises(ValueError):
        RetryPolicy(3, 5.0, reset_after_ms=0)
