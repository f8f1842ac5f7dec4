"""A run's events as lines a person reads: one line per event, the table that ends the run."""

from __future__ import annotations

import logging

import pytest

from etlc.runtime.console import TextFormatter, render, seconds
from etlc.vault.secret import Secret

TAGS = {"run_id": "r1", "pipeline": "orders", "attempt": 1}
STEPS = [
    {"step": "out", "stage": "load", "records_in": 8, "records_out": 8, "duration_ms": 8300},
    {"step": "kept", "stage": "transform", "records_in": 100000, "records_out": 91584},
    {"step": "orders", "stage": "extract", "records_in": 100000, "records_out": 100000,
     "duration_ms": 14061},
]  # fmt: skip


@pytest.mark.parametrize(
    ("event", "fields", "line"),
    [
        (
            "run_started",
            {"mode": "batch", "env": "local", "pid": 7},
            "run r1 of orders started: batch, env local",
        ),
        ("attempt_started", {"max_attempts": 4}, "attempt 1 of 4"),
        (
            "step_finished",
            {"stage": "extract", "step": "orders", "records_in": 1200, "records_out": 1190,
             "duration_ms": 2500, "validation": {"passed": False, "invalid": 10}},
            "extract   orders: 1,200 -> 1,190 rows in 2.5 s, 10 invalid",
        ),
        (
            "step_finished",
            {"stage": "load", "step": "out", "records_in": 8, "records_out": 8, "mode": "upsert"},
            "load      out: 8 -> 8 rows (upsert)",
        ),
        (
            "validation_failed",
            {"step": "orders", "records": 1200, "invalid": 10,
             "violations": {"schema:amount": 4, "not_null:id": 6}, "sample": [{"id": None}]},
            "orders: 10 of 1,200 records failed validation: not_null:id (6), schema:amount (4);"
            " a sample is in the run's file",
        ),
        (
            "attempt_failed",
            {"step": "orders", "error": "connection refused", "error_kind": "transient",
             "retrying_in_s": 5.0},
            "attempt 1 failed at step orders (transient): connection refused; retrying in 5 s",
        ),
        (
            "attempt_failed",
            {"error": "bad password", "error_kind": "authentication", "retrying_in_s": None},
            "attempt 1 failed (authentication): bad password; not retrying",
        ),
        (
            "batch_progress",
            {"query": "out", "batch_id": 3, "input_rows": 5000, "input_rows_per_s": 2500.0,
             "batch_duration_ms": 900},
            "out batch 3: 5,000 rows, 2500.0 rows/s, 0.9 s",
        ),
        # Any other event: its name and fields, without the tags and bulky ones.
        (
            "table_created",
            {"step": "out", "table": "public.t", "statement": "CREATE TABLE ..."},
            "table created: step=out, table=public.t",
        ),
        ("queries_stopped", {}, "queries stopped"),
    ],
)  # fmt: skip
def test_each_event_is_one_short_line(event: str, fields: dict[str, object], line: str) -> None:
    assert render(event, {**TAGS, **fields}) == line


def test_the_run_ends_with_its_status_then_the_table_of_steps_in_stage_order() -> None:
    text = render(
        "run_finished",
        {**TAGS, "status": "SUCCESS", "attempts": 1, "duration_ms": 27064, "exit_code": 0,
         "steps": STEPS},
    )  # fmt: skip
    assert text.splitlines() == [
        "run SUCCESS in 27.1 s, 1 attempt, exit code 0",
        "step    stage      rows in  rows out    time",
        "------  ---------  -------  --------  ------",
        "orders  extract    100,000   100,000  14.1 s",
        "kept    transform  100,000    91,584       -",
        "out     load             8         8   8.3 s",
        "------  ---------  -------  --------  ------",
    ]


def test_a_failed_run_says_why_under_its_status() -> None:
    text = render(
        "run_finished",
        {**TAGS, "status": "FAILED", "attempts": 4, "duration_ms": 125_000, "exit_code": 1,
         "error": "no route to host", "error_kind": "transient"},
    )  # fmt: skip
    assert text.splitlines() == [
        "run FAILED in 2 min 5 s, 4 attempts, exit code 1",
        "  transient: no route to host",
    ]


def test_durations_read_as_a_person_says_them() -> None:
    assert [seconds(v) for v in (None, 40, 59_949, 61_000)] == ["-", "0.0 s", "59.9 s", "1 min 1 s"]


def test_the_formatter_stamps_the_time_marks_warnings_and_hides_secrets() -> None:
    secret = Secret("s3cr3t-value-for-console")
    record = logging.LogRecord("etlc", logging.WARNING, __file__, 1, "attempt_failed", None, None)
    record.etlc = {  # type: ignore[attr-defined]
        **TAGS,
        "error": f"login with {secret.reveal()} refused",
        "error_kind": "authentication",
    }
    line = TextFormatter().format(record)
    assert line[2] == ":" and line[5] == ":" and line[8:17] == " WARNING "
    assert "s3cr3t-value-for-console" not in line and "refused" in line
    info = logging.LogRecord("etlc", logging.INFO, __file__, 1, "queries_stopped", None, None)
    assert TextFormatter().format(info)[8:] == " queries stopped"


def test_no_control_character_from_data_reaches_the_terminal() -> None:
    record = logging.LogRecord("etlc", logging.ERROR, __file__, 1, "validation_failed", None, None)
    record.etlc = {  # type: ignore[attr-defined]
        **TAGS,
        "step": "orders\x1b]0;owned\x07",
        "records": 2,
        "invalid": 1,
        "violations": {"schema:\x1b[2Jstatus": 1},
    }
    line = TextFormatter().format(record)
    assert "\x1b" not in line and "\x07" not in line
    assert "\\x1b" in line  # shown escaped, not dropped
    finished = logging.LogRecord("etlc", logging.INFO, __file__, 1, "run_finished", None, None)
    finished.etlc = {**TAGS, "status": "SUCCESS", "steps": [{"step": "a\rb", "stage": "load"}]}  # type: ignore[attr-defined]
    lines = TextFormatter().format(finished).split("\n")
    assert len(lines) == 5 and "a\\rb" in lines[3]
