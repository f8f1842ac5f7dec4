"""A failed magic-committer job's visible files are found from its pending sets and removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.connectors import magic_jobs


def pending_set(job: Path, task: str, files: list[Path]) -> None:
    """A task's .pendingset as the S3A magic committer writes it (the fields read here)."""
    commits = [{"uri": f.as_uri()} for f in files]  # no bucket on a local filesystem
    target = job / f"job-{job.name}" / "tasks" / f"{task}.pendingset"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"version": 3, "commits": commits}), encoding="utf-8")


@pytest.mark.parametrize("job_dir", magic_jobs.JOB_DIRS)  # Hadoop 3.4 on, and 3.3 (Spark 3.5)
def test_the_files_a_failed_job_made_visible_go_and_nothing_else(
    spark: Any, tmp_path: Path, job_dir: str
) -> None:
    table = tmp_path / "orders"
    table.mkdir()
    earlier = table / "part-00000-earlier.json"
    earlier.write_text("{}\n")
    visible = table / "part-00002-failed.json"
    visible.write_text("{}\n")
    never = table / "part-00003-failed.json"  # its upload never completed: not there
    job = table / f"{job_dir}failed"
    pending_set(job, "task-2", [visible])
    pending_set(job, "task-3", [never])
    dirs = magic_jobs.job_dirs(spark, table.as_uri())
    assert [Path(d.removeprefix("file:")).name for d in dirs] == [job.name]
    assert magic_jobs.remove(spark, dirs.pop()) == [visible.as_uri()]
    # Hadoop 3.3's emptied `__magic` may stay: hidden from readers, as `_` names are.
    assert sorted(p.name for p in table.iterdir() if p.name != "__magic") == [earlier.name]


def test_no_job_directory_under_a_new_destination(spark: Any, tmp_path: Path) -> None:
    assert magic_jobs.job_dirs(spark, (tmp_path / "not-yet").as_uri()) == set()


def test_destinations_read_every_layout_of_a_commit() -> None:
    assert magic_jobs.destinations({"commits": [{"uri": "s3a://b/k1"}]}) == ["s3a://b/k1"]
    # On S3 `uri` is the task's file under the job directory: the destination is the key.
    magic = {"uri": "s3a://b/t/__magic_job-1/x/__base/k0", "bucket": "b", "destinationKey": "t/k0"}
    assert magic_jobs.destinations({"commits": [magic]}) == ["s3a://b/t/k0"]
    one = {"bucket": "b", "destinationKey": "t/k2"}  # a single .pending
    assert magic_jobs.destinations(one) == ["s3a://b/t/k2"]
    keyed = {"commits": {"k3": {"uri": "s3a://b/k3"}, "x": "not a commit"}}
    assert magic_jobs.destinations(keyed) == ["s3a://b/k3"]
    assert magic_jobs.destinations([]) == [] and magic_jobs.destinations({"commits": [{}]}) == []
