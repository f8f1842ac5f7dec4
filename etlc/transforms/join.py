"""join: two datasets on key columns or on a condition over `left.` / `right.` columns."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.transforms import Transform

_SPARK_HOW = {
    "inner": "inner",
    "left": "left_outer",
    "right": "right_outer",
    "full": "full_outer",
    "semi": "left_semi",
    "anti": "left_anti",
}


def join(how: str = "inner", on: Sequence[str] = (), condition: str | None = None) -> Transform:
    if bool(on) == (condition is not None):
        raise ValueError("a join takes exactly one of `on` or `condition`")
    spark_how = _SPARK_HOW[how]
    keys = list(on)

    def apply(left: DataFrame, right: DataFrame) -> DataFrame:
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
