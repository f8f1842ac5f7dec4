"""Scenario 1 written by hand in plain PySpark: what simple_batch.json does, no framework.

The same requirements: read the CSV files with the declared schema, count and reject records
that break the schema's rules (parse, not null, enum, amount >= 0) before anything is written,
filter, derive, write Parquet. The source is read once, into a cached copy: the invalid
records are counted on it, and only when there are none is the rest written from it.

Usage: spark-submit simple_batch.py <input dir> <output dir>; prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = (
    "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    "ordered_at TIMESTAMP, coupon STRING, _corrupt STRING"
)
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")


def main(source: str, target: str) -> None:
    spark = SparkSession.builder.appName("handwritten:simple_batch").getOrCreate()
    started = time.monotonic()
    raw = (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .schema(SCHEMA)
        .csv(f"{source}/*.csv")
    )
    invalid = (
        F.col("_corrupt").isNotNull()
        | F.col("order_id").isNull()
        | F.col("customer_id").isNull()
        | F.col("amount").isNull()
        | F.col("ordered_at").isNull()
        | ~F.col("status").isin(*STATUSES)
        | (F.col("amount") < 0)
    )
    checked = raw.withColumn("_invalid", invalid).cache()
    bad = checked.where("_invalid").count()
    if bad:
        raise SystemExit(f"{bad} records violate the schema")
    out = (
        checked.where(~F.col("_invalid"))
        .drop("_invalid", "_corrupt")
        .where(F.col("status") != "CANCELLED")
        .withColumn(
            "size_band",
            F.when(F.col("amount") >= 500, "large")
            .when(F.col("amount") >= 100, "medium")
            .otherwise("small"),
        )
        .withColumn("order_day", F.to_date("ordered_at"))
    )
    out.write.mode("overwrite").parquet(target)
    print(json.dumps({"event": "handwritten_finished", "seconds": time.monotonic() - started}))
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
