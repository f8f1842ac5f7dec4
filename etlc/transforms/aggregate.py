"""aggregate: group by keys and compute aggregate expressions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform


def aggregate(group_by: Sequence[str], aggregates: Mapping[str, str]) -> Transform:
    keys = [F.col(f"`{k}`") for k in group_by]
    measures = [F.expr(sql).alias(name) for name, sql in aggregates.items()]

    def apply(df: DataFrame) -> DataFrame:
        if not keys:
            return df.agg(*measures)
        return df.groupBy(*keys).agg(*measures)

    return apply
