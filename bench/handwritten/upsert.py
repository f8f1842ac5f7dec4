"""Scenario 4 written by hand in plain PySpark: what upsert.json does, no framework.

The same requirements: read the orders with the declared schema, count and reject records that
break its rules before anything is written, keep one row per key (the latest `ordered_at`),
and upsert them into PostgreSQL and into MySQL so that a row never replaces a newer one. Each
database gets what an experienced engineer writes for a bulk upsert from Spark: a parallel
JDBC write to a staging table, then one INSERT ... SELECT ... ON CONFLICT / ON DUPLICATE KEY
UPDATE statement in one transaction, then the staging table dropped.

Usage: spark-submit upsert.py <input dir> <PostgreSQL host:port/db> <its user>
       <MySQL host:port/db> <its user>; the passwords come from the environment
       (BENCH_PG_PASSWORD, BENCH_MYSQL_PASSWORD). Prints one JSON line with its seconds,
       and each database's.
"""

from __future__ import annotations

import json
import os
import sys
import time

import psycopg
import pymysql
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

SCHEMA = (
    "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    "ordered_at TIMESTAMP, coupon STRING, _corrupt STRING"
)
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
COLUMNS = ("order_id", "customer_id", "amount", "status", "ordered_at", "coupon")
UPDATES = [c for c in COLUMNS if c not in ("order_id", "ordered_at")]
COLS = ", ".join(COLUMNS)
PG_UPSERT = (
    f"INSERT INTO bench_orders AS t ({COLS}) SELECT {COLS} FROM bench_orders_staging "
    "ON CONFLICT (order_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in [*UPDATES, "ordered_at"])
    + " WHERE t.ordered_at IS NULL OR t.ordered_at <= EXCLUDED.ordered_at"
)
# MySQL has no WHERE on its upsert: each column keeps its value unless the new row is newer,
# and ordered_at, which the others compare against, is assigned last. The target's columns
# are qualified: unqualified, they are ambiguous with the staging table's.
_NEWER = "(VALUES(ordered_at) >= bench_orders.ordered_at OR bench_orders.ordered_at IS NULL)"
MY_UPSERT = (
    f"INSERT INTO bench_orders ({COLS}) SELECT {COLS} FROM bench_orders_staging "
    "ON DUPLICATE KEY UPDATE "
    + ", ".join(
        f"bench_orders.{c} = IF({_NEWER}, VALUES({c}), bench_orders.{c})"
        for c in [*UPDATES, "ordered_at"]
    )
)


def write_staging(df: DataFrame, url: str, user: str, password: str, driver: str) -> None:
    (
        df.write.format("jdbc")
        .option("url", url)
        .option("driver", driver)
        .option("dbtable", "bench_orders_staging")
        .option("user", user)
        .option("password", password)
        .option("batchsize", "5000")
        .option("isolationLevel", "NONE")
        .mode("overwrite")
        .save()
    )


def to_postgres(latest: DataFrame, address: str, user: str) -> dict[str, float]:
    password = os.environ["BENCH_PG_PASSWORD"]
    started = time.monotonic()
    write_staging(
        latest,
        f"jdbc:postgresql://{address}?reWriteBatchedInserts=true",
        user,
        password,
        "org.postgresql.Driver",
    )
    host, rest = address.split(":", 1)
    port, db = rest.split("/", 1)
    staged = time.monotonic()
    with psycopg.connect(host=host, port=port, dbname=db, user=user, password=password) as conn:
        conn.execute(PG_UPSERT)
        conn.execute("DROP TABLE bench_orders_staging")
    moved = time.monotonic()
    return {"to_postgres_staging_s": staged - started, "to_postgres_move_s": moved - staged}


def to_mysql(latest: DataFrame, address: str, user: str) -> dict[str, float]:
    password = os.environ["BENCH_MYSQL_PASSWORD"]
    started = time.monotonic()
    write_staging(
        latest,
        f"jdbc:mysql://{address}?permitMysqlScheme=true&rewriteBatchedStatements=true",
        user,
        password,
        "org.mariadb.jdbc.Driver",
    )
    host, rest = address.split(":", 1)
    port, db = rest.split("/", 1)
    staged = time.monotonic()
    conn = pymysql.connect(host=host, port=int(port), user=user, password=password, database=db)
    try:
        with conn.cursor() as cur:
            cur.execute(MY_UPSERT)
            cur.execute("DROP TABLE bench_orders_staging")
        conn.commit()
    finally:
        conn.close()
    moved = time.monotonic()
    return {"to_mysql_staging_s": staged - started, "to_mysql_move_s": moved - staged}


def main(source: str, pg: str, pg_user: str, my: str, my_user: str) -> None:
    spark = SparkSession.builder.appName("handwritten:upsert").getOrCreate()
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
    newest = Window.partitionBy("order_id").orderBy(F.col("ordered_at").desc())
    latest = (
        checked.where(~F.col("_invalid"))
        .select(*COLUMNS)
        .withColumn("_rank", F.row_number().over(newest))
        .where("_rank = 1")
        .drop("_rank")
        .cache()
    )
    at = time.monotonic()
    pg_phases = to_postgres(latest, pg, pg_user)
    pg_s = time.monotonic() - at
    at = time.monotonic()
    my_phases = to_mysql(latest, my, my_user)
    my_s = time.monotonic() - at
    finished = {"event": "handwritten_finished", "seconds": time.monotonic() - started}
    parts = {"to_postgres_s": pg_s, "to_mysql_s": my_s, **pg_phases, **my_phases}
    print(json.dumps(finished | parts))
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:6])
