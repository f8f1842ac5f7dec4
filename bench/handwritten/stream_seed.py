"""Scenario 3 written by hand in plain PySpark Structured Streaming: what
order_revenue_stream.json does, no framework.

The same requirements: order events from Kafka, Avro-decoded with order.avsc, a record that
breaks the schema's rules stops the query (the Avro decode fails on a malformed value; the
amount rule raises); live orders counted and summed per status over 1-minute event-time
windows with a 10 s watermark; each closed window appended to PostgreSQL exactly once per
micro-batch (the batch's rows go to a staging table, then one transaction inserts them and
a marker row for the batch, and a replayed batch whose marker exists is skipped). Latency is
measured as etlc measures it: each record's wait from its Kafka timestamp to its batch's
start (observed in the plan) plus the batch's duration.

Usage: spark-submit stream_seed.py <bootstrap servers> <topic> <checkpoint dir>
       <PostgreSQL host:port/db> <user> <trigger, e.g. "1 second"> <max offsets per trigger>;
       the password comes from BENCH_PG_PASSWORD. Prints a JSON line per micro-batch;
       SIGTERM stops it gracefully.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro
from pyspark.sql.streaming.listener import StreamingQueryListener

ROOT = Path(__file__).resolve().parents[2]
ORDER_AVSC = (ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8")
TARGET = "order_revenue_per_minute"
MARKERS = "handwritten_stream_batches"


def emit(event: str, **fields: Any) -> None:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() % 1 * 1000):03d}Z"
    print(json.dumps({"ts": ts, "event": event, **fields}, default=str), flush=True)


class Progress(StreamingQueryListener):
    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        emit("query_started", id=str(event.id))

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        emit("query_terminated")

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        p = event.progress
        lag = (p.observedMetrics or {}).get("lag")
        latency = None
        if lag is not None and lag["lag_max_ms"] is not None:
            batch = int(p.batchDuration or 0)
            latency = {
                "p50": int(lag["lag_ms"][0]) + batch,
                "p95": int(lag["lag_ms"][1]) + batch,
                "max": int(lag["lag_max_ms"]) + batch,
            }
        emit(
            "batch_progress",
            batch_id=p.batchId,
            input_rows=p.numInputRows,
            batch_duration_ms=p.batchDuration,
            state_rows=sum(int(op.numRowsTotal) for op in p.stateOperators or []),
            latency_ms=latency,
        )


class Sink:
    """foreachBatch: staging table, then rows + marker in one transaction; replays skipped."""

    def __init__(self, address: str, user: str) -> None:
        host, rest = address.split(":", 1)
        port, self.db = rest.split("/", 1)
        self.host, self.port, self.user = host, port, user
        self.password = os.environ["BENCH_PG_PASSWORD"]
        self.url = f"jdbc:postgresql://{address}?reWriteBatchedInserts=true"
        self.query_id = ""
        self.started = threading.Event()  # the query id is known once start() returns
        with self.connect() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MARKERS} (query_id TEXT NOT NULL, "
                "batch_id BIGINT NOT NULL, PRIMARY KEY (query_id, batch_id))"
            )

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=self.host, port=self.port, dbname=self.db, user=self.user, password=self.password
        )

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        self.started.wait()
        with self.connect() as conn:
            seen = conn.execute(
                f"SELECT 1 FROM {MARKERS} WHERE query_id = %s AND batch_id = %s",
                (self.query_id, batch_id),
            ).fetchone()
        if seen:
            return
        staging = f"stage_{uuid.uuid4().hex[:12]}"
        (
            batch.write.format("jdbc")
            .option("url", self.url)
            .option("driver", "org.postgresql.Driver")
            .option("dbtable", staging)
            .option("user", self.user)
            .option("password", self.password)
            .option("batchsize", "5000")
            .mode("overwrite")
            .save()
        )
        with self.connect() as conn:
            conn.execute(
                f"INSERT INTO {TARGET} (window_start, window_end, status, orders, revenue) "
                f"SELECT window_start, window_end, status, orders, revenue FROM {staging}"
            )
            conn.execute(f"INSERT INTO {MARKERS} VALUES (%s, %s)", (self.query_id, batch_id))
            conn.execute(f"DROP TABLE {staging}")


def main(argv: list[str]) -> None:
    servers, topic, checkpoint, pg, user, trigger, max_offsets = argv
    spark = SparkSession.builder.appName("handwritten:stream_seed").getOrCreate()
    spark.streams.addListener(Progress())
    emit("run_started", pid=os.getpid())
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", servers)
        .option("subscribe", topic)
        .option("startingOffsets", "latest")
        .option("maxOffsetsPerTrigger", max_offsets)
        .load()
    )
    orders = raw.select(
        from_avro("value", ORDER_AVSC).alias("o"), F.col("timestamp").alias("_kafka_ts")
    ).select("o.*", "_kafka_ts")
    lag = F.unix_millis(F.current_timestamp()) - F.unix_millis("_kafka_ts")
    observed = orders.observe(
        "lag",
        F.percentile_approx(lag, [0.5, 0.95], 1000).alias("lag_ms"),
        F.max(lag).alias("lag_max_ms"),
    )
    # In the filter, not in a column: a column nobody reads is pruned, and its check with it.
    rule = F.when(F.col("amount") < 0, F.raise_error(F.lit("amount_not_negative violated")))
    per_minute = (
        observed.where(rule.otherwise(F.lit(True)) & (F.col("status") != "CANCELLED"))
        .withWatermark("ordered_at", "10 seconds")
        .groupBy(F.window("ordered_at", "1 minute"), "status")
        .agg(F.count(F.lit(1)).alias("orders"), F.sum("amount").alias("revenue"))
        .select(
            F.col("window.start").alias("window_start"),
            F.col("window.end").alias("window_end"),
            "status",
            "orders",
            "revenue",
        )
    )
    sink = Sink(pg, user)
    query = (
        per_minute.writeStream.outputMode("append")
        .foreachBatch(sink)
        .option("checkpointLocation", checkpoint)
        .trigger(processingTime=trigger)
        .start()
    )
    sink.query_id = str(query.id)
    sink.started.set()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    while query.isActive and not stopping.wait(0.5):
        pass
    query.stop()
    emit("run_finished")
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:8])
