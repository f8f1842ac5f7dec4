"""Durations a definition writes (windows, slides, watermarks, refreshes): "10 minutes".

Spark takes them as intervals; past a leap year a window or watermark is a mistake, and its
seconds would overflow the run time's intervals long before a digit limit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag

MAX_DURATION_SECONDS = 366 * 86_400
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
_DURATION_TEXT = re.compile(r"([0-9]{1,12}) (second|minute|hour|day|week)s?")


def seconds(duration: str) -> int:
    """The seconds of a duration the definition schema's pattern has already accepted."""
    m = _DURATION_TEXT.fullmatch(duration)
    assert m is not None  # the schema's pattern guarantees the shape
    return int(m.group(1)) * UNIT_SECONDS[m.group(2)]


def duration_problems(durations: Iterable[ast.Name]) -> list[Diagnostic]:
    """E216 for each duration outside 1 second to 366 days."""
    found: list[Diagnostic] = []
    for d in durations:
        m = _DURATION_TEXT.fullmatch(d.value)
        total = int(m.group(1)) * UNIT_SECONDS[m.group(2)] if m else None
        if total is None or not 0 < total <= MAX_DURATION_SECONDS:
            found.append(
                diag(
                    "E216",
                    f"duration {d.value[:40]!r} is not between 1 second and 366 days",
                    d.span,
                    'write e.g. "10 minutes"; windows, watermarks and refreshes are at most '
                    "366 days",
                )
            )
    return found
