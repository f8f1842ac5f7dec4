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


def test_on_a_hadoop_file_system_each_write_is_a_new_whole_file(spark: Any, tmp_path: Path) -> None:
    """What a driver in a YARN container does with HDFS (here Hadoop's own local file system
    stands in for it): two writers of one run, a retry's or another stream's, both kept."""
    folder = tmp_path / "p" / "run1"
    first, second = _remote(spark, str(folder)), _remote(spark, str(folder))
    first.add("load_a", b'{"n": 1}\n')
    second.add("load_b", b'{"n": 2}\n')
    files = sorted(p for p in folder.iterdir() if not p.name.endswith(".crc"))
    assert [f.name.split("-")[0] for f in files] == ["load_a", "load_b"]
    assert [f.read_text() for f in files] == ['{"n": 1}\n', '{"n": 2}\n']
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]  # none left behind


def test_a_log_on_a_hadoop_file_system_names_its_folder_and_fails_whole(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlc.runtime import dead_letter

    log = DeadLetterLog(str(tmp_path), "p", "run1", spark)
    real = dead_letter._RemoteFolder.resolve

    def as_remote(session: Any, target: str) -> Any:
        found = real(session, target)
        return dead_letter._RemoteFolder(found.jvm, found.fs, found.path, None)

    monkeypatch.setattr(dead_letter._RemoteFolder, "resolve", as_remote)
    assert log.write("load", [RECORD]) == 1
    assert log.location.endswith(f"{tmp_path}/p/run1")
    [written] = (tmp_path / "p" / "run1").glob("load-*.jsonl")
    assert json.loads(written.read_text())["key"] == {"id": 1}
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    broken = DeadLetterLog(str(blocker), "p", "run1", spark)
    with pytest.raises(TerminalError, match=r"cannot write the dead-letter log .*1 rejected rows"):
        broken.write("load", [RECORD])


@pytest.mark.parametrize(("directory", "file"), [("/", "/p/r.jsonl"), ("", "./p/r.jsonl")])
def test_a_root_or_empty_folder_makes_a_plain_path(directory: str, file: str) -> None:
    assert DeadLetterLog(directory, "p", "r").file == file


def _remote(spark: Any, target: str) -> Any:
    from etlc.runtime.dead_letter import _RemoteFolder

    found = _RemoteFolder.resolve(spark, target)
    # Hadoop's raw local file system, taken as any other: the same calls HDFS answers.
    return _RemoteFolder(found.jvm, found.fs, found.path, None)
