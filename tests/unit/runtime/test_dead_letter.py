"""Dead letters: written with key, SQLSTATE and constraint; a failed write fails the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etlc.runtime.dead_letter import DeadLetterLog
from etlc.runtime.errors import TerminalError


def test_records_append_as_json_lines(tmp_path: Path) -> None:
    log = DeadLetterLog(str(tmp_path), "p", "run1")
    assert log.write("load", [{"key": {"id": 2}, "sqlstate": "23505", "constraint": "pk"}]) == 1
    assert log.write("load", []) == 0
    log.write("load", [{"key": {"id": 3}, "sqlstate": "23502", "constraint": ""}])
    rows = [json.loads(line) for line in log.path.read_text().splitlines()]
    assert [r["key"]["id"] for r in rows] == [2, 3]
    assert rows[0] == {
        "pipeline": "p",
        "run_id": "run1",
        "step": "load",
        "key": {"id": 2},
        "sqlstate": "23505",
        "constraint": "pk",
    }


def test_an_unwritable_log_is_a_terminal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    log = DeadLetterLog(str(blocker), "p", "run1")
    with pytest.raises(TerminalError, match="1 rejected rows would be lost"):
        log.write("load", [{"key": {"id": 1}, "sqlstate": "23505", "constraint": "pk"}])
