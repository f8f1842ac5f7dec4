"""Scenario 1 as a Spark Declarative Pipelines project: what simple_batch.json does.

One materialized view: the orders CSV read with the declared schema, filtered and derived as
etlc's definition does. Spark's open-source pipelines have no expectations, so the same rules
refuse an invalid record their own way: `raise_error` in the view's query fails its flow, and
the run, at the first record that breaks one, before the view is replaced.

The benchmark writes the project's spec with the source folder in `spark.etlc.bench.source`.
"""

from __future__ import annotations

from pyspark import pipelines as dp
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

SCHEMA = (
    "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    "ordered_at TIMESTAMP, coupon STRING, _corrupt STRING"
)
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")


@dp.materialized_view  # Parquet: spark.sql.sources.default
def sized() -> DataFrame:
    spark = SparkSession.active()
    source = spark.conf.get("spark.etlc.bench.source")
    if not source:
        raise ValueError("the pipeline spec sets no spark.etlc.bench.source")
    raw = (
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", "_corrupt")
        .schema(SCHEMA)
        .csv(source)
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
    refused = F.raise_error(F.lit("a record violates the schema of order.avsc"))
    checked = raw.where(F.when(invalid, refused).otherwise(F.lit(True)))
    return (
        checked.drop("_corrupt")
        .where(F.col("status") != "CANCELLED")
        .withColumn(
            "size_band",
            F.when(F.col("amount") >= 500, "large")
            .when(F.col("amount") >= 100, "medium")
            .otherwise("small"),
        )
        .withColumn("order_day", F.to_date("ordered_at"))
    )
