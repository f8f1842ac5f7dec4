"""A run's events as lines a person reads at a terminal, and the table that ends the run.

The driver prints these instead of JSON lines when its stdout is a terminal (or with
``--log-format text``); the JSON lines still go to the run's file. Each known event has one
short line; any other event shows its name and fields, so nothing an operator needs is
hidden, only reworded. Values pass the same secret scrubbing as the JSON lines.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from etlc.printable import printable
from etlc.vault.redaction import scrub_value

# Fields every event carries; the line's prefix says them once.
_TAGS = frozenset({"run_id", "pipeline", "attempt"})
# Fields too large or too raw for a line: the run's file has them.
_BULKY = frozenset({"sample", "steps", "statement", "latency_ms", "validation"})

Fields = Mapping[str, Any]
_STAGE_ORDER = {"extract": 0, "transform": 1, "load": 2}


def count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def seconds(ms: Any) -> str:
    if not isinstance(ms, (int, float)):
        return "-"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return f"{int(ms // 60_000)} min {ms % 60_000 / 1000:.0f} s"


def _run_started(f: Fields) -> str:
    run = f"run {f.get('run_id')} of {f.get('pipeline')}"
    return f"{run} started: {f.get('mode')}, env {f.get('env')}"


def _attempt_started(f: Fields) -> str:
    return f"attempt {f.get('attempt')} of {f.get('max_attempts')}"


def _step_finished(f: Fields) -> str:
    rows = f"{count(f.get('records_in', '-'))} -> {count(f.get('records_out', '-'))} rows"
    line = f"{f.get('stage', ''):<9} {f.get('step')}: {rows}"
    if "duration_ms" in f:
        line += f" in {seconds(f['duration_ms'])}"
    if "mode" in f:
        line += f" ({f['mode']})"
    invalid = (f.get("validation") or {}).get("invalid")
    return line + (f", {count(invalid)} invalid" if invalid else "")


def _validation_failed(f: Fields) -> str:
    violations = sorted(dict(f.get("violations") or {}).items())
    rules = ", ".join(f"{rule} ({count(n)})" for rule, n in violations)
    return (
        f"{f.get('step')}: {count(f.get('invalid'))} of {count(f.get('records'))} records "
        f"failed validation: {rules}; a sample is in the run's file"
    )


def _attempt_failed(f: Fields) -> str:
    where = f" at step {f['step']}" if f.get("step") else ""
    then = (
        f"retrying in {f['retrying_in_s']:g} s"
        if f.get("retrying_in_s") is not None
        else "not retrying"
    )
    failed = f"attempt {f.get('attempt')} failed{where} ({f.get('error_kind')})"
    return f"{failed}: {f.get('error')}; {then}"


def _batch_progress(f: Fields) -> str:
    return (
        f"{f.get('query')} batch {f.get('batch_id')}: {count(f.get('input_rows'))} rows, "
        f"{f.get('input_rows_per_s')} rows/s, {seconds(f.get('batch_duration_ms'))}"
    )


def _run_finished(f: Fields) -> str:
    attempts = f.get("attempts", 1)
    line = (
        f"run {f.get('status')} in {seconds(f.get('duration_ms'))}, "
        f"{attempts} attempt{'s' if attempts != 1 else ''}, exit code {f.get('exit_code', 1)}"
    )
    if f.get("error"):
        line += f"\n  {f.get('error_kind', 'error')}: {f['error']}"
    steps = f.get("steps") or []
    return "\n".join([line, *summary_table(steps)]) if steps else line


_LINES: dict[str, Callable[[Fields], str]] = {
    "run_started": _run_started,
    "attempt_started": _attempt_started,
    "step_finished": _step_finished,
    "validation_failed": _validation_failed,
    "attempt_failed": _attempt_failed,
    "batch_progress": _batch_progress,
    "run_finished": _run_finished,
}


def _generic(event: str, f: Fields) -> str:
    shown = [f"{k}={v}" for k, v in f.items() if k not in _TAGS and k not in _BULKY]
    return f"{event.replace('_', ' ')}" + (f": {', '.join(shown)}" if shown else "")


def summary_table(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """The steps of a run, one row each: extracts, transforms, loads, each kind in the order
    it finished (transforms finish when the load that needs them runs)."""
    header = ("step", "stage", "rows in", "rows out", "time")
    steps = sorted(steps, key=lambda s: _STAGE_ORDER.get(str(s.get("stage")), len(_STAGE_ORDER)))
    rows = [
        (
            str(s.get("step", "")),
            str(s.get("stage", "")),
            count(s.get("records_in", "-")),
            count(s.get("records_out", "-")),
            seconds(s.get("duration_ms")),
        )
        for s in steps
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        left = [row[i].ljust(widths[i]) for i in range(2)]
        right = [row[i].rjust(widths[i]) for i in range(2, len(row))]
        return "  ".join([*left, *right]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(header), rule, *(line(r) for r in rows), rule]


def render(event: str, fields: Fields) -> str:
    """One event as the text a person reads (several lines for the end of a run)."""
    known = _LINES.get(event)
    return known(fields) if known is not None else _generic(event, fields)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL text``: the level only when it is not plain information."""

    def format(self, record: logging.LogRecord) -> str:
        fields = scrub_value(dict(getattr(record, "etlc", {})))
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        level = "" if record.levelno <= logging.INFO else f"{record.levelname} "
        text = scrub_value(render(record.getMessage(), fields))
        # Values come from data and from servers' messages: no control character (a
        # terminal's escape sequence) reaches the terminal; the table keeps its lines.
        return "\n".join(printable(line) for line in f"{stamp} {level}{text}".split("\n"))
