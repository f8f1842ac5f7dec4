"""The machine's floor for a batch scenario's I/O: the same reads and writes with nothing in
between (no validation, no filter, no transform, no join), in plain PySpark. Every job of the
scenario is reported as a fraction of it.

Usage: spark-submit floor.py simple <input dir> <output dir>
       spark-submit floor.py complex <orders s3a glob> <output s3a path> <S3 endpoint>
           <MySQL JDBC URL> <MySQL user>   (keys and password as complex_batch.py takes them)

simple: the CSV files read with the declared schema, every row written as Parquet. complex:
the orders read from S3 and the customers from MySQL, both read whole (Spark's noop sink),
then as many rows as the job's output has written to S3 through the same magic committer.
Prints one JSON line with its seconds.
"""

from __future__ import annotations

import json
import sys
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

SCHEMA = (
    "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    "ordered_at TIMESTAMP, coupon STRING"
)


def simple(source: str, target: str) -> None:
    spark = SparkSession.builder.appName("floor:simple_batch").getOrCreate()
    started = time.monotonic()
    spark.read.option("header", True).schema(SCHEMA).csv(f"{source}/*.csv").write.mode(
        "overwrite"
    ).parquet(target)
    print(json.dumps({"event": "handwritten_finished", "seconds": time.monotonic() - started}))
    spark.stop()


def complex_batch(orders_glob: str, target: str, endpoint: str, jdbc_url: str, user: str) -> None:
    # spark-submit puts this file's folder on the path: complex_batch.py is beside it.
    from complex_batch import read_customers, session  # type: ignore[import-not-found]

    spark = session(endpoint)
    started = time.monotonic()
    orders = spark.read.option("header", True).schema(SCHEMA).csv(orders_glob)
    customers = read_customers(spark, jdbc_url, user)
    orders.write.format("noop").mode("overwrite").save()
    customers.write.format("noop").mode("overwrite").save()
    # The job's output is one row per country, segment and day (8 x 2 x 8): as many rows,
    # written and committed the same way.
    spark.range(128).withColumn("revenue", F.lit(0)).coalesce(1).write.mode("overwrite").parquet(
        target
    )
    print(json.dumps({"event": "handwritten_finished", "seconds": time.monotonic() - started}))
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1] == "simple":
        simple(*sys.argv[2:4])
    else:
        complex_batch(*sys.argv[2:7])
