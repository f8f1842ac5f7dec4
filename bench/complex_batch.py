"""Scenario 2, the seed's complex batch: orders (CSV in S3) joined with customers (MySQL),
aggregated per country, segment and day, overwritten in S3 as Parquet. etlc against the same
job written by hand, and etlc with its Avro stage boundary switched off, in one run.

The orders are the simple batch's generated CSV files (fixed seed), uploaded once per size to
the local S3 (moto); the 2,000 customers they reference are written to MySQL each run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import jobs, simple_batch
from tests.integration import databases as db
from tests.integration import objectstore as store
from tests.integration.test_s3 import lake_profile

DEFINITION = jobs.ROOT / "bench" / "pipelines" / "complex_batch.json"
HANDWRITTEN = jobs.ROOT / "bench" / "handwritten" / "complex_batch.py"
RAW, CURATED = "bench-raw", "bench-curated"
CUSTOMERS = 2_000  # the generator's customer ids are 1..2000
COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "PL", "SE", "US")
TABLE_DDL = (
    "CREATE TABLE bench_customers (customer_id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "country VARCHAR(8) NOT NULL, segment VARCHAR(16) NOT NULL)"
)
JOBS = ("handwritten", "etlc", "etlc_no_avro_boundary", "floor")
FLOOR = jobs.ROOT / "bench" / "handwritten" / "floor.py"


def upload_orders(s3: Any, records: int) -> str:
    """The orders in S3 (uploaded when not there yet); returns their key prefix."""
    local = simple_batch.generate(records)
    prefix = f"orders-{records}/"
    files = sorted(local.glob("*.csv"))
    if len(store.keys(s3, RAW, prefix)) != len(files):
        store.clear(s3, RAW, prefix)
        for f in files:
            s3.upload_file(str(f), RAW, prefix + f.name)
    return prefix


def seed_customers(creds: dict[str, Any]) -> None:
    rows = [
        (i, f"customer {i}", COUNTRIES[i % len(COUNTRIES)], ("CONSUMER", "BUSINESS")[i % 3 == 0])
        for i in range(1, CUSTOMERS + 1)
    ]
    db.my_execute(
        creds,
        ["DROP TABLE IF EXISTS bench_customers", TABLE_DDL],
        rows,
        "INSERT INTO bench_customers VALUES (%s, %s, %s, %s)",
    )


def run(records: int, work: Path, names: tuple[str, ...] = JOBS) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    creds = db.credentials()
    s3 = store.connect(creds)
    store.ensure_buckets(s3, RAW, CURATED)
    upload_orders(s3, records)
    seed_customers(creds)
    vault = work / "vault.json"
    vault.unlink(missing_ok=True)
    secret_env = {"ETLC_VAULT_PASSWORD": db.seed_vault(vault, creds)}
    script = jobs.compile_pipeline(DEFINITION, work / "generated")
    s3c = creds["s3"]
    profiles = db.profiles(creds) | {"lake": lake_profile(s3c["endpoint"])}
    total = records + CUSTOMERS  # what the extracts read: every order and every customer

    def etlc(name: str, boundary: bool) -> dict[str, Any]:
        env = {
            "variables": {"records": str(records), "job": name},
            "spark": dict(jobs.SPARK_CONF),
            "etlc": {"stage_dir": str(work / "stage"), "avro_boundary": boundary},
            "vault": {"backend": "file", "path": str(vault)},
            "connections": profiles,
        }
        return jobs.etlc_job(name, script, env, work, total, extra_env=secret_env)

    def handwritten(name: str = "handwritten", script: Path = HANDWRITTEN) -> dict[str, Any]:
        my = creds["mysql"]
        args = [
            f"s3a://{RAW}/orders-{records}/*.csv",
            f"s3a://{CURATED}/{name}/revenue/",
            s3c["endpoint"],
            f"jdbc:mysql://{my['host']}:{my['port']}/{my['database']}?permitMysqlScheme=true",
            my["user"],
        ]
        environ = {
            "BENCH_S3_ACCESS_KEY": s3c["access_key"],
            "BENCH_S3_SECRET_KEY": s3c["secret_key"],
            "BENCH_MYSQL_PASSWORD": my["password"],
        }
        return jobs.handwritten_job(
            name,
            script,
            ["complex", *args] if name == "floor" else args,
            work,
            total,
            jars=jobs.artifacts(DEFINITION),
            extra_env=environ,
        )

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "handwritten": handwritten,
        "etlc": lambda: etlc("etlc", True),
        "etlc_no_avro_boundary": lambda: etlc("etlc_no_avro_boundary", False),
        "floor": lambda: handwritten("floor", FLOOR),
    }
    done = [runs[name]() for name in names]
    # records/s counts the orders, the seed's measure; the customers are reference data.
    for job in done:
        job["records_per_s"] = round(records / job["seconds"])
    return {
        "scenario": "complex_batch",
        "records": records,
        "reference_records": CUSTOMERS,
        "jobs": done,
        **jobs.comparison(done),
        "seed_floor_records_per_s": 10_000,
        "target_records_per_s": 200_000,
        "cores": os.cpu_count(),
    }
