"""Incremental batch extracts against the real databases, through compiled drivers and
spark-submit: each run lands the rows that arrived since the last one exactly once; a run
killed before its load committed leaves the next run to read the same rows again, and one killed
right after the commit leaves nothing to read again; a lookback picks late rows up into an
upsert, and a row later than the lookback is not read. (Topics and folders:
test_incremental_sources.)"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from etlc import demo
from tests.integration import databases as db
from tests.integration.conftest import Submission, compile_variant, example, submit
from tests.integration.test_database_loads import CHECK_ENV, COLUMNS, TIMESTAMP, Row, as_row

SOURCE = "shop_orders"
TARGET = "orders_live"
CONNECTION = {"postgres": "warehouse", "mysql": "crm"}
LOAD = "load_1_live"


class Database:
    """The source and target tables of one system, and etlc's positions there."""

    def __init__(self, system: str, creds: dict[str, Any], pipeline: str) -> None:
        self.system = system
        self.creds = creds
        self.pipeline = pipeline

    def execute(
        self, statements: Sequence[str], rows: Sequence[Row] = (), insert: str = ""
    ) -> None:
        if self.system == "mysql":
            db.my_execute(self.creds, statements, rows, insert)
            return
        with db.postgres(self.creds) as conn:
            for statement in statements:
                conn.execute(statement)
            if rows:
                with conn.cursor() as cur:
                    cur.executemany(insert, rows)

    def reset(self, source: list[Row], key: bool) -> None:
        ts = TIMESTAMP[self.system]
        columns = (
            "(order_id BIGINT{key}, customer_id BIGINT NOT NULL, amount DECIMAL(12, 2) NOT NULL, "
            f"status VARCHAR(16) NOT NULL, ordered_at {ts} NOT NULL, coupon VARCHAR(16))"
        )
        self.execute(
            [
                f"DROP TABLE IF EXISTS {SOURCE}",
                f"DROP TABLE IF EXISTS {TARGET}",
                f"CREATE TABLE {SOURCE} {columns.format(key=' PRIMARY KEY')}",
                f"CREATE TABLE {TARGET} {columns.format(key=' PRIMARY KEY' if key else '')}",
                self.forget_positions(),
            ]
        )
        self.add(source)

    def forget_positions(self) -> str:
        """The statement that removes what the pipeline keeps. In MariaDB, the table itself:
        etlc makes it again, as a first run anywhere does. In PostgreSQL, the pipeline's rows
        only: test_incremental_sources keeps positions there at the same time."""
        if self.system == "mysql":
            return "DROP TABLE IF EXISTS etlc_incremental_state"
        return (
            "DO $$ BEGIN IF to_regclass('etlc_incremental_state') IS NOT NULL THEN "
            f"DELETE FROM etlc_incremental_state WHERE pipeline = '{self.pipeline}'; "
            "END IF; END $$"
        )

    def add(self, rows: list[Row]) -> None:
        insert = f"INSERT INTO {SOURCE} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)"
        self.execute([], rows, insert)

    def positions(self) -> list[Row]:
        """(load, extract, position as kept) of the pipeline, in the target's database."""
        sql = (
            "SELECT load_step, extract_step, position_json FROM etlc_incremental_state "
            f"WHERE pipeline = '{self.pipeline}'"
        )
        return (
            db.my_rows(self.creds, sql) if self.system == "mysql" else db.pg_rows(self.creds, sql)
        )

    def target(self) -> list[Row]:
        sql = f"SELECT {COLUMNS} FROM {TARGET}"
        found = (
            db.my_rows(self.creds, sql) if self.system == "mysql" else db.pg_rows(self.creds, sql)
        )
        return sorted(found)


def pipeline(tmp: Path, system: str, name: str, incremental: dict[str, Any], **load: Any) -> Path:
    doc = example("orders_incremental")
    doc["name"] = name
    doc["extract"][0].update(type=system, connection=CONNECTION[system], incremental=incremental)
    doc["load"][0].update(type=system, connection=CONNECTION[system], **load)
    if load.get("mode") == "append":
        for key in ("keys", "sequence_by"):
            doc["load"][0].pop(key)
    return compile_variant(tmp, doc, CHECK_ENV)


def run(
    driver: Path,
    tmp: Path,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    *,
    faults: str | None = None,
    args: Sequence[str] = (),
) -> Submission:
    env = db.env_file(tmp / "env.json", creds, vault[0], {}, stage_dir=str(tmp / "stage"))
    secret = {"ETLC_VAULT_PASSWORD": vault[1]}
    return submit(driver, env, extra_env=secret, faults=faults, args=args)


def read(done: Submission) -> dict[str, Any]:
    [event] = done.event("incremental_read")
    return event


def live(rows: list[Row]) -> list[Row]:
    return sorted(r for r in rows if r[3] != "CANCELLED")


def test_each_run_lands_the_new_rows_once_whenever_it_is_killed(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    name = "incremental_append_postgres"
    rows = [as_row(o) for o in demo.generate(orders=180, customers=20, seed=71).orders]
    base = Database("postgres", creds, name)
    base.reset(rows[:100], key=False)  # no key: a row written twice would show
    driver = pipeline(tmp_path, "postgres", name, {"column": "order_id"}, mode="append")

    first = run(driver, tmp_path, creds, vault)
    assert first.returncode == 0, first.stderr[-3000:]
    assert read(first)["records"] == 100 and read(first).get("after") is None
    assert base.target() == live(rows[:100])
    assert base.positions() == [(LOAD, "orders", "100")]  # beside the rows, in their database

    base.add(rows[100:150])
    killed = run(driver, tmp_path, creds, vault, faults=f"killed-before-commit:{LOAD}:0")
    assert killed.returncode != 0
    assert base.target() == live(rows[:100])
    again = run(driver, tmp_path, creds, vault)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (read(again)["after"], read(again)["records"]) == (100, 50)  # read again, all 50
    assert base.target() == live(rows[:150])

    base.add(rows[150:])
    committed = run(driver, tmp_path, creds, vault, faults=f"killed-after-commit:{LOAD}:0")
    assert committed.returncode != 0
    assert not committed.event("run_finished")  # killed before the run could finish
    assert base.target() == live(rows)
    after = run(driver, tmp_path, creds, vault)
    assert after.returncode == 0, after.stderr[-3000:]
    assert (read(after)["after"], read(after)["records"], read(after)["reached"]) == (180, 0, 180)
    assert base.target() == live(rows)  # every row once

    # An operator looks, rewinds ten rows, and the next run reads those ten again.
    shown = run(driver, tmp_path, creds, vault, args=["--state", "show"])
    assert shown.returncode == 0, shown.stderr[-3000:]
    [position] = shown.event("incremental_position")
    assert (position["load"], position["extract"], position["position"]) == (LOAD, "orders", 180)
    assert not shown.event("incremental_read")  # shown, not run
    rewound = run(driver, tmp_path, creds, vault, args=["--state", "reset", "--to", "170"])
    assert rewound.returncode == 0, rewound.stderr[-3000:]
    [moved] = rewound.event("incremental_position_set")
    assert (moved["before"], moved["after"]) == (180, 170)
    again = run(driver, tmp_path, creds, vault)
    assert (read(again)["after"], read(again)["records"]) == (170, 10)
    assert base.target() == sorted(live(rows) + live(rows[170:]))  # appended again, as asked


def test_a_lookback_upserts_late_rows_and_a_row_later_than_it_is_not_read(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    name = "incremental_upsert_mysql"
    start = datetime(2026, 1, 1)
    made = demo.generate(orders=64, customers=20, seed=72).orders
    at = [
        as_row(replace(o, status="PAID", ordered_at=start + timedelta(minutes=n)))
        for n, o in enumerate(made[:60])
    ]
    base = Database("mysql", creds, name)
    base.reset(at, key=True)
    incremental = {"column": "ordered_at", "lookback": "10 minutes"}
    driver = pipeline(tmp_path, "mysql", name, incremental, mode="upsert")

    first = run(driver, tmp_path, creds, vault)
    assert first.returncode == 0, first.stderr[-3000:]
    assert read(first)["records"] == 60
    assert base.target() == sorted(at)

    def row(order: demo.Order, minutes: int) -> Row:
        return as_row(replace(order, status="PAID", ordered_at=start + timedelta(minutes=minutes)))

    late = row(made[60], 55)  # committed late, 4 minutes before the last row read: in the lookback
    too_late = row(made[61], 30)  # 29 minutes before it: past the lookback
    new = row(made[62], 70)
    base.add([late, too_late, new])
    changed = (*at[58][:2], at[58][2] + 1, *at[58][3:])  # same order_id and ordered_at
    base.execute([f"UPDATE {SOURCE} SET amount = amount + 1 WHERE order_id = {at[58][0]}"])

    second = run(driver, tmp_path, creds, vault)
    assert second.returncode == 0, second.stderr[-3000:]
    # Above 00:59 less 10 minutes: 00:50 to 00:59 (10 rows, one changed), 00:55 and 01:10.
    assert read(second)["records"] == 12
    want = sorted([*at[:58], changed, at[59], late, new])
    assert base.target() == want
    assert too_late not in base.target()

    # A full refresh reads every row and rebuilds the target: the row past the lookback too.
    base.execute([f"DELETE FROM {SOURCE} WHERE order_id = {at[0][0]}"])
    rebuilt = run(driver, tmp_path, creds, vault, args=["--full-refresh"])
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert read(rebuilt)["records"] == 62 and "after" not in read(rebuilt)
    assert base.target() == sorted([*at[1:58], changed, at[59], late, too_late, new])
    [load] = [e for e in rebuilt.event("step_finished") if e["stage"] == "load"]
    assert load["mode"] == "overwrite"
