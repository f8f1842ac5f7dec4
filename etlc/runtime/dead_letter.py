"""The dead-letter log: rows a sink rejected, as JSON lines in a file and as log events.

A record names the pipeline, step, run, the row's key, the SQLSTATE and the constraint; never
the row's other values. Writing it is part of the load: if the file cannot be written, the run
fails rather than lose track of the rejected rows.

The file is ``<dead_letter_dir>/<pipeline>/<run id>.jsonl`` on the file system Hadoop resolves
the folder to, as for the stage and the checkpoints: a folder without a scheme is on the
cluster's default file system. On the driver's own disk the lines are appended and synced; on
any other (HDFS, S3A) the file is rewritten whole through the driver's JVM, since a driver in a
YARN or Kubernetes container loses its disk when it ends, and object stores cannot append.
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
        target = f"{directory.rstrip('/') or '/'}/{pipeline}/{run_id}.jsonl"
        self.pipeline = pipeline
        self.run_id = run_id
        self._local = Path(target)
        self._remote: _RemoteFile | None = None
        # Without a session (tests, tools) the folder is a local one, as Python reads it.
        if spark is not None:
            remote = _RemoteFile.resolve(spark, target)
            if remote.local is None:
                self._remote = remote
            else:
                self._local = Path(remote.local)
        # Where the file is, as the log events and errors name it.
        self.location = str(self._local) if self._remote is None else self._remote.uri

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
            if self._remote is None:
                self._append_local(data)
            else:
                self._remote.append(data)
        except Exception as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else summary(exc)
            raise TerminalError(
                f"cannot write the dead-letter log {self.location} ({reason}); "
                f"{len(lines)} rejected rows would be lost",
                step,
            ) from None
        return len(lines)

    def _append_local(self, data: bytes) -> None:
        self._local.parent.mkdir(parents=True, exist_ok=True)
        with self._local.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


class _RemoteFile:
    """The log file on a Hadoop file system, through the driver's JVM."""

    def __init__(self, jvm: Any, fs: Any, path: Any, local: str | None) -> None:
        self.jvm = jvm
        self.fs = fs
        self.path = path
        self.local = local  # the path on the driver's disk, when the file system is that
        self.uri = str(path.toString())

    @classmethod
    def resolve(cls, spark: SparkSession, target: str) -> _RemoteFile:
        jvm: Any = spark.sparkContext._jvm
        path = jvm.org.apache.hadoop.fs.Path(target)
        fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        qualified = fs.makeQualified(path)
        uri = qualified.toUri()
        local = str(uri.getPath()) if str(uri.getScheme()) == "file" else None
        return cls(jvm, fs, qualified, local)

    def append(self, data: bytes) -> None:
        """The lines so far and ``data``, written beside the file and renamed over it: a failure
        part way leaves the old file, or the whole new one under its temporary name."""
        fs, path = self.fs, self.path
        before = b""
        if fs.exists(path):
            stream = fs.open(path)
            try:
                before = bytes(stream.readAllBytes())
            finally:
                stream.close()
        parent = path.getParent()
        tmp = self.jvm.org.apache.hadoop.fs.Path(parent, f".{path.getName()}.{uuid.uuid4().hex}")
        out = fs.create(tmp, False)
        try:
            out.write(bytearray(before + data))
            out.hsync()
        finally:
            out.close()
        if before:
            fs.delete(path, False)
        if not fs.rename(tmp, path):
            raise OSError(f"could not rename {tmp.toString()} to {self.uri}")
