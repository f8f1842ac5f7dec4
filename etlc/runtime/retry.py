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
    # Streaming: an attempt that ran this long with every load committing ends an outage's
    # count; the failure that ends it starts a new one with the whole budget. None: never.
    reset_after_ms: int | None = None

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.delay_seconds < 0:
            raise ValueError("max_retries and delay_seconds must be >= 0")
        if self.reset_after_ms is not None and self.reset_after_ms <= 0:
            raise ValueError("reset_after_ms must be > 0")

    def healthy(self, report: RunReport) -> bool:
        """Whether a failed attempt made enough progress before it failed to have ended the
        outage before it."""
        return (
            self.reset_after_ms is not None
            and report.batches > 0
            and report.duration_ms >= self.reset_after_ms
        )


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
        # `ctx.attempt` counts every attempt of the run (stage paths and log lines are per
        # attempt); `outage` counts those since the stream was last healthy.
        total = outage = 0
        while True:
            total += 1
            outage += 1
            ctx.attempt = total
            report = self.inner.run()
            report.attempts = total
            if report.status is not Status.FAILED or report.error is None:
                return report
            if outage > 1 and self.policy.healthy(report):
                self.log.info(
                    "retry_budget_reset",
                    healthy_ms=report.duration_ms,
                    batches=report.batches,
                    after_attempts=outage - 1,
                )
                outage = 1
            error = report.error
            retry = error.transient and outage < attempts
            self.log.warning(
                "attempt_failed",
                step=error.step,
                error=str(error),
                error_kind=error.kind,
                error_class=type(error.__cause__ or error).__name__,
                outage_attempt=outage,
                of=attempts,
                retrying_in_s=self.policy.delay_seconds if retry else None,
            )
            if not retry:
                return report
            self.sleep(self.policy.delay_seconds)
