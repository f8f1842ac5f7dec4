"""The events a test's log stream holds."""

from __future__ import annotations

import io
import json
from typing import Any


def events(stream: io.StringIO, name: str | None = None) -> list[dict[str, Any]]:
    """Every event in ``stream``, or only those called ``name``."""
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in found if name is None or e["event"] == name]
