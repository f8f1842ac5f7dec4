"""Scenario 2 written by hand in plain PySpark: what complex_batch.json does, no framework.

The same requirements: read the orders (CSV in S3) and the customers (MySQL) with their
declared schemas, count and reject records that break the schemas' rules before anything is
written, keep live orders, join them with their customers, aggregate revenue per country,
segment and day, and overwrite the result in S3 as Parquet through the S3A magic committer
(the committer etlc uses for an overwrite). Each source is read once into a cached copy: the
invalid records are counted on it, and only when there are none is the rest computed from it.

Usage: spark-submit complex_batch.py <orders s3a glob> <output s3a path> <S3 endpoint>
       <MySQL JDBC URL> <MySQL user>; the S3 keys and the MySQL password come from the
       environment (BENCH_S3_ACCESS_KEY, BENCH_S3_SECRET_KEY, BENCH_MYSQL_PASSWORD).
Prints one JSON line with its seconds.
"""

from __future__ import annotations

import json
import os
import sys
import time

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

ORDERS = (
    "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    "ordered_at TIMESTAMP, coupon STRING, _corrupt STRING"
)
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
SEGMENTS = ("CONSUMER", "BUSINESS")


def session(endpoint: str) -> SparkSession:
    s3a = {
        "fs.s3a.endpoint": endpoint,
        "fs.s3a.endpoint.region": "us-east-1",
        "fs.s3a.path.style.access": "true",
        "fs.s3a.aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        "fs.s3a.access.key": os.environ["BENCH_S3_ACCESS_KEY"],
        "fs.s3a.secret.key": os.environ["BENCH_S3_SECRET_KEY"],
        "fs.s3a.committer.name": "magic",
        "mapreduce.outputcommitter.factory.scheme.s3a": (
            "org.apache.hadoop.fs.s3a.commit.S3ACommitterFactory"
        ),
    }
    builder = SparkSession.builder.appName("handwritten:complex_batch")
    for key, value in s3a.items():
        builder = builder.config(f"spark.hadoop.{key}", value)
    return (
        builder.config(
            "spark.sql.sources.commitProtocolClass",
            "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol",
        )
        .config(
            "spark.sql.parquet.output.committer.class",
            "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter",
        )
        .getOrCreate()
    )


def read_customers(spark: SparkSession, jdbc_url: str, user: str) -> DataFrame:
    """The customers table as MySQL holds it (its password from BENCH_MYSQL_PASSWORD)."""
    return (
        spark.read.format("jdbc")
        .option("url", jdbc_url)
        .option("driver", "org.mariadb.jdbc.Driver")
        .option("dbtable", "bench_customers")
        .option("user", user)
        .option("password", os.environ["BENCH_MYSQL_PASSWORD"])
        .load()
    )


def checked(df: DataFrame, invalid: Column, what: str) -> DataFrame:
    """``df``'s valid records, cached; stops the job when any record is invalid."""
    marked = df.withColumn("_invalid", invalid).cache()
    bad = marked.where("_invalid").count()
    if bad:
        raise SystemExit(f"{bad} {what} records violate the schema")
    return marked.where(~F.col("_invalid")).drop("_invalid")


def main(orders_glob: str, target: str, endpoint: str, jdbc_url: str, user: str) -> None:
    spark = session(endpoint)
    started = time.monotonic()
    raw = (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .schema(ORDERS)
        .csv(orders_glob)
    )
    orders = checked(
        raw,
        F.col("_corrupt").isNotNull()
        | F.col("order_id").isNull()
        | F.col("customer_id").isNull()
        | F.col("amount").isNull()
        | F.col("ordered_at").isNull()
        | ~F.col("status").isin(*STATUSES)
        | (F.col("amount") < 0),
        "order",
    ).drop("_corrupt")
    customers = checked(
        read_customers(spark, jdbc_url, user).select("customer_id", "name", "country", "segment"),
        F.col("customer_id").isNull()
        | F.col("name").isNull()
        | F.col("country").isNull()
        | ~F.col("segment").isin(*SEGMENTS),
        "customer",
    )
    revenue = (
        orders.where(F.col("status") != "CANCELLED")
        .join(customers, "customer_id")
        .withColumn("order_day", F.to_date("ordered_at"))
        .groupBy("country", "segment", "order_day")
        .agg(
            F.sum("amount").alias("revenue"),
            F.count(F.lit(1)).alias("orders"),
            F.count_distinct("customer_id").alias("customers"),
            F.max("amount").alias("largest"),
        )
    )
    revenue.write.mode("overwrite").parquet(target)
    print(json.dumps({"event": "handwritten_finished", "seconds": time.monotonic() - started}))
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:6])
