"""Positions of each kind: how they order, where a read starts, how an operator reads and writes
them (no Spark: the column predicates are tested with the runs, in test_incremental)."""

from __future__ import annotations

import pytest

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.positions import OffsetPositions, kind_of, parsed, shown

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
