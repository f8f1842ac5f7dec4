"""What a failed S3A magic-committer job made visible, removed before its write is tried again.

The magic committer's job commit completes each task's pending multipart uploads one by one;
if it fails part way (the endpoint lost, say), the files already completed are visible in the
destination while the rest are not, and Spark reports the job as failed. An append retried
after that writes every row again under a new job, so the rows of those visible files would
land twice. The failed job's own directory, ``<destination>/__magic_job-<job id>/``, stays
behind (cleanup needs the endpoint too) and its ``.pendingset`` files name every file the job
meant to make visible: deleting those, then the directory, leaves the destination as it was
before the failed write.

Only a job directory that appeared during a write this loader saw fail is touched: another
writer's job in flight, or an earlier job whose commit succeeded but whose cleanup did not,
keeps its files.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import SparkSession

from etlc.connectors.hadoop_fs import file_system

# Hadoop 3.4 on puts a job's files in `__magic_job-<id>`, Hadoop 3.3 (Spark 3.5) in
# `__magic/job-<id>`.
JOB_DIRS = ("__magic_job-", "__magic/job-")
PENDING = (".pendingset", ".pending")


def job_dirs(spark: SparkSession, destination: str) -> set[str]:
    """The magic committer's job directories under ``destination``, as URIs."""
    jvm, fs = file_system(spark, destination)
    base = destination.rstrip("/")
    return {
        str(status.getPath().toString())
        for job_dir in JOB_DIRS
        for status in fs.globStatus(jvm.org.apache.hadoop.fs.Path(f"{base}/{job_dir}*")) or []
    }


def _text(jvm: Any, fs: Any, path: Any) -> str:
    stream = fs.open(path)
    try:
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def destinations(doc: Any) -> list[str]:
    """The files a ``.pendingset`` (a task's commits) or ``.pending`` (one commit) names."""
    commits = doc.get("commits", [doc]) if isinstance(doc, dict) else []
    if isinstance(commits, dict):  # older layouts key the commits by file
        commits = list(commits.values())
    out = []
    for commit in commits:
        if not isinstance(commit, dict):
            continue
        # `uri` is where the task wrote, under the job directory; the destination is the key.
        if commit.get("bucket") and commit.get("destinationKey"):
            out.append(f"s3a://{commit['bucket']}/{commit['destinationKey']}")
        elif commit.get("uri"):
            out.append(str(commit["uri"]))
    return out


def remove(spark: SparkSession, job_dir: str) -> list[str]:
    """Delete every file the job at ``job_dir`` named, then the directory; the files deleted."""
    jvm, fs = file_system(spark, job_dir)
    Path = jvm.org.apache.hadoop.fs.Path  # noqa: N806 - the Java class
    files = fs.listFiles(Path(job_dir), True)
    named: list[str] = []
    while files.hasNext():
        path = files.next().getPath()
        if str(path.getName()).endswith(PENDING):
            named += destinations(json.loads(_text(jvm, fs, path)))
    deleted = [uri for uri in sorted(set(named)) if fs.delete(Path(uri), False)]
    fs.delete(Path(job_dir), True)
    return deleted
