"""Every write mode of the PostgreSQL and MySQL sinks, through compiled drivers and spark-submit.

Append adds to what is there; overwrite replaces the table so that a reader polling it all the
while sees the old rows or the new ones and nothing in between; upsert keeps the last row of a
key that appears twice in one batch, dead-letters the row the target's CHECK refuses, lands the
rest and ends PARTIAL with input = written + dead-lettered + superseded. A database crashed
before a load is retried after the restart, and the load an earlier attempt committed is not
repeated. A database that crashes in the middle of a write and stays down fails the run after
its fourth attempt, and the target is byte for byte what it was.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests.integration import databases as db
from tests.integration.conftest import ROOT, Submission, compile_variant, example, submit

TABLE = "orders_copy"
COLUMNS = "order_id, customer_id, amount, status, ordered_at, coupon"
# The same table in both systems; MySQL's TIMESTAMP would convert time zones, DATETIME does not.
DDL = (
    f"CREATE TABLE {TABLE} (order_id BIGINT{{key}}, customer_id BIGINT NOT NULL, "
    "amount DECIMAL(12, 2) NOT NULL, status VARCHAR(16) NOT NULL, ordered_at {ts} NOT NULL, "
    "coupon VARCHAR(16), CONSTRAINT no_fraud CHECK (coupon IS NULL OR coupon <> 'FRAUD'))"
)
TIMESTAMP = {"postgres": "TIMESTAMP", "mysql": "DATETIME(6)"}
CONNECTION = {"postgres": "warehouse", "mysql": "crm"}
SERVICE = {"postgres": "postgres", "mysql": "mariadb"}  # names scripts/services.sh knows
UNRELATED_ID = 10_000_000  # ids of rows already in the target that no input row touches

Row = tuple[Any, ...]
# What the compiler checks a definition against: the variable and the connection profiles.
CHECK_ENV = {"variables": {"data_dir": "d"}, "connections": db.profiles(db.credentials())}


@dataclass
class Target:
    system: str
    creds: dict[str, Any]

    def reset(self, rows: list[Row], primary_key: bool = True) -> None:
        ddl = DDL.format(key=" PRIMARY KEY" if primary_key else "", ts=TIMESTAMP[self.system])
        insert = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
        if self.system == "mysql":
            db.my_execute(self.creds, [f"DROP TABLE IF EXISTS {TABLE}", ddl], rows, insert)
            return
        with db.postgres(self.creds) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
            conn.execute(ddl)
            with conn.cursor() as cur:
                cur.executemany(insert, rows)

    def query(self, sql: str) -> list[Row]:
        if self.system == "mysql":
            return db.my_rows(self.creds, sql)
        return db.pg_rows(self.creds, sql)

    def rows(self) -> list[Row]:
        return sorted(self.query(f"SELECT {COLUMNS} FROM {TABLE}"))


def as_row(o: demo.Order) -> Row:
    return (
        o.order_id,
        o.customer_id,
        o.amount,
        o.status,
        o.ordered_at.replace(tzinfo=None),
        o.coupon,
    )


def live(orders: list[demo.Order]) -> dict[int, Row]:
    """What the filter passes, one row per order id, the last one of an id winning."""
    return {o.order_id: as_row(o) for o in orders if o.status != "CANCELLED"}


def unrelated(count: int) -> list[Row]:
    base = demo.generate(orders=count, customers=10, seed=99).orders
    return [as_row(replace(o, order_id=UNRELATED_ID + o.order_id)) for o in base]


def variant(
    tmp: Path, name: str, system: str, mode: str, retry: dict[str, int] | None = None, **load: Any
) -> Path:
    """``name`` with its one load retargeted to ``system`` in ``mode`` (and its ``retry``);
    the compiled driver."""
    doc = example(name)
    doc["load"][0].update(type=system, connection=CONNECTION[system], mode=mode, **load)
    doc["name"] = f"{name}_{system}_{mode}"
    if retry is not None:
        doc["retry"] = retry
    return compile_variant(tmp, doc, CHECK_ENV)


def run(
    driver: Path,
    tmp: Path,
    orders: list[demo.Order],
    creds: dict[str, Any],
    vault: tuple[Path, str],
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    faults: str | None = None,
    stage: Path | None = None,
) -> Submission:
    data = tmp / "data"
    # One file: its rows are read in file order, so "the last row of a key" is well defined.
    demo.write(demo.DemoData(orders, []), data, files=1)
    env = db.env_file(
        tmp / "env.json",
        creds,
        vault[0],
        {"data_dir": str(data)},
        stage_dir=str(stage or tmp / "stage"),
        dead_letter_dir=str(tmp / "dead-letter"),
    )
    return submit(
        driver,
        env,
        extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
        on_event=on_event,
        faults=faults,
    )


def failure(run: Submission) -> str:
    return f"{run.events[-3:]}\n{run.stderr[-3000:]}"


def load_event(run: Submission) -> dict[str, Any]:
    return next(e for e in run.event("step_finished") if e["stage"] == "load")


SYSTEMS = pytest.mark.parametrize("system", ["postgres", "mysql"])


@SYSTEMS
def test_append_adds_the_rows_to_what_is_there(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    target = Target(system, creds)
    before = unrelated(40)
    target.reset(before)
    orders = demo.generate(orders=1_500, customers=50, seed=21).orders
    done = run(
        variant(tmp_path, "orders_to_postgres", system, "append"), tmp_path, orders, creds, vault
    )
    assert done.returncode == 0, failure(done)
    want = live(orders)
    load = load_event(done)
    assert (load["mode"], load["table"], load["records_in"], load["records_out"]) == (
        "append",
        TABLE,
        len(want),
        len(want),
    )
    assert target.rows() == sorted(before + list(want.values()))


@SYSTEMS
def test_overwrite_is_atomic_for_a_concurrent_reader(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    target = Target(system, creds)
    before = unrelated(2_500)
    target.reset(before)
    orders = demo.generate(orders=4_000, customers=50, seed=22).orders
    want = live(orders)
    assert len(want) != len(before)
    with poller(target) as seen:
        done = run(
            variant(tmp_path, "orders_to_mysql", system, "overwrite"),
            tmp_path,
            orders,
            creds,
            vault,
        )
    assert done.returncode == 0, failure(done)
    assert target.rows() == sorted(want.values())
    # Every count the reader saw is the old table's or the new one's: never empty, never partial.
    assert set(seen) == {len(before), len(want)}, sorted(set(seen))


@SYSTEMS
def test_upsert_keeps_the_last_row_per_key_and_dead_letters_the_refused_row(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    target = Target(system, creds)
    orders = demo.generate(orders=1_500, customers=50, seed=23).orders
    shipped = [o for o in orders if o.status != "CANCELLED"]
    stale = [as_row(replace(o, amount=Decimal("0.01"), status="NEW")) for o in shipped[:30]]
    others = unrelated(20)
    target.reset(stale + others)
    # The same order twice in one batch (the later row must win) and one row the CHECK refuses.
    again = replace(shipped[40], amount=shipped[40].amount + 1, status="SHIPPED")
    fraud = replace(shipped[41], order_id=len(orders) + 1, coupon="FRAUD")
    batch = [*orders, again, fraud]
    done = run(
        variant(tmp_path, "orders_to_postgres", system, "upsert", keys=["order_id"]),
        tmp_path,
        batch,
        creds,
        vault,
    )
    assert done.returncode == 3, failure(done)
    finished = done.event("run_finished")[-1]
    assert finished["status"] == "PARTIAL"
    load = load_event(done)
    rows_in = sum(1 for o in batch if o.status != "CANCELLED")
    assert (load["records_in"], load["dead_lettered"], load["superseded"]) == (rows_in, 1, 1)
    assert load["records_out"] == rows_in - 2  # input = written + dead-lettered + superseded
    want = live(batch)
    del want[fraud.order_id]
    assert want[again.order_id] == as_row(again)
    assert target.rows() == sorted([*want.values(), *others])
    [letter] = done.event("dead_letter")
    assert (letter["key"], letter["sqlstate"][:2], letter["constraint"]) == (
        {"order_id": fraud.order_id},
        "23",
        "no_fraud",
    )
    assert "FRAUD" not in str(done.events)  # the refused row's values stay out of the logs


@SYSTEMS
def test_an_upsert_by_sequence_never_replaces_a_newer_row(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    target = Target(system, creds)
    orders = [o for o in demo.generate(orders=400, customers=20, seed=31).orders]
    shipped = [o for o in orders if o.status != "CANCELLED"]
    day = timedelta(days=1)
    # The table holds 20 of the keys in a newer version than the input's, 20 in an older one.
    newer = [
        as_row(replace(o, amount=Decimal("1.11"), ordered_at=o.ordered_at + day))
        for o in shipped[:20]
    ]
    older = [
        as_row(replace(o, amount=Decimal("2.22"), ordered_at=o.ordered_at - day))
        for o in shipped[20:40]
    ]
    target.reset(newer + older)
    # A key twice in one batch, the later version first in the file: the greatest ordered_at wins.
    later = replace(
        shipped[50], amount=shipped[50].amount + 5, ordered_at=shipped[50].ordered_at + day
    )
    batch = [later, *orders]
    done = run(
        variant(
            tmp_path,
            "orders_to_postgres",
            system,
            "upsert",
            keys=["order_id"],
            sequence_by="ordered_at",
        ),
        tmp_path,
        batch,
        creds,
        vault,
    )
    assert done.returncode == 0, failure(done)
    load = load_event(done)
    assert (load["records_in"], load["superseded"]) == (len(shipped) + 1, 1)
    want = {o.order_id: as_row(o) for o in shipped}
    want |= {r[0]: r for r in newer}  # kept: newer than what came
    want[later.order_id] = as_row(later)
    assert target.rows() == sorted(want.values())


@contextmanager
def poller(target: Target) -> Iterator[list[int]]:
    """Count the target's rows, each count in a transaction of its own, until the block ends."""
    seen: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            while not stop.is_set():
                seen.extend(r[0] for r in target.query(f"SELECT COUNT(*) FROM {TABLE}"))
        except BaseException as exc:  # surfaced in the test thread below
            errors.append(exc)

    reader = threading.Thread(target=poll, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not errors, errors


def services(*args: str) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(("first", "crashed"), [("mysql", "postgres"), ("postgres", "mysql")])
def test_a_database_crashed_between_attempts_is_retried_and_nothing_is_duplicated(
    first: str,
    crashed: str,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    tmp_path: Path,
) -> None:
    """Two appends, to tables without a key (a repeated append would show as duplicates). The
    second one's server is crashed before the run and restarted once the attempt has failed."""
    targets = [Target(first, creds), Target(crashed, creds)]
    for t in targets:
        t.reset([], primary_key=False)
    doc = example("orders_to_postgres")
    template = doc["load"][0]
    doc["load"] = [
        {**template, "type": s, "connection": CONNECTION[s], "mode": "append"}
        for s in (first, crashed)
    ]
    doc["name"] = f"orders_to_{first}_and_{crashed}"
    driver = compile_variant(tmp_path, doc, CHECK_ENV)
    orders = demo.generate(orders=1_500, customers=50, seed=24).orders
    restarted: list[str] = []

    def restart_after_the_failed_attempt(event: dict[str, Any]) -> None:
        if event.get("event") == "attempt_failed" and not restarted:
            services("up", SERVICE[crashed])  # the driver waits 5 s before its next attempt
            restarted.append(event["step"])

    services("crash", SERVICE[crashed])
    try:
        done = run(
            driver, tmp_path, orders, creds, vault, on_event=restart_after_the_failed_attempt
        )
    finally:
        services("up", SERVICE[crashed])
    assert done.returncode == 0, failure(done)
    [failed] = done.event("attempt_failed")
    assert (failed["attempt"], failed["step"], failed["error_kind"]) == (
        1,
        "load_2_live",
        "transient",
    )
    assert CONNECTION[crashed] in failed["error"]
    assert done.event("run_finished")[-1]["attempts"] == 2
    assert [e["step"] for e in done.event("step_skipped")] == ["load_1_live"]
    want = sorted(live(orders).values())
    for t in targets:
        assert t.rows() == want, t.system


# Every row of the target, in key order, as the server itself renders it.
CHECKSUM = {
    "postgres": f"SELECT md5(string_agg(t::text, '|' ORDER BY order_id)) FROM {TABLE} t",
    "mysql": f"SELECT MD5(GROUP_CONCAT(CONCAT_WS(',', {COLUMNS}) ORDER BY order_id "
    f"SEPARATOR '|')) FROM {TABLE}",
}


@SYSTEMS
def test_a_database_down_through_every_attempt_fails_the_run_and_leaves_the_target_unchanged(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The server is crashed from inside the staging write, after the first 12,000 rows (two
    JDBC batches) were handed to it, and brought back only after the run has ended."""
    target = Target(system, creds)
    target.reset(unrelated(300))
    before, checksum = target.rows(), target.query(CHECKSUM[system])
    # Three retries a second apart: the outage outlasts them all the same (retries 5 s apart
    # are test_end_to_end's to check).
    retry = {"max_retries": 3, "delay_seconds": 1}
    driver = variant(tmp_path, "orders_to_postgres", system, "overwrite", retry=retry)
    orders = demo.generate(orders=30_000, customers=200, seed=26).orders
    try:
        done = run(
            driver, tmp_path, orders, creds, vault, faults="crash-mid-write:load_1_live:12000"
        )
    finally:
        services("up", SERVICE[system])
    assert done.returncode != 0, failure(done)
    failed = done.event("attempt_failed")
    assert [(e["step"], e["error_kind"], e["outage_attempt"]) for e in failed] == [
        ("load_1_live", "transient", n) for n in (1, 2, 3, 4)
    ], failure(done)
    assert [e.get("retrying_in_s") for e in failed] == [1, 1, 1, None]
    assert all(CONNECTION[system] in e["error"] for e in failed), [e["error"] for e in failed]
    [finished] = done.event("run_finished")
    assert (finished["status"], finished["attempts"]) == ("FAILED", 4)
    assert target.rows() == before
    assert target.query(CHECKSUM[system]) == checksum


@contextmanager
def small_filesystem(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (the tests run as root on the CI machine)."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "etlc-test", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"cannot mount a tmpfs (root needed): {done.stderr}"
    try:
        yield path
    finally:
        with suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(path)], check=True, capture_output=True)


def test_a_full_stage_directory_fails_the_run_naming_it_and_the_target_is_unchanged(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    target = Target("postgres", creds)
    target.reset(unrelated(50))
    before = target.rows()
    driver = variant(tmp_path, "orders_to_postgres", "postgres", "overwrite")
    orders = demo.generate(orders=60_000, customers=200, seed=27).orders
    with small_filesystem(tmp_path / "small", "1m") as small:
        done = run(driver, tmp_path, orders, creds, vault, stage=small / "stage")
        left = [p for p in small.rglob("*") if p.is_file()]
    assert done.returncode == 1, failure(done)
    [finished] = done.event("run_finished")
    assert (finished["status"], finished["error_kind"], finished["attempts"]) == (
        "FAILED",
        "no_space",
        1,
    )
    assert finished["error"] == (
        f"step `orders`: the stage directory {small / 'stage'} (etlc.stage_dir) is full: no "
        "space left for the extract's records; nothing was loaded. Free space there or point "
        "etlc.stage_dir at a larger filesystem"
    )
    assert left == []  # the failed attempt's partial files are gone
    assert not done.event("step_finished")
    assert target.rows() == before
