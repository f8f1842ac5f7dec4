"""Retrying: a ``Pipeline`` that decorates another's ``run`` with the retry policy.

Only transient failures are retried (the error taxonomy decides, by type); validation,
configuration and authentication failures end the run at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from etlc.runtime.logs import EventLog
from etlc.runtime.pipeline import Pipeline
from etlc.runtime.report import RunReport, Status

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    delay_seconds: float = 5.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.delay_seconds < 0:
            raise ValueError("max_retries and delay_seconds must be >= 0")


class RetryingPipeline(Pipeline):
    def __init__(
        self, inner: Pipeline, policy: RetryPolicy, log: EventLog, sleep: Sleep = time.sleep
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.log = log
        self.sleep = sleep

    def run(self) -> RunReport:
        attempts = self.policy.max_retries + 1
        ctx = self.log.context
        ctx.max_attempts = attempts
        for attempt in range(1, attempts + 1):
            ctx.attempt = attempt
            report = self.inner.run()
            report.attempts = attempt
            if report.status is not Status.FAILED or report.error is None:
                return report
            error = report.error
            retry = error.transient and attempt < attempts
            self.log.warning(
                "attempt_failed",
                step=error.step,
                error=str(error),
                error_kind=error.kind,
                error_class=type(error.__cause__ or error).__name__,
                of=attempts,
                retrying_in_s=self.policy.delay_seconds if retry else None,
            )
            if not retry:
                return report
            self.sleep(self.policy.delay_seconds)
        raise AssertionError("unreachable: the last attempt always returns")
