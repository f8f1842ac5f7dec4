"""Delta Lake tables on any Hadoop filesystem path (local, s3a://): the table format that gives
files a real upsert.

Every write is one Delta commit: a reader sees the table before it or after it. Append adds
files; overwrite replaces the table's contents (with ``partition_by``, only the partitions
written); upsert is a ``MERGE`` on the declared keys, each key once (the greatest
``sequence_by`` wins within the batch, and a row never replaces a newer one in the table).
Sessions need Delta's SQL extension and catalog, which the generated submit command sets
(the files kind's ``format_conf``, in ``etlc.dsl.steps.files``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession

from etlc.connectors.dedupe import latest_per_key
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.strategies import LoadResult

FORMAT = "delta"


def _column(name: str) -> str:
    if "`" in name:
        raise ConfigurationError(f"column `{name}` cannot be used in a MERGE")
    return f"`{name}`"


def is_table(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    return bool(jvm.io.delta.tables.DeltaTable.isDeltaTable(spark._jsparkSession, path))


def write(
    df: DataFrame,
    path: str,
    mode: str,
    *,
    partition_by: Sequence[str] = (),
    keys: Sequence[str] = (),
    sequence_by: str | None = None,
) -> LoadResult:
    if mode == "upsert":
        return merge(df, path, keys, sequence_by, partition_by)
    writer = df.write.format(FORMAT).mode(mode)
    if partition_by:
        # Overwrite replaces only the partitions this run writes, never the whole table.
        writer = writer.partitionBy(*partition_by).option("partitionOverwriteMode", "dynamic")
    writer.save(path)
    return LoadResult()


def merge(
    df: DataFrame,
    path: str,
    keys: Sequence[str],
    sequence_by: str | None,
    partition_by: Sequence[str] = (),
) -> LoadResult:
    if not keys:
        raise ConfigurationError("upsert needs `keys`")
    if "`" in path:
        raise ConfigurationError(f"path {path} cannot hold a backtick")
    spark = df.sparkSession
    rows, superseded = latest_per_key(df, keys, sequence_by)
    if not is_table(spark, path):
        # The first upsert creates the table: every row is new.
        writer = rows.write.format(FORMAT).mode("append")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)
        return LoadResult(superseded=superseded())
    view = f"etlc_merge_{uuid.uuid4().hex[:12]}"
    rows.createOrReplaceTempView(view)
    on = " AND ".join(f"t.{_column(k)} = s.{_column(k)}" for k in keys)
    newer = ""
    if sequence_by is not None:
        seq = _column(sequence_by)
        newer = f" AND (t.{seq} IS NULL OR s.{seq} >= t.{seq})"
    try:
        spark.sql(
            f"MERGE INTO delta.`{path}` AS t USING {view} AS s ON {on} "
            f"WHEN MATCHED{newer} THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
    finally:
        spark.catalog.dropTempView(view)
    return LoadResult(superseded=superseded())
