"""The dead-letter log: rows a sink rejected, as JSON lines in a file and as log events.

A record names the pipeline, step, run, the row's key, the SQLSTATE and the constraint; never
the row's other values. Writing it is part of the load: if the file cannot be written, the run
fails rather than lose track of the rejected rows.

The folder is resolved by Hadoop, as the stage and the checkpoints are: without a scheme it is
on the cluster's default file system, which outlives a driver in a YARN or Kubernetes
container. On the driver's own disk the records go to ``<dead_letter_dir>/<pipeline>/<run
id>.jsonl``, appended and synced; on any other file system (HDFS, S3A) each write is a new file
``<dead_letter_dir>/<pipeline>/<run id>/<step>-<unique>.jsonl`` through the driver's JVM, since
object stores cannot append and a file never rewritten loses nothing to a concurrent writer.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from etlc.runtime.errors import TerminalError, summary
from etlc.vault.redaction import scrub_value


class DeadLetterLog:
    def __init__(
        self, directory: str, pipeline: str, run_id: str, spark: SparkSession | None = None
    ) -> None:
        root = directory.rstrip("/") or ("/" if directory.startswith("/") else ".")
        self.folder = f"{root.rstrip('/')}/{pipeline}"
        self.pipeline = pipeline
        self.run_id = run_id
        self._spark = spark
        self._local: Path | None = None if spark is not None else Path(self.file)
        self._remote: _RemoteFolder | None = None
        # Where the records are, as the log events and errors name it: the file on the
        # driver's disk, or the run's folder of files on any other file system.
        self.location = self.file

    @property
    def file(self) -> str:
        return f"{self.folder}/{self.run_id}.jsonl"

    def write(self, step: str, records: Iterable[Mapping[str, Any]]) -> int:
        lines = [
            json.dumps(
                # A key column can hold anything, even a value the run resolved as a secret.
                scrub_value(
                    {"pipeline": self.pipeline, "run_id": self.run_id, "step": step, **record}
                ),
                default=str,
                sort_keys=True,
            )
            for record in records
        ]
        if not lines:
            return 0
        data = ("\n".join(lines) + "\n").encode("utf-8")
        try:
            self._resolve()
            if self._remote is not None:
                self._remote.add(step, data)
            else:
                assert self._local is not None
                _append_local(self._local, data)
        except Exception as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else summary(exc)
            raise TerminalError(
                f"cannot write the dead-letter log {self.location} ({reason}); "
                f"{len(lines)} rejected rows would be lost",
                step,
            ) from None
        return len(lines)

    def _resolve(self) -> None:
        """Where the folder is, asked of Hadoop once (the first write, inside its error
        handling: an object store's client may fail to start)."""
        if self._local is not None or self._remote is not None:
            return
        assert self._spark is not None
        remote = _RemoteFolder.resolve(self._spark, f"{self.folder}/{self.run_id}")
        if remote.local is None:
            self._remote = remote
            self.location = remote.uri
        else:
            self._local = Path(remote.local + ".jsonl")
            self.location = str(self._local)


def _append_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


class _RemoteFolder:
    """The run's dead letters on a Hadoop file system, one file per write: object stores
    cannot append, and files that are never rewritten cannot lose what another write (a
    concurrent stream's, or an earlier attempt's) put there."""

    def __init__(self, jvm: Any, fs: Any, path: Any, local: str | None) -> None:
        self.jvm = jvm
        self.fs = fs
        self.path = path
        self.local = local  # the path on the driver's disk, when the file system is that
        self.uri = str(path.toString())

    @classmethod
    def resolve(cls, spark: SparkSession, target: str) -> _RemoteFolder:
        jvm: Any = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(target)
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        qualified = fs.makeQualified(path)
        uri = qualified.toUri()
        local = str(uri.getPath()) if str(uri.getScheme()) == "file" else None
        return cls(jvm, fs, qualified, local)

    def add(self, step: str, data: bytes) -> None:
        """``data`` as a new file ``<step>-<unique>.jsonl``, written under a hidden name and
        renamed when whole: a failure part way leaves no half file among the records."""
        name = f"{step}-{uuid.uuid4().hex[:16]}.jsonl"
        hadoop_path = self.jvm.org.apache.hadoop.fs.Path
        final, tmp = hadoop_path(self.path, name), hadoop_path(self.path, f".{name}.tmp")
        out = self.fs.create(tmp, False)
        try:
            out.write(bytearray(data))
            out.hsync()
        finally:
            out.close()
        if not self.fs.rename(tmp, final):
            raise OSError(f"could not rename {tmp.toString()} to {final.toString()}")
