"""An executor JVM killed with SIGKILL in the middle of a load on the standalone cluster.

The standalone worker starts a new executor, Spark runs the lost tasks again on it, and the
load still lands exactly once: a database load because each task writes its rows to the
staging table in one transaction (the killed task's rows vanish with its connection), a files
load because the output committer publishes only committed task attempts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests.integration import databases as db
from tests.integration.conftest import Submission, compile_variant, example, submit
from tests.integration.test_database_loads import CHECK_ENV, COLUMNS, as_row

# A schema of its own: no other test's tables or staging tables can show up in it.
SCHEMA = "etlc_executor_loss"
TABLE = f"{SCHEMA}.orders"
EXECUTOR = "org.apache.spark.executor.CoarseGrainedExecutorBackend"
# Several tasks per stage: whenever the load runs, some task is in the middle of its write.
SPARK_CONF = {**db.TEST_SPARK_CONF, "spark.sql.files.maxPartitionBytes": "4m"}
# About a third of what the first two tasks of the database load write (each ~73k rows).
STAGED_BYTES = 4 << 20


def _ppid(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    return int(stat.rsplit(")", 1)[1].split()[1])


def own_executors() -> dict[int, Path]:
    """The executor JVMs of this session's standalone worker (the worker is a child of this
    process, its executors children of the worker), each with its work directory. Other
    sessions' executors on this machine are not touched."""
    found: dict[int, Path] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if EXECUTOR.encode() in argv and _ppid(_ppid(int(proc.name))) == os.getpid():
                found[int(proc.name)] = Path(os.readlink(proc / "cwd"))
        except (OSError, ValueError):  # a process that ended while we looked
            continue
    return found


class ExecutorKiller:
    """Kills this session's executor with SIGKILL the first time ``under_way`` holds."""

    def __init__(self, under_way: Callable[[], bool], timeout: float = 240) -> None:
        self.under_way = under_way
        self.timeout = timeout
        self.killed: list[Path] = []  # the killed executors' work directories
        self.errors: list[BaseException] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ExecutorKiller:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.done.set()
        self.thread.join(timeout=60)

    def _watch(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while not self.done.is_set() and time.monotonic() < deadline:
                executors = own_executors() if self.under_way() else {}
                for pid, work in executors.items():
                    os.kill(pid, signal.SIGKILL)
                    self.killed.append(work)
                if executors:
                    return
                self.done.wait(0.1)
        except BaseException as exc:  # surfaced in the test thread
            self.errors.append(exc)

    def check(self, run: Submission) -> Path:
        """The one killed executor's work directory; fails the test if the window was missed."""
        assert not self.errors, self.errors
        if len(self.killed) != 1:
            pytest.fail(
                f"killed {len(self.killed)} executors, not one: the load was not seen under way "
                f"while an executor ran\n{run.stderr[-4000:]}"
            )
        return self.killed[0]


def assert_write_survived_the_loss(run: Submission, killed: Path, rows: int) -> dict[str, Any]:
    """The run succeeded, the killed executor had tasks of the load's stage running (the last
    Spark stage of the run), Spark ran them again on a new executor and never ran the stage
    again. Returns that stage's line."""
    log = run.stderr[-4000:]
    assert run.returncode == 0, f"{run.events[-3:]}\n{log}"
    lost = killed.name
    *_, write = run.event("spark_stage_completed")
    assert (write["status"], write["stage_attempt"]) == ("succeeded", 0), write
    # Spark counts the rows of successful task attempts only: the lost ones' rows are not in.
    assert write["records_written"] == rows, write
    assert f"Lost executor {lost} on 127.0.0.1: Command exited with code 137" in run.stderr, log
    lost_tasks = re.findall(
        rf"Lost task (\d+)\.0 in stage {write['stage_id']}\.0 \(TID \d+\) "
        rf"\(127\.0\.0\.1 executor {lost}\): ExecutorLostFailure",
        run.stderr,
    )
    assert lost_tasks, log
    # The worker gives each executor it launches for the application a directory of its own.
    launched = sorted(int(p.name) for p in killed.parent.iterdir())
    assert launched == [int(lost), int(lost) + 1], launched
    # Each lost task ran again, as its second attempt, on the new executor (its log is INFO).
    new = (killed.parent / str(int(lost) + 1) / "stderr").read_text("utf-8", errors="replace")
    for task in lost_tasks:
        assert f"Running task {task}.1 in stage {write['stage_id']}.0" in new, new[-4000:]
    return write


def write_input(tmp: Path, count: int, seed: int) -> list[demo.Order]:
    orders = demo.generate(orders=count, customers=2_000, seed=seed).orders
    demo.write(demo.DemoData(orders, []), tmp / "data", files=1)
    return orders


@pytest.fixture
def target(creds: dict[str, Any]) -> Iterator[str]:
    """An empty target table in a schema of its own, dropped afterwards."""
    drop = f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"
    with db.postgres(creds) as conn:
        conn.execute(drop)
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
        # No primary key: a row written twice would stay there twice.
        conn.execute(
            f"CREATE TABLE {TABLE} (order_id BIGINT, customer_id BIGINT NOT NULL, "
            "amount DECIMAL(12, 2) NOT NULL, status VARCHAR(16) NOT NULL, "
            "ordered_at TIMESTAMP NOT NULL, coupon VARCHAR(16))"
        )
    yield TABLE
    with db.postgres(creds) as conn:
        conn.execute(drop)


def test_a_database_load_survives_a_killed_executor_and_lands_exactly_once(
    standalone_master: str,
    target: str,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    tmp_path: Path,
) -> None:
    doc = example("orders_to_postgres")
    doc["name"] = "orders_to_postgres_executor_loss"
    doc["load"][0]["table"] = target
    driver = compile_variant(tmp_path, doc, CHECK_ENV)
    orders = write_input(tmp_path, 400_000, seed=41)
    env = db.env_file(
        tmp_path / "env.json",
        creds,
        vault[0],
        {"data_dir": str(tmp_path / "data")},
        spark=SPARK_CONF,
        stage_dir=str(tmp_path / "stage"),
    )

    with db.postgres(creds) as watcher:

        def writing() -> bool:
            # Tasks' transactions copying into the staging table, uncommitted, that have
            # written many rows already (heap pages grow before the commit): had each chunk
            # committed on its own, a re-run task would double those rows.
            [(open_writes,)] = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                "AND query LIKE %s",
                (f'COPY "{SCHEMA}"."etlc_stage_%',),
            ).fetchall()
            [(written,)] = watcher.execute(
                "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c JOIN "
                "pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s "
                "AND c.relname LIKE 'etlc_stage_%%' AND c.relkind = 'r'",
                (SCHEMA,),
            ).fetchall()
            return bool(open_writes) and written >= STAGED_BYTES

        with ExecutorKiller(writing) as killer:
            done = submit(
                driver,
                env,
                master=standalone_master,
                extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
            )
    want = sorted(as_row(o) for o in orders if o.status != "CANCELLED")
    assert_write_survived_the_loss(done, killer.check(done), len(want))
    load = next(e for e in done.event("step_finished") if e["stage"] == "load")
    assert (load["records_in"], load["records_out"]) == (len(want), len(want))
    assert load["staged_with"] == "copy"
    got = sorted(db.pg_rows(creds, f"SELECT {COLUMNS} FROM {target}"))
    landed, expected = len(got), len(want)  # a short message when rows are doubled
    assert landed == expected
    assert got == want
    tables = db.pg_rows(creds, f"SELECT tablename FROM pg_tables WHERE schemaname = '{SCHEMA}'")
    assert tables == [("orders",)]  # no staging table left behind


def test_a_files_load_survives_a_killed_executor_and_writes_each_row_once(
    standalone_master: str, spark: Any, tmp_path: Path
) -> None:
    doc = example("orders_to_postgres")
    doc["name"] = "orders_to_parquet_executor_loss"
    doc["load"][0] = {
        "input": "live",
        "type": "files",
        "path": "${out_dir}/orders",
        "format": "parquet",
        "mode": "overwrite",
    }
    check_env = {"variables": {"data_dir": "d", "out_dir": "o"}}
    driver = compile_variant(tmp_path, doc, check_env)
    orders = write_input(tmp_path, 200_000, seed=42)
    out = tmp_path / "out" / "orders"
    env = tmp_path / "env.json"
    variables = {"data_dir": str(tmp_path / "data"), "out_dir": str(out.parent)}
    settings = {"stage_dir": str(tmp_path / "stage")}
    env.write_text(json.dumps({"variables": variables, "spark": SPARK_CONF, "etlc": settings}))

    def writing() -> bool:
        # A task attempt's file under the committer's work directory: a task is writing it
        # (in the target's pending folder when the run validates its source in the same job).
        attempts = "_temporary/*/_temporary/attempt_*/part-*"
        return any(out.glob(attempts)) or any(out.glob(f"_etlc_pending-*/{attempts}"))

    with ExecutorKiller(writing) as killer:
        done = submit(driver, env, master=standalone_master)
    # The timestamp as the UTC text Spark casts it to: no time zone of this process involved.
    want = sorted(
        (*as_row(o)[:4], f"{o.ordered_at:%Y-%m-%d %H:%M:%S}", o.coupon)
        for o in orders
        if o.status != "CANCELLED"
    )
    write = assert_write_survived_the_loss(done, killer.check(done), len(want))

    # Committed, and nothing of a killed attempt left: no _temporary, one file per task.
    others = sorted(p.name for p in out.iterdir() if "part-" not in p.name)
    assert others == ["._SUCCESS.crc", "_SUCCESS"], others
    parts = sorted(p.name.split("-")[1] for p in out.glob("part-*.parquet"))
    assert parts == [f"{i:05d}" for i in range(write["tasks"])]
    columns = "order_id, customer_id, amount, status, CAST(ordered_at AS STRING), coupon"
    got = sorted(
        tuple(r) for r in spark.read.parquet(str(out)).selectExpr(*columns.split(", ")).collect()
    )
    landed, expected = len(got), len(want)  # a short message when rows are doubled
    assert landed == expected
    assert got == want
