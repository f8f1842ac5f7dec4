"""The streaming benchmark's start-up figure: when a stream's latency settles for good."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bench.stream_seed import steady_after

LAUNCHED = datetime(2026, 12, 7, 12, 0, tzinfo=timezone.utc).timestamp()


def batch(second: int, p95: int | None) -> dict[str, Any]:
    ts = datetime.fromtimestamp(LAUNCHED + second, timezone.utc).isoformat()
    return {"ts": ts.replace("+00:00", "Z"), "latency_ms": None if p95 is None else {"p95": p95}}


def test_steady_state_starts_after_the_last_batch_over_the_limit() -> None:
    # 9 s, then under 5 s from the batch ending at 14 s, under 2 s only from 18 s (a relapse
    # at 16 s restarts the 2 s count); an empty batch (no latency) changes nothing.
    progress = [
        batch(10, 9_000),
        batch(14, 4_000),
        batch(15, 1_900),
        batch(16, 2_500),
        batch(17, None),
        batch(18, 1_500),
        batch(19, 1_400),
    ]
    assert steady_after(progress, LAUNCHED) == {
        "p95_under_5000_ms": 14.0,
        "p95_under_2000_ms": 18.0,
    }


def test_a_stream_still_over_the_limit_at_its_end_never_settled() -> None:
    progress = [batch(10, 1_000), batch(12, 6_000)]
    assert steady_after(progress, LAUNCHED) == {
        "p95_under_5000_ms": None,
        "p95_under_2000_ms": None,
    }
    assert steady_after([], LAUNCHED, (5_000,)) == {"p95_under_5000_ms": None}
