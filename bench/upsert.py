"""Scenario 4, upsert: ``records`` orders upserted by key into PostgreSQL and into MySQL, half
of them updates. etlc against the same job written by hand, and etlc with its Avro stage
boundary switched off, in one run.

Before each job both ``bench_orders`` tables are reset to hold the first half of the keys,
with an older ``ordered_at`` than any input row, so the first half of the input updates rows
and the second half inserts them. After each job both tables are checked: every key once,
every row the input's version.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import jobs, simple_batch
from tests.integration import databases as db

DEFINITION = jobs.ROOT / "bench" / "pipelines" / "upsert.json"
HANDWRITTEN = jobs.ROOT / "bench" / "handwritten" / "upsert.py"
JOBS = ("handwritten", "etlc", "etlc_no_avro_boundary")
OLDER = "2025-12-01 00:00:00"  # before every generated ordered_at (2026-01-01 .. 01-08)
PG_TABLE = (
    "CREATE TABLE bench_orders (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, "
    "amount NUMERIC(12, 2) NOT NULL, status TEXT NOT NULL, ordered_at TIMESTAMP NOT NULL, "
    "coupon TEXT)"
)
MY_TABLE = (
    "CREATE TABLE bench_orders (order_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL, "
    "amount DECIMAL(12, 2) NOT NULL, status VARCHAR(16) NOT NULL, "
    "ordered_at DATETIME(6) NOT NULL, coupon VARCHAR(32))"
)


def reset_targets(creds: dict[str, Any], existing: int) -> None:
    """Both tables hold keys 1..existing, each an older version than the input's."""
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_orders")
        conn.execute(PG_TABLE)
        conn.execute(
            "INSERT INTO bench_orders SELECT g, 0, 0, 'NEW', %s, NULL "
            "FROM generate_series(1, %s) AS g",
            (OLDER, existing),
        )
    # MariaDB's sequence engine: seq_1_to_<n> is a table of 1..n, made on the fly.
    db.my_execute(
        creds,
        [
            "DROP TABLE IF EXISTS bench_orders",
            MY_TABLE,
            "INSERT INTO bench_orders SELECT seq, 0, 0, 'NEW', "
            f"'{OLDER}', NULL FROM seq_1_to_{existing}",
        ],
    )


def check_targets(creds: dict[str, Any], records: int, job: str) -> None:
    """Every key once, each row the input's version (newer than the seeded ones)."""
    query = (
        f"SELECT COUNT(*), COUNT(DISTINCT order_id), SUM(ordered_at > '{OLDER}') FROM bench_orders"
    )
    pg = db.pg_rows(creds, query.replace("SUM(ordered_at", "COUNT(*) FILTER (WHERE ordered_at"))
    my = db.my_rows(creds, query)
    for system, [row] in (("postgres", pg), ("mysql", my)):
        if tuple(int(v) for v in row) != (records, records, records):
            raise jobs.JobFailedError(
                f"{job}: {system}.bench_orders holds {row} (rows, keys, input versions); "
                f"expected {records} of each"
            )


def run(records: int, work: Path, names: tuple[str, ...] = JOBS) -> dict[str, Any]:
    source = simple_batch.generate(records)
    work.mkdir(parents=True, exist_ok=True)
    creds = db.credentials()
    vault = work / "vault.json"
    vault.unlink(missing_ok=True)
    secret_env = {"ETLC_VAULT_PASSWORD": db.seed_vault(vault, creds)}
    script = jobs.compile_pipeline(DEFINITION, work / "generated")
    existing = records // 2

    def etlc(name: str, boundary: bool) -> dict[str, Any]:
        env = {
            "variables": {"data_dir": str(source)},
            "spark": dict(jobs.SPARK_CONF),
            "etlc": {"stage_dir": str(work / "stage"), "avro_boundary": boundary},
            "vault": {"backend": "file", "path": str(vault)},
            "connections": db.profiles(creds),
        }
        result = jobs.etlc_job(name, script, env, work, records, extra_env=secret_env)
        for step in result["steps"]:
            if step["stage"] == "load":
                result[f"{step['step']}_s"] = round(step["duration_ms"] / 1000, 2)
        return result

    def handwritten() -> dict[str, Any]:
        pg, my = creds["postgres"], creds["mysql"]
        args = [
            str(source),
            f"{pg['host']}:{pg['port']}/{pg['database']}",
            pg["user"],
            f"{my['host']}:{my['port']}/{my['database']}",
            my["user"],
        ]
        environ = {"BENCH_PG_PASSWORD": pg["password"], "BENCH_MYSQL_PASSWORD": my["password"]}
        return jobs.handwritten_job(
            "handwritten",
            HANDWRITTEN,
            args,
            work,
            records,
            jars=jobs.artifacts(DEFINITION),
            extra_env=environ,
        )

    runs: dict[str, Callable[[], dict[str, Any]]] = {
        "handwritten": handwritten,
        "etlc": lambda: etlc("etlc", True),
        "etlc_no_avro_boundary": lambda: etlc("etlc_no_avro_boundary", False),
    }
    done = []
    for name in names:
        reset_targets(creds, existing)
        done.append(runs[name]())
        check_targets(creds, records, name)
    return {
        "scenario": "upsert",
        "records": records,
        "updates": existing,
        "jobs": done,
        **jobs.comparison(done),
        "cores": os.cpu_count(),
    }
