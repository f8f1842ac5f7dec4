"""A files load held back in its target's pending folder until the run's checks pass.

A single-pass batch run (see ``etlc.runtime.pipeline``) writes its load in the same Spark job
that validates its extracts. Spark writes the files, through its usual committer, into
``<target>/_etlc_pending-<id>/``: Spark, Hive and Trino readers of the target skip a folder
whose name starts with ``_``, as they skip Spark's own ``_temporary``. Once the checks pass the
files move into the target by rename; when they fail the folder is removed and the target is
as it was, old files and all (a plain Spark overwrite removes those before its job starts).

Only where a rename is a metadata operation: the local file system and HDFS. An object store
copies every byte on rename, so S3 loads are never held back this way.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pyspark.sql import SparkSession

from etlc.connectors.hadoop_fs import file_system
from etlc.runtime.errors import TerminalError, summary

PENDING_PREFIX = "_etlc_pending-"
RENAMING_SCHEMES = frozenset({"file", "hdfs"})
# What publishing replaces: the whole target (an overwrite), the partitions written (an
# overwrite of a partitioned target, as Spark's dynamic mode does), or nothing (an append).
Replace = Literal["all", "partitions", "none"]


def renames_in_place(spark: SparkSession, target: str) -> bool:
    """Whether ``target``'s file system renames without copying."""
    _, fs = file_system(spark, target)
    return str(fs.getScheme()) in RENAMING_SCHEMES


def pending_path(target: str) -> str:
    """A new pending folder inside ``target``."""
    return f"{target.rstrip('/')}/{PENDING_PREFIX}{uuid.uuid4().hex}"


def missing(spark: SparkSession, target: str) -> list[str]:
    """``target`` and those of its parent folders that do not exist yet, deepest first: the
    folders a write there creates."""
    jvm, fs = file_system(spark, target)
    folder = fs.makeQualified(jvm.org.apache.hadoop.fs.Path(target))
    out: list[str] = []
    while folder is not None and not fs.exists(folder):
        out.append(str(folder.toString()))
        folder = folder.getParent()
    return out


def discard(spark: SparkSession, pending: str, *, made: Sequence[str] = ()) -> str | None:
    """Remove ``pending``, then each folder of ``made`` (deepest first) that the write created
    and nothing else has filled; None when done, else why not. It never raises: it runs while
    another error is on its way up, which must stay the one reported."""
    try:
        jvm, fs = file_system(spark, pending)
        fs.delete(jvm.org.apache.hadoop.fs.Path(pending), True)
        for created in made:
            folder = jvm.org.apache.hadoop.fs.Path(created)
            if not fs.exists(folder) or fs.listStatus(folder):
                break
            fs.delete(folder, False)
    except Exception as exc:
        return summary(exc)
    return None


def publish(spark: SparkSession, pending: str, target: str, replace: Replace, depth: int) -> None:
    """Move what Spark wrote into ``pending`` into ``target`` (``depth``: how many partition
    folders deep its files are), replacing what ``replace`` says, then remove ``pending``."""
    jvm, fs = file_system(spark, target)
    path = jvm.org.apache.hadoop.fs.Path
    source, destination = fs.makeQualified(path(pending)), fs.makeQualified(path(target))
    moved: list[str] = []
    try:
        if replace == "all":
            for child in fs.listStatus(destination):
                # Another run's pending folder is that run's to publish or remove.
                if not child.getPath().getName().startswith(PENDING_PREFIX):
                    fs.delete(child.getPath(), True)
        level = depth if replace == "partitions" else 0
        for entry in _entries(fs, source, level, files_only=replace == "none"):
            relative = str(entry.toUri().getPath())[len(str(source.toUri().getPath())) + 1 :]
            into = path(destination, relative)
            if fs.exists(into) and (replace != "none" or not fs.getFileStatus(into).isDirectory()):
                fs.delete(into, True)  # a partition replaced, or the _SUCCESS marker
            fs.mkdirs(into.getParent())
            if not fs.rename(entry, into):
                raise OSError(f"rename of {entry} to {into} refused")
            moved.append(relative)
        fs.delete(source, True)
    except Exception as exc:
        raise TerminalError(_part_way(target, pending, replace, moved, summary(exc))) from exc


def _part_way(target: str, pending: str, replace: Replace, moved: list[str], why: str) -> str:
    """What a publish that failed part way left, and what to do before the next run."""
    head = f"files load {target}: moving the written files in failed part way ({why}); "
    rest = f"the files not moved yet are in {pending}"
    if replace != "none":
        return f"{head}the target may be incomplete and {rest}: a new run writes it whole"
    if not moved:
        return f"{head}nothing was added to the target; {rest}"
    shown = ", ".join(moved[:5]) + (f" and {len(moved) - 5} more" if len(moved) > 5 else "")
    return (
        f"{head}{len(moved)} file(s) were added to the target already ({shown}); {rest}. "
        "Remove the added files before a new run, which would append their records again"
    )


def _entries(fs: Any, folder: Any, level: int, *, files_only: bool) -> list[Any]:
    """What to move out of ``folder``: its folders ``level`` deep (partitions; 0 or 1: its
    entries) and the files on the way there (``_SUCCESS``), or every file under it."""
    out: list[Any] = []
    for status in fs.listStatus(folder):
        if status.isDirectory() and (files_only or level > 1):
            out += _entries(fs, status.getPath(), level - 1, files_only=files_only)
        else:
            out.append(status.getPath())
    return out
