"""Scenario 1, simple batch: files -> validation -> filter + derive -> files, etlc against the
same job written by hand, and etlc with its Avro stage boundary switched off, in one run.

Each job runs through spark-submit on ``local[2]`` with the same Spark settings; its time is
measured inside the job (the SparkSession already up), so JVM start-up is reported apart.
The input is generated once per size with a fixed seed (hashes of the row number) and kept
under ``bench/data/``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import jobs, sdp_jobs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
DEFINITION = ROOT / "bench" / "pipelines" / "simple_batch.json"
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
# Where the SDP project (bench/sdp/simple_batch) reads the orders.
SOURCE_CONF = "spark.etlc.bench.source"


def generate(records: int, *also: int) -> Path:
    """CSV order files with ``records`` rows (deterministic), made once per size, by a Spark
    of its own in a child process: this process's SparkSession (a test's) stays untouched.
    The sizes in ``also`` are made by the same child (one JVM start for all of them)."""
    missing = [n for n in (records, *also) if not (DATA / f"orders-{n}" / "_SUCCESS").exists()]
    if missing:
        subprocess.run(
            [sys.executable, "-m", "bench.simple_batch", *map(str, missing)], cwd=ROOT, check=True
        )
    return DATA / f"orders-{records}"


def _write_all(sizes: list[int]) -> None:
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("etlc-bench-data")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:
        for records in sizes:
            _write_orders(spark, records)
    finally:
        spark.stop()


def _write_orders(spark: Any, records: int) -> None:
    from pyspark.sql import functions as F

    def h(salt: int) -> Any:
        return F.abs(F.xxhash64(F.col("id"), F.lit(salt)))

    statuses = F.array(*(F.lit(s) for s in STATUSES))
    df = spark.range(1, records + 1, numPartitions=8).select(
        F.col("id").alias("order_id"),
        (h(1) % 2000 + 1).alias("customer_id"),
        ((h(2) % 99_901 + 100) / 100).cast("decimal(12,2)").alias("amount"),
        F.element_at(statuses, (h(3) % 4 + 1).cast("int")).alias("status"),
        F.timestamp_seconds(F.lit(1_767_225_600) + h(4) % 604_800).alias("ordered_at"),
        F.when(h(5) % 4 == 0, F.lit("WELCOME")).alias("coupon"),
    )
    df.write.mode("overwrite").option("header", True).csv(str(DATA / f"orders-{records}"))


def _etlc(script: Path, work: Path, source: Path, records: int, boundary: bool) -> dict[str, Any]:
    name = "etlc" if boundary else "etlc_no_avro_boundary"
    env = {
        "variables": {"data_dir": str(source), "out_dir": str(work / f"out-{name}")},
        "spark": dict(jobs.SPARK_CONF),
        "etlc": {"stage_dir": str(work / "stage"), "avro_boundary": boundary},
    }
    return jobs.etlc_job(name, script, env, work, records)


def _handwritten(work: Path, source: Path, records: int) -> dict[str, Any]:
    script = ROOT / "bench" / "handwritten" / "simple_batch.py"
    args = [str(source), str(work / "out-handwritten")]
    return jobs.handwritten_job("handwritten", script, args, work, records)


def _sdp(work: Path, source: Path, records: int) -> dict[str, Any]:
    return sdp_jobs.sdp_job("simple_batch", work, records, {SOURCE_CONF: str(source)})


def _floor(work: Path, source: Path, records: int) -> dict[str, Any]:
    script = ROOT / "bench" / "handwritten" / "floor.py"
    args = ["simple", str(source), str(work / "out-floor")]
    return jobs.handwritten_job("floor", script, args, work, records)


JOBS = ("handwritten", "etlc", "etlc_no_avro_boundary", "floor", "sdp")


def run(records: int, work: Path, names: tuple[str, ...] = JOBS) -> dict[str, Any]:
    source = generate(records)
    work.mkdir(parents=True, exist_ok=True)
    script = jobs.compile_pipeline(DEFINITION, work / "generated")
    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "handwritten": lambda: _handwritten(work, source, records),
        "etlc": lambda: _etlc(script, work, source, records, boundary=True),
        "etlc_no_avro_boundary": lambda: _etlc(script, work, source, records, boundary=False),
        "floor": lambda: _floor(work, source, records),
        "sdp": lambda: _sdp(work, source, records),
    }
    done = [runs[name]() for name in names]
    return {
        "scenario": "simple_batch",
        "records": records,
        "jobs": done,
        **jobs.comparison(done),
        "seed_floor_records_per_s": 100_000,
        "target_records_per_s": 1_000_000,
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":  # the child process of generate()
    _write_all([int(n) for n in sys.argv[1:]])
