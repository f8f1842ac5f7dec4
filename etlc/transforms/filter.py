"""filter: keep the rows for which a (compile-time checked) condition holds."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform


def filter_rows(condition: str) -> Transform:
    predicate = F.expr(condition)

    def apply(df: DataFrame) -> DataFrame:
        return df.where(predicate)

    return apply
