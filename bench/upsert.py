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
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import jobs, simple_batch
from etlc.connectors.mysql import MySqlDialect
from etlc.connectors.postgres import PostgresDialect
from tests.integration import databases as db

DEFINITION = jobs.ROOT / "bench" / "pipelines" / "upsert.json"
HANDWRITTEN = jobs.ROOT / "bench" / "handwritten" / "upsert.py"
JOBS = ("handwritten", "etlc", "etlc_no_avro_boundary", "floor")
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


NAMES = ("order_id", "customer_id", "amount", "status", "ordered_at", "coupon")
STAGING = "bench_orders_floor"


def _timed(call: Callable[[], None]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


def _client(command: list[str], environ: dict[str, str]) -> None:
    done = subprocess.run(
        command, env={**os.environ, **environ}, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise jobs.JobFailedError(f"floor: {command[0]} failed: {done.stderr[-2000:]}")


def floor(source: Path, creds: dict[str, Any], records: int) -> dict[str, Any]:
    """The servers' own bulk path for the same rows, timed here: each CSV file into a staging
    table by the database's own client (psql's \\copy; mariadb's LOAD DATA LOCAL INFILE), then
    the very upsert statement etlc's loader runs. No Spark, no validation, no de-duplication
    (the input has one row per key): the least time these servers need for this upsert."""
    files = sorted(source.glob("*.csv"))
    pg, my = creds["postgres"], creds["mysql"]
    psql = ["psql", "-h", pg["host"], "-p", str(pg["port"]), "-U", pg["user"], "-d"]
    psql += [pg["database"], "-v", "ON_ERROR_STOP=1", "-q"]
    pg_env = {"PGPASSWORD": pg["password"]}
    cols = ", ".join(NAMES)
    pg_copy = [
        f"\\copy {STAGING} ({cols}) FROM '{f}' WITH (FORMAT csv, HEADER true)" for f in files
    ]
    pg_upsert = PostgresDialect().upsert(
        "bench_orders", STAGING, NAMES, ["order_id"], "", sequence_by="ordered_at"
    )
    mariadb = ["mariadb", "-h", my["host"], "-P", str(my["port"]), "-u", my["user"]]
    mariadb += ["--local-infile=1", my["database"]]
    my_env = {"MYSQL_PWD": my["password"]}
    my_load = [
        f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE {STAGING} FIELDS TERMINATED BY ',' "
        "OPTIONALLY ENCLOSED BY '\"' IGNORE 1 LINES "
        "(order_id, customer_id, amount, status, @at, @coupon) "
        "SET ordered_at = REPLACE(REPLACE(@at, 'T', ' '), 'Z', ''), coupon = NULLIF(@coupon, '')"
        for f in files
    ]
    my_upsert = MySqlDialect().upsert(
        "bench_orders", STAGING, NAMES, ["order_id"], "", sequence_by="ordered_at"
    )
    like = f"CREATE TABLE {STAGING} AS SELECT * FROM bench_orders WHERE 1 = 0"
    drop = f"DROP TABLE IF EXISTS {STAGING}"
    _client([*psql, "-c", drop, "-c", like], pg_env)
    _client([*mariadb, "-e", f"{drop}; {like}"], my_env)
    phases = {
        "to_postgres_staging_s": _timed(
            lambda: _client([*psql, *(a for c in pg_copy for a in ("-c", c))], pg_env)
        ),
        "to_postgres_move_s": _timed(lambda: _client([*psql, "-c", pg_upsert], pg_env)),
        "to_mysql_staging_s": _timed(lambda: _client([*mariadb, "-e", "; ".join(my_load)], my_env)),
        "to_mysql_move_s": _timed(lambda: _client([*mariadb, "-e", my_upsert], my_env)),
    }
    _client([*psql, "-c", drop], pg_env)
    _client([*mariadb, "-e", drop], my_env)
    seconds = sum(phases.values())
    return jobs.timed("floor", seconds, records) | {
        "to_postgres_s": round(phases["to_postgres_staging_s"] + phases["to_postgres_move_s"], 2),
        "to_mysql_s": round(phases["to_mysql_staging_s"] + phases["to_mysql_move_s"], 2),
        **{k: round(v, 2) for k, v in phases.items()},
        "wall_s": round(seconds, 2),
    }


def speedups(done: list[dict[str, Any]]) -> dict[str, float]:
    """Per database: hand-written's time over etlc's (rows/s ratio) and etlc's over the
    floor's, from one run's jobs."""
    by = {j["job"]: j for j in done}
    out = {}
    for system in ("postgres", "mysql"):
        key = f"to_{system}_s"
        if {"etlc", "handwritten"} <= by.keys():
            out[f"{system}_over_handwritten"] = round(by["handwritten"][key] / by["etlc"][key], 2)
        if {"etlc", "floor"} <= by.keys():
            out[f"{system}_etlc_over_floor"] = round(by["etlc"][key] / by["floor"][key], 2)
    return out


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
                for phase in ("staging", "move"):
                    ms = step.get("extra", {}).get(f"{phase}_ms")
                    if ms is not None:
                        result[f"{step['step']}_{phase}_s"] = round(ms / 1000, 2)
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
        "floor": lambda: floor(source, creds, records),
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
        **{k: v for k, v in jobs.comparison(done).items() if k != "etlc_of_floor"},
        **speedups(done),
        "cores": os.cpu_count(),
    }
