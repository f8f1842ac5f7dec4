"""The dead-letter log: rows a sink rejected, as JSON lines in a file and as log events.

A record names the pipeline, step, run, the row's key, the SQLSTATE and the constraint; never
the row's other values. Writing it is part of the load: if the file cannot be written, the run
fails rather than lose track of the rejected rows.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from etlc.runtime.errors import TerminalError
from etlc.vault.redaction import scrub_value


class DeadLetterLog:
    def __init__(self, directory: str, pipeline: str, run_id: str) -> None:
        self.path = Path(directory) / pipeline / f"{run_id}.jsonl"
        self.pipeline = pipeline
        self.run_id = run_id

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise TerminalError(
                f"cannot write the dead-letter log {self.path} ({exc.strerror}); "
                f"{len(lines)} rejected rows would be lost",
                step,
            ) from None
        return len(lines)
