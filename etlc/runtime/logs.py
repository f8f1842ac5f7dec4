"""Structured logs: one JSON object per line, the only place metrics go.

Every record carries the run id, pipeline and attempt from the :class:`RunContext`; events add
stage, step, counts and durations as fields. No secret value leaves in a line: the handler's
redaction filter and the formatter both scrub every value the run has resolved.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import IO, Any

from etlc.runtime.console import TextFormatter
from etlc.vault.redaction import RedactingFilter, scrub_value

LOGGER_NAME = "etlc"
MACHINE_EVENTS = frozenset({"openlineage"})


@dataclass
class RunContext:
    pipeline: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    attempt: int = 1
    max_attempts: int = 1
    # The run's JSON lines file, where the JVM's stage lines go too; and whether stdout has
    # JSON lines (else text a person reads, where the JVM's lines would not belong).
    run_file: str | None = None
    stdout_json: bool = True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        payload.update(getattr(record, "etlc", {}))
        if record.exc_info and record.exc_info[1] is not None:
            payload["exception"] = type(record.exc_info[1]).__name__
        # The one place every event passes, whatever handler or filter is in front of it.
        return json.dumps(scrub_value(payload), default=str, ensure_ascii=False)


class EventLog:
    """Emits events as JSON lines, tagged with the run context."""

    def __init__(self, context: RunContext, logger: logging.Logger | None = None) -> None:
        self.context = context
        self.logger = logger or logging.getLogger(LOGGER_NAME)

    def _emit(self, level: int, event: str, fields: dict[str, Any]) -> None:
        tags = {
            "run_id": self.context.run_id,
            "pipeline": self.context.pipeline,
            "attempt": self.context.attempt,
        }
        tags.update({k: v for k, v in fields.items() if v is not None})
        self.logger.log(level, event, extra={"etlc": tags})

    def info(self, event: str, **fields: Any) -> None:
        self._emit(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit(logging.ERROR, event, fields)


def configure(
    stream: IO[str] | None = None, level: int = logging.INFO, text: bool = False
) -> logging.Logger:
    """Route etlc's logger to ``stream`` (stdout by default) as JSON lines, or as lines a
    person reads with ``text``, once."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    handler.addFilter(RedactingFilter())
    if text:
        # Lineage events are for machines; the run's file has them as JSON lines.
        handler.addFilter(lambda record: record.getMessage() not in MACHINE_EVENTS)
    logger.addHandler(handler)
    return logger
