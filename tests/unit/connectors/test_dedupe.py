"""Which row an upsert keeps when its input repeats a key."""

from __future__ import annotations

from typing import Any

from etlc.connectors.dedupe import latest_per_key, none_superseded


def rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


def test_the_greatest_sequence_wins_and_the_rest_are_counted(spark: Any) -> None:
    data = [(1, 2, "a"), (1, 5, "b"), (2, 1, "x"), (1, 3, "c"), (3, None, "n"), (3, 0, "z")]
    df = spark.createDataFrame(data, "id long, seq int, v string")
    latest, superseded = latest_per_key(df, ["id"], "seq")
    assert rows(latest) == [(1, 5, "b"), (2, 1, "x"), (3, 0, "z")]  # a null sequence loses
    assert superseded() == 3


def test_without_a_sequence_the_choice_does_not_depend_on_row_order(spark: Any) -> None:
    data = [(1, "a", 10), (2, "b", 1), (1, "c", 5)]
    kept = set()
    for ordered in (data, data[::-1]):
        df = spark.createDataFrame(ordered, "id long, v string, n int").repartition(3)
        latest, superseded = latest_per_key(df, ["id"])
        kept.add(tuple(rows(latest)))
        assert superseded() == 1
    assert kept == {((1, "c", 5), (2, "b", 1))}


def test_several_key_columns_and_a_write_that_keeps_every_row(spark: Any) -> None:
    df = spark.createDataFrame(
        [(1, "x", 1), (1, "y", 2), (1, "x", 3)], "a long, b string, version long"
    )
    latest, superseded = latest_per_key(df, ["a", "b"], "version")
    assert rows(latest) == [(1, "x", 3), (1, "y", 2)]
    assert superseded() == 1
    assert none_superseded() == 0
