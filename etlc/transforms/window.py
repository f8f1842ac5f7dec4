"""window: aggregates over event-time windows (tumbling or sliding) or count-based windows.

Count-based windows number each group's rows in ``order_by`` order and cut every ``rows``
records; they need a total order, so they are batch-only (the checker enforces it). An
event-time window in a stream needs a ``watermark``: how late an event may be and still count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from etlc.runtime.strategies import Transform


def window(
    *,
    group_by: Sequence[str],
    aggregates: Mapping[str, str],
    time_column: str | None = None,
    size: str | None = None,
    slide: str | None = None,
    order_by: Sequence[str] = (),
    rows: int | None = None,
    watermark: str | None = None,
) -> Transform:
    if (time_column is None) == (rows is None):
        raise ValueError("a window is either event-time (`time_column`) or count-based (`rows`)")
    keys = [F.col(f"`{k}`") for k in group_by]
    measures = [F.expr(sql).alias(name) for name, sql in aggregates.items()]

    def by_time(df: DataFrame) -> DataFrame:
        assert time_column is not None and size is not None
        if watermark is not None:
            # In a stream, state older than the watermark is dropped and its windows emitted;
            # on a batch DataFrame Spark ignores it.
            df = df.withWatermark(time_column, watermark)
        bucket = F.window(F.col(f"`{time_column}`"), size, slide or size)
        grouped = df.groupBy(bucket.alias("_etlc_window"), *keys).agg(*measures)
        return grouped.select(
            F.col("_etlc_window.start").alias("window_start"),
            F.col("_etlc_window.end").alias("window_end"),
            *(F.col(f"`{k}`") for k in group_by),
            *(F.col(f"`{m}`") for m in aggregates),
        )

    def by_rows(df: DataFrame) -> DataFrame:
        assert rows is not None
        spec = Window.partitionBy(*keys).orderBy(*(F.col(f"`{c}`") for c in order_by))
        index = F.floor((F.row_number().over(spec) - 1) / F.lit(rows)).cast("long")
        numbered = df.withColumn("window_index", index)
        grouped = numbered.groupBy("window_index", *keys).agg(*measures)
        return grouped.select(
            "window_index",
            *(F.col(f"`{k}`") for k in group_by),
            *(F.col(f"`{m}`") for m in aggregates),
        )

    return by_time if time_column is not None else by_rows
