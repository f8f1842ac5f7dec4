"""Positions of each kind: how they order, where a read starts, how an operator reads and writes
them (no Spark: the column predicates are tested with the runs, in test_incremental)."""

from __future__ import annotations

import pytest

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.positions import (
    OffsetPositions,
    files_between,
    files_end,
    kind_of,
    lookback_shown,
    parsed,
    shown,
)
from etlc.runtime.strategies import Incremental

OFFSETS = OffsetPositions()


def test_offsets_of_loads_that_stand_apart_are_compared_partition_by_partition() -> None:
    behind = {"orders": {"0": 10, "1": 40}}
    ahead = {"orders": {"0": 25, "1": 40, "2": 3}}
    # A partition one load has never read is read from its start: it is not in the lowest.
    assert OFFSETS.lowest([behind, ahead]) == {"orders": {"0": 10, "1": 40}}
    assert OFFSETS.highest([behind, ahead]) == {"orders": {"0": 25, "1": 40, "2": 3}}
    assert OFFSETS.lowest([ahead]) == ahead
    assert OFFSETS.start(behind, 0) == behind  # no lookback: offsets are exact


@pytest.mark.parametrize(
    "value",
    [
        {"orders": {"0": 1, "10": 0}},
        {"orders": {"0": 2**63 - 1}, "other.topic-1": {"3": 7}},
    ],
)
def test_offsets_etlc_writes_are_valid(value: dict[str, dict[str, int]]) -> None:
    assert OFFSETS.valid(value)
    assert parsed(shown(value, "offsets"), "offsets") == value  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        7,
        "{}",
        {},
        {"orders": {}},
        {"orders": {"0": -1}},
        {"orders": {"0": 2**63}},
        {"orders": {"x": 1}},
        {"orders": {"0": True}},
        {"orders": {"0": 1.5}},
        {"bad topic": {"0": 1}},
        {"orders": [1, 2]},
    ],
)
def test_anything_else_kept_as_offsets_is_refused(value: object) -> None:
    assert not OFFSETS.valid(value)


def test_an_operator_writes_offsets_as_json_and_reads_them_sorted() -> None:
    assert parsed(' {"orders": {"1": 7, "0": 42}} ', "offsets") == {"orders": {"1": 7, "0": 42}}
    assert shown({"orders": {"1": 7, "0": 42}}, "offsets") == '{"orders":{"0":42,"1":7}}'
    assert shown(None, "offsets") is None
    for text in ("42", '{"orders": {"0": -2}}', "{", '{"orders": {"0": "5"}}'):
        with pytest.raises(ConfigurationError, match="is not a topic's offsets; write JSON"):
            parsed(text, "offsets")


def test_column_positions_order_as_numbers_and_look_back() -> None:
    ts = kind_of("timestamp")
    assert ts.lowest([5, 3, 9]) == 3 and ts.highest([5, 3, 9]) == 9
    assert ts.start(1_000, 600) == 400
    assert not ts.valid(True) and not ts.valid("7") and ts.valid(7)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a kind of incremental position"):
        kind_of("rowversion")


FILES = kind_of("files")


def test_files_positions_order_by_when_the_folder_was_listed() -> None:
    early = {"listed_at": 1_000, "covered_upto": 500, "seen": ["s3a://b/a.csv", "s3a://b/c"]}
    later = {"listed_at": 2_000, "covered_upto": 500, "seen": []}  # a.csv, c deleted since
    assert FILES.lowest([later, early]) == early and FILES.highest([early, later]) == later
    assert FILES.start(early, 500) == early
    assert FILES.valid(early) and not FILES.valid({"covered_upto": 1, "seen": []})
    assert not FILES.valid({**early, "seen": [""]}) and not FILES.valid(7)
    assert not FILES.valid({**early, "listed_at": -1})


def test_files_between_two_positions_are_the_ones_the_later_holds_as_read() -> None:
    listing = {"f/old.csv": 4_000, "f/new.csv": 6_000, "f/late.csv": 6_500, "f/next.csv": 9_000}
    at = {"listed_at": 1, "covered_upto": 5_000, "seen": ["f/late.csv"]}
    end = files_end(listing, at, 2_000, listed_at=10_000)
    # Up to the newest less the lookback, and every file listed after that, by name.
    assert end == {"listed_at": 10_000, "covered_upto": 7_000, "seen": ["f/next.csv"]}
    assert files_between(listing, at, end) == ["f/new.csv", "f/next.csv"]
    assert files_between(listing, None, end) == sorted(listing)
    assert files_between(listing, end, end) == []
    # The cover never goes back, whatever the listing holds (files deleted).
    assert files_end({}, end, 2_000, listed_at=10_500)["covered_upto"] == 7_000
    assert files_end({}, None, 2_000, listed_at=3) == {
        "listed_at": 3,
        "covered_upto": 0,
        "seen": [],
    }


def test_an_operator_sets_files_by_a_time_or_the_json_kept() -> None:
    assert parsed("2026-01-01T00:00:00Z", "files") == {
        "listed_at": 1_767_225_600_000,
        "covered_upto": 1_767_225_600_000,
        "seen": [],
    }
    kept = {"listed_at": 9, "covered_upto": 5, "seen": ["b", "a"]}
    assert FILES.parsed(FILES.text(kept)) == {**kept, "seen": ["a", "b"]}
    for text in ("1969-12-31T00:00:00Z", '{"covered_upto": -1, "seen": []}', "{"):
        with pytest.raises(ConfigurationError):
            parsed(text, "files")


def test_a_lookback_is_shown_as_it_was_written() -> None:
    assert lookback_shown(Incremental("timestamp", "at", 600_000_000)) == "600 s"
    assert lookback_shown(Incremental("date", "day", 2)) == "2 days"
    assert lookback_shown(Incremental("integer", "id", 50)) == 50
    assert lookback_shown(Incremental("files", None, 7_200_000)) == "7200 s"
    assert lookback_shown(Incremental("offsets")) is None


def test_a_file_dated_in_the_future_covers_no_later_file() -> None:
    listing = {"f/now.csv": 9_000, "f/copied-from-2099.csv": 4_102_444_800_000}
    end = files_end(listing, None, 2_000, listed_at=10_000)
    # Counted as modified when listed: the cover stays below the listing.
    assert end["covered_upto"] == 8_000
    assert end["seen"] == ["f/copied-from-2099.csv", "f/now.csv"]


def test_a_later_position_sorts_after_the_one_it_started_from_whatever_the_clock() -> None:
    after = {"listed_at": 50_000, "covered_upto": 0, "seen": []}
    end = files_end({}, after, 2_000, listed_at=40_000)  # this driver's clock is behind
    assert end["listed_at"] == 50_001 and FILES.highest([after, end]) == end


def test_a_reset_of_some_partitions_keeps_the_others() -> None:
    kept = {"orders": {"0": 10, "1": 20}}
    assert OFFSETS.replaced(kept, {"orders": {"1": 5}}) == {"orders": {"0": 10, "1": 5}}
    assert OFFSETS.replaced(None, {"orders": {"1": 5}}) == {"orders": {"1": 5}}
    assert FILES.replaced(kept, {"x": 1}) == {"x": 1}  # a whole position, as given
