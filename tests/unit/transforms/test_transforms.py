"""Each transform kind on small DataFrames, with exact expected rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from etlc.transforms.aggregate import aggregate
from etlc.transforms.derive import derive_columns
from etlc.transforms.filter import filter_rows
from etlc.transforms.join import join
from etlc.transforms.select import select_columns
from etlc.transforms.window import window


def rows(df: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in df.collect())


@pytest.fixture(scope="module")
def orders(spark: Any) -> Any:
    return spark.createDataFrame(
        [
            (1, 10, 5.0, "PAID", dt.datetime(2026, 1, 1, 0, 10)),
            (2, 10, 15.0, "NEW", dt.datetime(2026, 1, 1, 0, 50)),
            (3, 20, 25.0, "PAID", dt.datetime(2026, 1, 1, 1, 5)),
            (4, 30, 35.0, "PAID", dt.datetime(2026, 1, 1, 2, 30)),
        ],
        "order_id long, customer_id long, amount double, status string, ts timestamp",
    )


@pytest.fixture(scope="module")
def customers(spark: Any) -> Any:
    return spark.createDataFrame(
        [(10, "DE"), (20, "FR"), (40, "NL")], "customer_id long, country string"
    )


def test_filter_keeps_matching_rows(orders: Any) -> None:
    out = filter_rows("status = 'PAID' AND amount > 10")(orders)
    assert [r.order_id for r in out.orderBy("order_id").collect()] == [3, 4]


def test_select_projects_exactly_the_named_columns(orders: Any) -> None:
    out = select_columns({"id": "order_id", "double_amount": "amount * 2"})(orders)
    assert out.columns == ["id", "double_amount"]
    assert rows(out) == [(1, 10.0), (2, 30.0), (3, 50.0), (4, 70.0)]


def test_derive_adds_and_replaces_columns(orders: Any) -> None:
    out = derive_columns({"amount": "amount + 1", "big": "amount > 20"})(orders)
    assert out.columns == ["order_id", "customer_id", "amount", "status", "ts", "big"]
    assert [(r.amount, r.big) for r in out.orderBy("order_id").collect()] == [
        (6.0, False),
        (16.0, False),
        (26.0, True),
        (36.0, True),
    ]


def test_aggregate_groups_and_measures(orders: Any) -> None:
    out = aggregate(
        ["status"],
        {
            "n": "count(*)",
            "total": "sum(amount)",
            "mean": "avg(amount)",
            "low": "min(amount)",
            "high": "max(amount)",
            "buyers": "count(DISTINCT customer_id)",
        },
    )(orders)
    assert rows(out) == [
        ("NEW", 1, 15.0, 15.0, 15.0, 15.0, 1),
        ("PAID", 3, 65.0, 65 / 3, 5.0, 35.0, 3),
    ]


def test_aggregate_without_keys_is_a_global_aggregate(orders: Any) -> None:
    assert rows(aggregate([], {"n": "count(*)"})(orders)) == [(4,)]


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("inner", [(1, "DE"), (2, "DE"), (3, "FR")]),
        ("left", [(1, "DE"), (2, "DE"), (3, "FR"), (4, None)]),
        ("right", [(1, "DE"), (2, "DE"), (3, "FR"), (None, "NL")]),
        ("full", [(1, "DE"), (2, "DE"), (3, "FR"), (4, None), (None, "NL")]),
    ],
)
def test_join_on_keys(orders: Any, customers: Any, how: str, expected: list[Any]) -> None:
    out = join(how=how, on=["customer_id"])(orders, customers)
    assert out.columns == ["customer_id", "order_id", "amount", "status", "ts", "country"]
    got = sorted(((r.order_id, r.country) for r in out.collect()), key=lambda t: (t[0] or 99, t[1]))
    assert got == sorted(expected, key=lambda t: (t[0] or 99, t[1]))


def test_semi_and_anti_joins_keep_left_columns_only(orders: Any, customers: Any) -> None:
    semi = join(how="semi", on=["customer_id"])(orders, customers)
    anti = join(how="anti", on=["customer_id"])(orders, customers)
    # Spark puts the join keys first, as for every join `on` keys; the checker models the same.
    assert semi.columns == ["customer_id", "order_id", "amount", "status", "ts"] == anti.columns
    assert sorted(r.order_id for r in semi.collect()) == [1, 2, 3]
    assert [r.order_id for r in anti.collect()] == [4]


def test_join_on_condition_projects_both_sides_unqualified(orders: Any, spark: Any) -> None:
    limits = spark.createDataFrame([(10, 10.0), (20, 30.0)], "cid long, max_amount double")
    out = join(
        how="inner",
        condition="`left`.customer_id = `right`.cid AND `left`.amount <= `right`.max_amount",
    )(orders, limits)
    assert out.columns == [*orders.columns, "cid", "max_amount"]
    assert sorted(r.order_id for r in out.collect()) == [1, 3]


def test_join_needs_exactly_one_of_on_or_condition() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        join(how="inner")
    with pytest.raises(ValueError, match="exactly one"):
        join(how="inner", on=["a"], condition="a = b")


def test_tumbling_time_window(orders: Any) -> None:
    out = window(
        group_by=["status"], aggregates={"n": "count(*)"}, time_column="ts", size="1 hour"
    )(orders)
    assert out.columns == ["window_start", "window_end", "status", "n"]
    got = rows(out)
    assert got == [
        (dt.datetime(2026, 1, 1, 0), dt.datetime(2026, 1, 1, 1), "NEW", 1),
        (dt.datetime(2026, 1, 1, 0), dt.datetime(2026, 1, 1, 1), "PAID", 1),
        (dt.datetime(2026, 1, 1, 1), dt.datetime(2026, 1, 1, 2), "PAID", 1),
        (dt.datetime(2026, 1, 1, 2), dt.datetime(2026, 1, 1, 3), "PAID", 1),
    ]


def test_sliding_time_window_counts_each_row_in_every_window_it_falls_in(orders: Any) -> None:
    out = window(
        group_by=[], aggregates={"n": "count(*)"}, time_column="ts", size="2 hours", slide="1 hour"
    )(orders)
    by_start = {r.window_start.hour if r.window_start.day == 1 else -1: r.n for r in out.collect()}
    # 00:00-02:00 holds orders 1, 2, 3; 01:00-03:00 holds 3, 4; 02:00-04:00 holds 4.
    assert by_start == {-1: 2, 0: 3, 1: 2, 2: 1}


def test_count_window_cuts_every_n_rows_per_group(orders: Any) -> None:
    out = window(
        group_by=[], aggregates={"first": "min(order_id)", "n": "count(*)"}, order_by=["ts"], rows=3
    )(orders)
    assert out.columns == ["window_index", "first", "n"]
    assert rows(out) == [(0, 1, 3), (1, 4, 1)]


def test_window_requires_one_kind() -> None:
    with pytest.raises(ValueError, match="either"):
        window(group_by=[], aggregates={}, time_column="ts", size="1 hour", rows=3)


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("inner", [(1, "09:00", "09:10")]),
        ("left", [(1, "09:00", "09:10"), (2, "09:00", None)]),
        ("right", [(1, "09:00", "09:10"), (2, None, "12:00"), (3, None, "08:55")]),
    ],
)
def test_a_time_bounded_join_matches_only_within_the_bound(
    spark: Any, how: str, expected: list[Any]
) -> None:
    from pyspark.sql import functions as F

    orders = spark.createDataFrame(
        [(1, "2026-01-01 09:00:00"), (2, "2026-01-01 09:00:00")], "id long, at string"
    ).select("id", F.to_timestamp("at").alias("ordered_at"))
    paid = spark.createDataFrame(
        [(1, "2026-01-01 09:10:00"), (2, "2026-01-01 12:00:00"), (3, "2026-01-01 08:55:00")],
        "id long, at string",
    ).select("id", F.to_timestamp("at").alias("paid_at"))
    within = {
        "left_time": "ordered_at",
        "right_time": "paid_at",
        "after": "1 hour",
        "watermark": "10 minutes",
    }
    out = join(how=how, on=["id"], within=within)(orders, paid)
    assert out.columns == ["id", "ordered_at", "paid_at"]
    got = sorted(
        (r[0], r[1] and r[1].strftime("%H:%M"), r[2] and r[2].strftime("%H:%M"))
        for r in out.collect()
    )
    assert got == expected
    # `before` widens the bound backwards: a payment 5 minutes ahead of its order matches
    # only with it.
    ahead = spark.createDataFrame([(2, "2026-01-01 08:55:00")], "id long, at string").select(
        "id", F.to_timestamp("at").alias("paid_at")
    )
    assert join(how="inner", on=["id"], within=within)(orders, ahead).count() == 0
    early = {**within, "before": "10 minutes"}
    assert join(how="inner", on=["id"], within=early)(orders, ahead).count() == 1
    with pytest.raises(ValueError, match="needs key columns"):
        join(condition="left.id = right.id", within=within)
