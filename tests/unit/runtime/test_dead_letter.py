"""Dead letters: written with key, SQLSTATE and constraint; a failed write fails the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.runtime.dead_letter import DeadLetterLog
from etlc.runtime.errors import TerminalError


def test_records_append_as_json_lines(tmp_path: Path) -> None:
    log = DeadLetterLog(str(tmp_path), "p", "run1")
    assert log.write("load", [{"key": {"id": 2}, "sqlstate": "23505", "constraint": "pk"}]) == 1
    assert log.write("load", []) == 0
    log.write("load", [{"key": {"id": 3}, "sqlstate": "23502", "constraint": ""}])
    rows = [json.loads(line) for line in Path(log.location).read_text().splitlines()]
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


RECORD = {"key": {"id": 1}, "sqlstate": "23505", "constraint": "pk"}


def test_with_a_session_a_local_folder_is_appended_to_on_the_drivers_disk(
    spark: Any, tmp_path: Path
) -> None:
    log = DeadLetterLog(f"file://{tmp_path}", "p", "run1", spark)
    log.write("load", [RECORD])
    log.write("load", [RECORD])
    assert log.location == str(tmp_path / "p" / "run1.jsonl")
    assert len((tmp_path / "p" / "run1.jsonl").read_text().splitlines()) == 2


def test_on_a_hadoop_file_system_the_file_is_rewritten_whole_and_keeps_earlier_lines(
    spark: Any, tmp_path: Path
) -> None:
    """What a driver in a YARN container does with HDFS (here Hadoop's own local file system
    stands in for it): a second log object of the same run, a retry's say, keeps the first's."""
    target = str(tmp_path / "p" / "run1.jsonl")
    first = _remote(spark, target)
    first.append(b'{"n": 1}\n')
    _remote(spark, target).append(b'{"n": 2}\n')
    assert (tmp_path / "p" / "run1.jsonl").read_text() == '{"n": 1}\n{"n": 2}\n'
    assert sorted(p.name for p in (tmp_path / "p").iterdir() if not p.name.endswith(".crc")) == [
        "run1.jsonl"
    ]  # no temporary file left behind
    assert first.uri.endswith(target)


def test_a_failed_write_on_a_hadoop_file_system_is_a_terminal_error_naming_the_file(
    spark: Any, tmp_path: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    log = DeadLetterLog(str(blocker), "p", "run1")
    log._remote = _remote(spark, str(blocker / "p" / "run1.jsonl"))
    log.location = log._remote.uri
    with pytest.raises(TerminalError, match=r"cannot write the dead-letter log file:.*run1.jsonl"):
        log.write("load", [RECORD])


def _remote(spark: Any, target: str) -> Any:
    from etlc.runtime.dead_letter import _RemoteFile

    remote = _RemoteFile.resolve(spark, target)
    # Hadoop's raw local file system, taken as any other: the same calls HDFS answers.
    return _RemoteFile(remote.jvm, remote.fs, remote.path, None)
