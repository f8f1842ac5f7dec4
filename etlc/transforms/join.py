"""join: two datasets on key columns or on a condition over `left.` / `right.` columns.

A key join may carry a time bound (``within``): the right row's event time lies between
``before`` ahead of and ``after`` behind the left row's. Between two streams it is what lets
Spark drop state: each side is watermarked, and a row older than the watermark plus the bound
can match nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform

_SPARK_HOW = {
    "inner": "inner",
    "left": "left_outer",
    "right": "right_outer",
    "full": "full_outer",
    "semi": "left_semi",
    "anti": "left_anti",
}


def join(
    how: str = "inner",
    on: Sequence[str] = (),
    condition: str | None = None,
    within: Mapping[str, str] | None = None,
) -> Transform:
    if bool(on) == (condition is not None):
        raise ValueError("a join takes exactly one of `on` or `condition`")
    if within is not None and not on:
        raise ValueError("a time bound (`within`) needs key columns (`on`)")
    spark_how = _SPARK_HOW[how]
    keys = list(on)

    def bounded(left: DataFrame, right: DataFrame) -> DataFrame:
        assert within is not None
        lt, rt, mark = within["left_time"], within["right_time"], within["watermark"]
        at = F.col(f"`left`.`{lt}`")
        lower = at - F.expr(f"INTERVAL {within['before']}") if within.get("before") else at
        upper = at + F.expr(f"INTERVAL {within['after']}")
        then = F.col(f"`right`.`{rt}`")
        matches = [F.col(f"`left`.`{k}`") == F.col(f"`right`.`{k}`") for k in keys]
        matches += [then >= lower, then <= upper]
        condition = reduce(lambda a, b: a & b, matches)
        watermarked = right.withWatermark(rt, mark).alias("right")
        joined = left.withWatermark(lt, mark).alias("left").join(watermarked, condition, spark_how)
        if how in ("semi", "anti"):
            return joined
        # The same shape as a join `on` keys: the keys once, then each side's other columns.
        side = "right" if how == "right" else "left"
        key_columns = [
            F.coalesce(F.col(f"`left`.`{k}`"), F.col(f"`right`.`{k}`")).alias(k)
            if how == "full"
            else F.col(f"`{side}`.`{k}`").alias(k)
            for k in keys
        ]
        return joined.select(
            *key_columns,
            *(F.col(f"`left`.`{c}`").alias(c) for c in left.columns if c not in keys),
            *(F.col(f"`right`.`{c}`").alias(c) for c in right.columns if c not in keys),
        )

    def apply(left: DataFrame, right: DataFrame) -> DataFrame:
        if within is not None:
            return bounded(left, right)
        if keys:
            return left.join(right, on=keys, how=spark_how)
        assert condition is not None
        joined = left.alias("left").join(right.alias("right"), F.expr(condition), spark_how)
        if how in ("semi", "anti"):
            return joined
        # Project by side so the output has plain (unqualified) column names, left first.
        return joined.select(
            *(F.col(f"`left`.`{c}`").alias(c) for c in left.columns),
            *(F.col(f"`right`.`{c}`").alias(c) for c in right.columns),
        )

    return apply
