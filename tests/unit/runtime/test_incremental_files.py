"""Incremental files extracts on the local file system: each run reads the files its loads have
not read, by name, whatever their order of modification within the lookback."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from etlc.connectors.files import FilesExtractor, FilesLoader, _hidden
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.incremental import PositionFile
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.report import Status
from etlc.runtime.state_command import reset_state
from tests.unit.runtime.items import SCHEMA
from tests.unit.runtime.log_lines import events
from tests.unit.runtime.test_incremental import ids, run

HOUR_MS = 3_600_000
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, in seconds


def write(folder: Path, name: str, first: int, last: int, modified: int) -> Path:
    """A CSV file of items ``first``..``last``, modified at ``modified`` (seconds)."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = ["id,kind,qty", *(f"{i},A,{i}" for i in range(first, last + 1))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    os.utime(path, (modified, modified))
    return path


def graph(folder: Path, out: Path) -> PipelineGraph:
    extractor = FilesExtractor(
        str(folder),
        "csv",
        SCHEMA,
        {"header": "true"},
        incremental={"kind": "files", "lookback": HOUR_MS},
    )
    return PipelineGraph(
        name="items",
        extracts=(ExtractStep("items", extractor, SCHEMA),),
        transforms=(),
        loads=(LoadStep("out", "items", FilesLoader(str(out), "parquet"), "append"),),
    )


def test_each_run_reads_the_files_not_read_and_a_late_one_within_the_lookback(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    g = graph(folder, out)
    write(folder, "a.csv", 1, 3, T0)
    write(folder, "b.csv", 4, 5, T0)
    write(folder, "_SUCCESS", 0, -1, T0 + 60)  # left out, as Spark leaves it out
    write(folder, ".b.csv.crc", 0, -1, T0 + 60)
    assert run(spark, g, tmp_path, "r1").status is Status.SUCCESS
    assert ids(spark, out) == [1, 2, 3, 4, 5]

    write(folder, "c.csv", 6, 7, T0 + 600)
    assert run(spark, g, tmp_path, "r2").status is Status.SUCCESS
    # Written after r2, modified before c: 20 minutes before the newest read, within the
    # lookback (an hour), so read; 110 minutes before it, past the lookback, so not.
    write(folder, "late.csv", 8, 8, T0 - 1200)
    write(folder, "too-late.csv", 9, 9, T0 + 600 - 7200)
    assert run(spark, g, tmp_path, "r3").status is Status.SUCCESS
    assert run(spark, g, tmp_path, "r4").status is Status.SUCCESS  # nothing new
    assert ids(spark, out) == [1, 2, 3, 4, 5, 6, 7, 8]  # each once

    assert {e["lookback"] for e in events(log_stream, "incremental_range")} == {"3600 s"}
    reads = [e["records"] for e in events(log_stream, "incremental_read")]
    assert reads == [5, 2, 1, 0]
    kept = PositionFile(spark, str(tmp_path / "state"), "items", "out").read()["items"]
    assert kept["covered_upto"] == (T0 + 600) * 1000 - HOUR_MS
    # Every file modified after that, by name: the late one too.
    assert sorted(Path(p).name for p in kept["seen"]) == ["a.csv", "b.csv", "c.csv", "late.csv"]
    [*_, last] = events(log_stream, "incremental_read")
    assert last["reached"].startswith(
        "files modified up to 2025-12-31T23:10:00.000Z and 4 after it (listed 20"
    )


def test_a_glob_leaves_out_the_names_its_wildcards_match_as_spark_does(
    spark: SparkSession, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    write(folder, "day=1/a.csv", 1, 1, T0)
    write(folder, "_temporary/0/a.csv", 2, 2, T0)  # a job still writing
    write(folder, "day=2/_SUCCESS", 0, -1, T0)
    ex = graph(Path(f"{folder}/*"), tmp_path / "out").extracts[0].extractor
    assert isinstance(ex, FilesExtractor)
    assert [Path(p).name for p in ex.listing(spark)] == ["a.csv"]
    assert sorted(ex.listing(spark))[0].endswith("/in/day=1/a.csv")


def test_names_spark_leaves_out_of_a_folder_are_left_out() -> None:
    assert not _hidden("a.csv") and not _hidden("day=2/b.csv") and not _hidden("_day=2/b.csv")
    assert _hidden("_SUCCESS") and _hidden(".a.csv.crc") and _hidden("_temporary/0/a.csv")
    assert _hidden("a.csv._COPYING_") and _hidden("x/.hidden/a.csv")


def test_an_operator_rewinds_a_folder_to_a_time_and_the_next_run_reads_what_is_newer(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    g = graph(folder, out)
    write(folder, "a.csv", 1, 2, T0)
    write(folder, "b.csv", 3, 4, T0 + 7200)
    assert run(spark, g, tmp_path, "r1").status is Status.SUCCESS
    env = Environment("test", "test.json", settings=Settings(state_dir=str(tmp_path / "state")))
    log = EventLog(RunContext("items", run_id="op1"))
    reset_state(g, spark, env, log, extract="items", to="2026-01-01T01:00:00Z")
    [moved] = events(log_stream, "incremental_position_set")
    assert moved["after"].startswith("files modified up to 2026-01-01T01:00:00.000Z and 0")
    assert moved["next_run"] == "the files not read yet"
    assert run(spark, g, tmp_path, "r2").status is Status.SUCCESS
    assert ids(spark, out) == [1, 2, 3, 3, 4, 4]  # b.csv again, as asked; a.csv not
    with pytest.raises(ConfigurationError, match="is not a files position"):
        reset_state(g, spark, env, log, extract="items", to='{"seen": []}')


def test_a_folder_is_listed_as_spark_reads_it(spark: SparkSession, tmp_path: Path) -> None:
    """Its own files and its partition folders', not a folder beside them (an archive of
    files already read, say) unless `recursive` is set; names with glob characters read as
    themselves; a folder gone after the first run holds nothing."""
    folder, out = tmp_path / "in", tmp_path / "out"
    write(folder, "a[1].csv", 1, 1, T0)
    write(folder, "a1.csv", 2, 2, T0)
    write(folder, "processed/old.csv", 3, 3, T0)
    ex = graph(folder, out).extracts[0].extractor
    assert isinstance(ex, FilesExtractor)
    assert sorted(Path(p).name for p in ex.listing(spark)) == ["a1.csv", "a[1].csv"]
    ex.options["recursiveFileLookup"] = "true"
    assert len(ex.listing(spark)) == 3
    ex.options.pop("recursiveFileLookup")
    rows = ex.extract_range(spark, None, None).collect()
    assert sorted(r.id for r in rows) == [1, 2]  # each file once, a[1].csv as itself
    gone = FilesExtractor(str(tmp_path / "gone"), "csv", SCHEMA, {"header": "true"})
    assert gone.listing(spark, must_exist=False) == {}
    with pytest.raises(ConfigurationError, match="no file or folder there"):
        gone.listing(spark)
