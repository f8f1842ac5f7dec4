"""A run's files: the run id that names them, the lines file, the results file."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.report import RunReport, Status, StepMetrics
from etlc.runtime.run_files import AppendHandler, RunFiles, check_run_id
from etlc.vault.secret import Secret


@pytest.mark.parametrize(
    "run_id", ["abc", "9f2c", "scheduled__2026-12-06T00.00.00+00.00", "a=b", "x" * 128]
)
def test_a_run_id_is_a_name(run_id: str) -> None:
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id",
    ["", "..", "../../etc/x", "a/b", "/abs", ".hidden", "-rf", "a b", "a:b", "a\nb", "x" * 129,
     "caf\u00e9", "a\\b", "a\x00b"],
)  # fmt: skip
def test_a_run_id_that_could_be_a_path_or_break_one_is_refused(run_id: str) -> None:
    with pytest.raises(ConfigurationError, match=r"letters, digits and _ \. \+ = - only"):
        check_run_id(run_id)


def test_the_files_are_made_owner_only_under_the_pipelines_folder(tmp_path: Path) -> None:
    files = RunFiles.open(str(tmp_path / "runs"), "env.json", RunContext("orders", run_id="r1"))
    assert files.lines == tmp_path / "runs" / "orders" / "r1.jsonl"
    assert files.results == tmp_path / "runs" / "orders" / "r1.json"
    assert files.lines.read_bytes() == b""
    assert stat.S_IMODE(files.lines.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.lines.parent.stat().st_mode) == 0o700


def test_a_relative_or_file_uri_folder_is_the_drivers_own_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = RunFiles.open(".etlc/runs", "env.json", RunContext("p", run_id="r"))
    assert files.lines == tmp_path / ".etlc" / "runs" / "p" / "r.jsonl"  # absolute, for the JVM
    uri = RunFiles.open(f"file://{tmp_path}/u", "env.json", RunContext("p", run_id="r"))
    assert uri.lines == tmp_path / "u" / "p" / "r.jsonl"
    short = RunFiles.open(f"file:{tmp_path}/s%20t", "env.json", RunContext("p", run_id="r"))
    assert short.lines == tmp_path / "s t" / "p" / "r.jsonl"  # Hadoop's usual form


@pytest.mark.parametrize(
    "runs_dir", ["hdfs:///etlc/runs", "s3a://bucket/runs", "hdfs:/etlc/runs", "file://host/p"]
)
def test_a_folder_elsewhere_is_refused_naming_the_environment_file(runs_dir: str) -> None:
    with pytest.raises(ConfigurationError, match=r"prod.json: `etlc.runs_dir` must be a folder"):
        RunFiles.open(runs_dir, "prod.json", RunContext("p"))


def test_a_link_left_where_the_lines_go_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    (tmp_path / "p" / "r.jsonl").symlink_to(target)
    with pytest.raises(OSError):
        RunFiles.open(str(tmp_path), "env.json", RunContext("p", run_id="r"))
    assert target.read_text() == "keep\n"


def test_every_line_is_appended_whole_as_json_without_secrets(tmp_path: Path) -> None:
    files = RunFiles.open(str(tmp_path), "env.json", RunContext("p", run_id="r"))
    files.lines.write_text('{"event": "spark_stage_completed"}\n')  # the JVM's, say
    logger = logging.getLogger("etlc.test_run_files")
    logger.propagate = False
    handler = AppendHandler(files.lines)
    logger.addHandler(handler)
    secret = Secret("run-file-secret-value")
    try:
        EventLog(RunContext("p", run_id="r"), logger).error("boom", error=secret.reveal())
    finally:
        logger.removeHandler(handler)
        handler.close()
    first, second = files.lines.read_text().splitlines()
    assert json.loads(first) == {"event": "spark_stage_completed"}
    line = json.loads(second)
    assert (line["event"], line["run_id"], line["level"]) == ("boom", "r", "error")
    assert "run-file-secret-value" not in second
    assert handler.fd == -1


def test_the_results_say_how_the_run_ended_and_replace_the_file_whole(tmp_path: Path) -> None:
    files = RunFiles.open(str(tmp_path), "env.json", RunContext("p", run_id="r"))
    report = RunReport("p", "r", Status.PARTIAL, attempts=2, duration_ms=1500)
    report.steps.append(StepMetrics("orders", "extract", 10, 9, 700))
    files.results.write_text("old")
    files.write_results(report, 1_800_000_000.25, mode="batch", env="prod")
    results = json.loads(files.results.read_text())
    assert {k: results[k] for k in ("pipeline", "run_id", "mode", "env", "status")} == {
        "pipeline": "p",
        "run_id": "r",
        "mode": "batch",
        "env": "prod",
        "status": "PARTIAL",
    }
    assert (results["exit_code"], results["attempts"], results["duration_ms"]) == (3, 2, 1500)
    assert results["started_at"] == "2027-01-15T08:00:00.250Z"
    assert results["steps"] == [
        {"step": "orders", "stage": "extract", "records_in": 10, "records_out": 9,
         "duration_ms": 700}
    ]  # fmt: skip
    assert results["lines"] == str(files.lines)
    assert sorted(os.listdir(files.results.parent)) == ["r.json", "r.jsonl"]  # no partial left
    assert stat.S_IMODE(files.results.stat().st_mode) == 0o600


def test_a_file_that_cannot_take_more_lines_stops_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = RunFiles.open(str(tmp_path), "env.json", RunContext("p", run_id="r"))
    handler = AppendHandler(files.lines)
    os.close(handler.fd)
    handler.fd = os.open("/dev/full", os.O_WRONLY)  # every write: no space left on device
    logger = logging.getLogger("etlc")
    logger.addHandler(handler)
    try:
        EventLog(RunContext("p", run_id="r")).warning("one")
        EventLog(RunContext("p", run_id="r")).warning("two")
    finally:
        logger.removeHandler(handler)
    assert handler.fd == -1
    assert "Traceback" not in capsys.readouterr().err
