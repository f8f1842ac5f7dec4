"""derive: add or replace columns computed from the input; every other column is kept."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform


def derive_columns(columns: Mapping[str, str]) -> Transform:
    derived = {name: F.expr(sql) for name, sql in columns.items()}

    def apply(df: DataFrame) -> DataFrame:
        return df.withColumns(derived)

    return apply
