"""The benchmark's progress lines: on stderr, so stdout keeps the results' JSON lines."""

from __future__ import annotations

import time

import pytest

from bench.__main__ import progress


def test_a_scenario_says_when_it_starts_runs_on_and_ends(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with progress("streaming", 2, 7, every=0.05):
        time.sleep(0.18)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0].endswith(" [2/7] streaming: started")
    assert lines[-1].endswith(" [2/7] streaming: finished in 0 s")
    ticks = lines[1:-1]
    assert ticks and all(" [2/7] streaming: running for " in t for t in ticks)


def test_a_failing_scenario_still_ends_its_progress(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), progress("upsert", 1, 1):
        raise RuntimeError("the database went away")
    assert capsys.readouterr().err.splitlines()[-1].endswith("upsert: finished in 0 s")
