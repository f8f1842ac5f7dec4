"""A run's files on the driver: its JSON lines and its results, under the environment's
``runs_dir``: ``<runs_dir>/<pipeline>/<run id>.jsonl`` and ``<run id>.json``.

The lines file holds every JSON line of the run, whatever the console shows, and the JVM's
stage lines too (the Python side makes the file; the JVM only appends to it). The results
file, written once at the end (like dbt's ``run_results.json``), says how the run ended:
status, exit code, attempts, timings, and each step's counts. Both are made owner-only: a
validation failure's line carries a sample of records.

A run id names these files and the run's stage and dead-letter folders, so it is checked
before anything is made: a name, never a path.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from etlc import __version__
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.logs import LOGGER_NAME, JsonFormatter, RunContext
from etlc.runtime.report import RunReport
from etlc.vault.redaction import RedactingFilter, scrub_value

# Letters, digits and `_ . + = -`, starting with a letter or digit: a name in any file system
# Spark writes to (HDFS refuses `:`), never `..` or a folder. An orchestrator's run id such
# as Airflow's `scheduled__2026-12-06T00:00:00+00:00` fits once its colons are replaced.
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]{0,127}")
# Never through a link someone left where the run's file goes.
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW


def check_run_id(run_id: str) -> str:
    if RUN_ID.fullmatch(run_id) is None:
        raise ConfigurationError(
            f"run id {json.dumps(run_id)[:80]} is not usable: it names the run's files and "
            "folders, so use letters, digits and _ . + = - only (at most 128, starting with a "
            "letter or digit)"
        )
    return run_id


def _local_folder(runs_dir: str, path: str) -> Path:
    """A folder on this machine: a path, or a ``file:`` URI without a host."""
    parts = urlsplit(runs_dir)
    # One letter before a colon is a Windows drive, not a scheme.
    if len(parts.scheme) > 1 and (parts.scheme != "file" or parts.netloc not in ("", "localhost")):
        raise ConfigurationError(
            f"{path}: `etlc.runs_dir` must be a folder on the driver's own disk, not {runs_dir}"
        )
    return Path(unquote(parts.path) if parts.scheme == "file" else runs_dir)


class AppendHandler(logging.Handler):
    """Each line written whole, in one write to a file opened for appending: the JVM's stage
    lines go to the same file the same way, and neither splits the other's lines."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.fd = os.open(path, _APPEND, 0o600)
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if self.fd < 0:
            return
        try:
            data = (self.format(record) + "\n").encode("utf-8")
            while data:
                data = data[os.write(self.fd, data) :]
        except OSError as exc:
            # A full disk must not end the run, and one warning says it: the console has
            # every line, the file stops here.
            self.close()
            logging.getLogger(LOGGER_NAME).warning(
                "run_file_stopped",
                extra={"etlc": {"path": str(self.path), "error": exc.strerror}},
            )

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        super().close()


@dataclass(frozen=True)
class RunFiles:
    lines: Path
    results: Path

    @classmethod
    def open(cls, runs_dir: str, env_path: str, context: RunContext) -> RunFiles:
        """The run's two paths, its folder made and its lines file there (a run started again
        with the same id appends to it)."""
        # Absolute: the JVM, which appends to the lines file too, is told its path.
        folder = _local_folder(runs_dir, env_path).absolute() / context.pipeline
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        files = cls(folder / f"{context.run_id}.jsonl", folder / f"{context.run_id}.json")
        os.close(os.open(files.lines, _APPEND, 0o600))
        return files

    def write_results(self, report: RunReport, started: float, **run: Any) -> None:
        """The results file, replaced whole: a reader never sees half of it."""
        results = {
            "etlc_version": __version__,
            "pipeline": report.pipeline,
            "run_id": report.run_id,
            **run,
            "started_at": _iso(started),
            "finished_at": _iso(time.time()),
            **report.as_log(),
            "lines": str(self.lines),
        }
        partial = self.results.with_name(f".{self.results.name}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(scrub_value(results), out, indent=2, default=str, ensure_ascii=False)
            out.write("\n")
        os.replace(partial, self.results)


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
