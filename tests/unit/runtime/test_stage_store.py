"""The stage store's write: validity partitions, counts, and the session left as it was."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrameWriter

from etlc.runtime.errors import NoSpaceError
from etlc.runtime.stage_store import StageStore

RULES = (("rule:positive", "(n > 0) IS NOT FALSE"),)


@pytest.mark.parametrize("before", [None, "7"])
def test_a_validated_write_counts_and_leaves_the_session_conf_as_it_was(
    spark: Any, tmp_path: Path, before: str | None
) -> None:
    key = "spark.sql.maxConcurrentOutputFileWriters"
    if before is not None:
        spark.conf.set(key, before)
    try:
        store = StageStore(spark, str(tmp_path), "run", 1)
        df = spark.createDataFrame([(1,), (-2,), (3,)], "n INT")
        result = store.write_validated("numbers", df, RULES)
        assert (result.records, result.invalid, result.violations) == (3, 1, {"rule:positive": 1})
        assert spark.conf.get(key, None) == before
        valid = store.read_valid("numbers", df.schema)
        assert sorted(r.n for r in valid.collect()) == [1, 3]
    finally:
        spark.conf.unset(key)


def test_a_full_stage_filesystem_is_named_and_other_write_failures_pass_through(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failure: list[BaseException] = [OSError(errno.ENOSPC, "No space left on device")]

    def save(self: DataFrameWriter, path: str | None = None, **kwargs: Any) -> None:
        raise failure[0]

    monkeypatch.setattr(DataFrameWriter, "save", save)
    store = StageStore(spark, str(tmp_path / "stage"), "run", 1)
    df = spark.createDataFrame([(1,)], "n INT")
    with pytest.raises(NoSpaceError) as full:
        store.write_validated("numbers", df, RULES)
    assert full.value.step == "numbers" and full.value.kind == "no_space"
    assert f"the stage directory {tmp_path / 'stage'} (etlc.stage_dir) is full" in str(full.value)
    failure[0] = PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(PermissionError):
        store.write_validated("numbers", df, RULES)


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_cleanup_removes_the_attempts_stage_where_spark_wrote_it(
    spark: Any, tmp_path: Path, scheme: str
) -> None:
    """A root without a scheme is on Spark's default file system (HDFS on YARN), so cleanup goes
    through Hadoop's file system as the write did, not the driver's disk."""
    store = StageStore(spark, f"{scheme}{tmp_path}", "run", 1)
    other = StageStore(spark, f"{scheme}{tmp_path}", "run", 2)
    df = spark.createDataFrame([(1,)], "n INT")
    store.write_validated("numbers", df, RULES)
    other.write_validated("numbers", df, RULES)
    store.cleanup()
    assert not (tmp_path / "run" / "attempt-1").exists()
    assert (tmp_path / "run" / "attempt-2" / "numbers").is_dir()


def test_a_cleanup_that_fails_says_why_and_never_raises(spark: Any, tmp_path: Path) -> None:
    """It runs in the pipelines' finally blocks: an unreachable file system must not replace
    the run's own outcome."""
    store = StageStore(spark, "nosuchscheme://nowhere/stage", "run", 1)
    reason = store.cleanup()
    assert reason is not None and "nosuchscheme" in reason
    assert StageStore(spark, str(tmp_path), "run", 1).cleanup() is None
