"""The run report: what a run did, its status and the exit code that goes with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from etlc.runtime.errors import EtlcError, ValidationFailedError


class Status(str, Enum):
    SUCCESS = "SUCCESS"
    PARTIAL = "PARTIAL"
    FAILED = "FAILED"

    # str() and format() give the value, as enum.StrEnum does; that is Python 3.11+ only.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


# Exit codes of a driver; the README documents them.
EXIT_SUCCESS = 0
EXIT_FAILED = 1
EXIT_VALIDATION = 2
EXIT_PARTIAL = 3


@dataclass
class StepMetrics:
    step: str
    stage: str  # extract | transform | load
    records_in: int | None = None
    records_out: int | None = None
    duration_ms: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunReport:
    pipeline: str
    run_id: str
    status: Status
    attempts: int = 1
    duration_ms: int = 0
    steps: list[StepMetrics] = field(default_factory=list)
    error: EtlcError | None = None
    # Streaming: the micro-batches the load that committed fewest committed in this attempt.
    batches: int = 0

    @property
    def left_out(self) -> int:
        """Records the steps' expectations left out: dropped or set aside in quarantine."""
        return sum(int(s.extra.get(k, 0)) for s in self.steps for k in ("dropped", "quarantined"))

    @property
    def exit_code(self) -> int:
        if self.status is Status.SUCCESS:
            return EXIT_SUCCESS
        if self.status is Status.PARTIAL:
            return EXIT_PARTIAL
        if isinstance(self.error, ValidationFailedError):
            return EXIT_VALIDATION
        return EXIT_FAILED

    def as_log(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status.value,
            "attempts": self.attempts,
            "duration_ms": self.duration_ms,
            "exit_code": self.exit_code,
            "steps": [
                {k: v for k, v in vars(s).items() if v not in (None, {})} for s in self.steps
            ],
        }
        if self.error is not None:
            out["error"] = str(self.error)
            out["error_kind"] = self.error.kind
        return out
