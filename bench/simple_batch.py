"""Scenario 1, simple batch: files -> validation -> filter + derive -> files, etlc against the
same job written by hand, and etlc with its Avro stage boundary switched off, in one run.

Each job runs through spark-submit on ``local[2]`` with the same Spark settings; its time is
measured inside the job (the SparkSession already up), so JVM start-up is reported apart.
The input is generated once per size with a fixed seed (hashes of the row number) and kept
under ``bench/data/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.procstat import Sampler
from etlc.cli import local_submit_env

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DATA = ROOT / "bench" / "data"
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
}


def generate(records: int) -> Path:
    """CSV order files with ``records`` rows (deterministic), made once per size, by a Spark
    of its own in a child process: this process's SparkSession (a test's) stays untouched."""
    target = DATA / f"orders-{records}"
    if not (target / "_SUCCESS").exists():
        subprocess.run(
            [sys.executable, "-m", "bench.simple_batch", str(records)], cwd=ROOT, check=True
        )
    return target


def _write_orders(records: int) -> None:
    target = DATA / f"orders-{records}"
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[2]")
        .appName("etlc-bench-data")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    try:

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
        df.write.mode("overwrite").option("header", True).csv(str(target))
    finally:
        spark.stop()


def _submit(args: list[str], log: Path) -> tuple[int, dict[str, float], list[dict[str, Any]]]:
    environ = local_submit_env("local[2]", "local")
    environ.update(ETLC_JARS_DIR=str(ROOT / "jars"), SPARK_LOCAL_IP="127.0.0.1")
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid).start()
        code = proc.wait()
    usage = sampler.stop() | {"wall_s": round(time.monotonic() - started, 2)}
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return code, usage, found


def _etlc(work: Path, source: Path, records: int, avro_boundary: bool) -> dict[str, Any]:
    name = "etlc" if avro_boundary else "etlc_no_avro_boundary"
    env = work / f"{name}.json"
    env.write_text(
        json.dumps(
            {
                "variables": {"data_dir": str(source), "out_dir": str(work / f"out-{name}")},
                "spark": dict(SPARK_CONF),
                "etlc": {"stage_dir": str(work / "stage"), "avro_boundary": avro_boundary},
            }
        ),
        encoding="utf-8",
    )
    script = work / "generated" / "simple_batch.submit.sh"
    args = ["bash", str(script), "--env-file", str(env)]
    code, usage, events = _submit(args, work / f"{name}.log")
    finished = [e for e in events if e.get("event") == "run_finished"]
    if code != 0 or not finished:
        raise RuntimeError(f"{name} failed ({code}); see {work / f'{name}.log'}")
    seconds = finished[-1]["duration_ms"] / 1000
    extract = next(s for s in finished[-1]["steps"] if s["stage"] == "extract")
    assert extract["records_in"] == records, extract
    result = {"job": name, "seconds": round(seconds, 2), "records_per_s": round(records / seconds)}
    return result | usage


def _handwritten(work: Path, source: Path, records: int) -> dict[str, Any]:
    conf = [a for k, v in SPARK_CONF.items() for a in ("--conf", f"{k}={v}")]
    args = [
        str(BIN / "spark-submit"),
        "--master",
        "local[2]",
        *conf,
        str(ROOT / "bench" / "handwritten" / "simple_batch.py"),
        str(source),
        str(work / "out-handwritten"),
    ]
    code, usage, events = _submit(args, work / "handwritten.log")
    done = [e for e in events if e.get("event") == "handwritten_finished"]
    if code != 0 or not done:
        raise RuntimeError(f"the hand-written job failed ({code}); see {work / 'handwritten.log'}")
    seconds = float(done[-1]["seconds"])
    return {
        "job": "handwritten",
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds),
    } | usage


JOBS = ("handwritten", "etlc", "etlc_no_avro_boundary")


def run(records: int, work: Path, jobs: tuple[str, ...] = JOBS) -> dict[str, Any]:
    source = generate(records)
    work.mkdir(parents=True, exist_ok=True)
    compiled = subprocess.run(
        [
            str(BIN / "etlc"),
            "compile",
            str(ROOT / "bench" / "pipelines" / "simple_batch.json"),
            "--out",
            str(work / "generated"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if compiled.returncode != 0:
        raise RuntimeError(compiled.stderr)
    runs = {
        "handwritten": lambda: _handwritten(work, source, records),
        "etlc": lambda: _etlc(work, source, records, avro_boundary=True),
        "etlc_no_avro_boundary": lambda: _etlc(work, source, records, avro_boundary=False),
    }
    done = [runs[job]() for job in jobs]
    by = {j["job"]: j for j in done}

    def ratio(a: str, b: str) -> float | None:
        return round(by[a]["seconds"] / by[b]["seconds"], 3) if a in by and b in by else None

    boundary = ratio("etlc", "etlc_no_avro_boundary")
    return {
        "scenario": "simple_batch",
        "records": records,
        "jobs": done,
        "etlc_over_handwritten": ratio("etlc", "handwritten"),
        "avro_boundary_cost": None if boundary is None else round(boundary - 1, 3),
        "seed_floor_records_per_s": 100_000,
        "target_records_per_s": 1_000_000,
        "cores": os.cpu_count(),
    }


if __name__ == "__main__":  # the child process of generate()
    _write_orders(int(sys.argv[1]))
