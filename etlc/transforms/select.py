"""select: project to exactly the named columns, each an expression over the input."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform


def select_columns(columns: Mapping[str, str]) -> Transform:
    projection = [F.expr(sql).alias(name) for name, sql in columns.items()]

    def apply(df: DataFrame) -> DataFrame:
        return df.select(*projection)

    return apply
