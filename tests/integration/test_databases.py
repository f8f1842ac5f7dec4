"""PostgreSQL and MySQL through compiled drivers: upsert, dead letters, wrong passwords."""

from __future__ import annotations

import json
import secrets
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.vault import FileVault, MasterKey, Reference, Secret
from tests.integration import databases as db
from tests.integration.conftest import Workspace, submit
from tests.leak_canary import FAST_KDF, Canary, assert_no_leak, files

CUSTOMERS_DDL = (
    "CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "country VARCHAR(8) NOT NULL, segment VARCHAR(16) NOT NULL)"
)
REVENUE_DDL = (
    "CREATE TABLE customer_revenue (customer_id BIGINT PRIMARY KEY, country TEXT NOT NULL "
    "CHECK (country <> 'XX'), revenue NUMERIC(22, 2), orders BIGINT NOT NULL, last_order TIMESTAMP)"
)


def seed(
    creds: dict[str, Any], data: demo.DemoData, countries: dict[int, str] | None = None
) -> None:
    countries = countries or {}
    db.my_execute(
        creds,
        ["DROP TABLE IF EXISTS customers", CUSTOMERS_DDL],
        [
            (c.customer_id, c.name, countries.get(c.customer_id, c.country), c.segment)
            for c in data.customers
        ],
        "INSERT INTO customers VALUES (%s, %s, %s, %s)",
    )
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS customer_revenue")
        conn.execute(REVENUE_DDL)


def expected(
    data: demo.DemoData, countries: dict[int, str] | None = None
) -> dict[int, tuple[Any, ...]]:
    countries = countries or {}
    known = {c.customer_id: countries.get(c.customer_id, c.country) for c in data.customers}
    acc: dict[int, list[Any]] = defaultdict(lambda: [Decimal(0), 0, None])
    for o in data.orders:
        if o.status == "CANCELLED" or o.customer_id not in known:
            continue
        row = acc[o.customer_id]
        row[0] += o.amount
        row[1] += 1
        at = o.ordered_at.replace(tzinfo=None)
        row[2] = at if row[2] is None or at > row[2] else row[2]
    return {k: (known[k], v[0], v[1], v[2]) for k, v in acc.items()}


def landed(creds: dict[str, Any]) -> dict[int, tuple[Any, ...]]:
    rows = db.pg_rows(
        creds, "SELECT customer_id, country, revenue, orders, last_order FROM customer_revenue"
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def env_for(ws: Workspace, creds: dict[str, Any], vault: Path, name: str) -> Path:
    return db.env_file(
        ws.root / f"{name}.json",
        creds,
        vault,
        {"data_dir": str(ws.data), "out_dir": str(ws.out)},
        stage_dir=str(ws.root / "stage"),
        dead_letter_dir=str(ws.root / "dead-letter"),
    )


def test_upsert_from_mysql_and_files_into_postgres(
    workspace: Workspace, creds: dict[str, Any], vault: tuple[Path, str]
) -> None:
    seed(creds, workspace.data_set)
    env_file = env_for(workspace, creds, vault[0], "db")
    run = submit(
        workspace.generated / "customer_revenue.py",
        env_file,
        extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
    )
    assert run.returncode == 0, (run.events[-3:], run.stderr[-2000:])
    want = expected(workspace.data_set)
    assert landed(creds) == want
    # Run it again: an upsert of the same rows changes nothing and duplicates nothing.
    again = submit(
        workspace.generated / "customer_revenue.py",
        env_file,
        extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
    )
    assert again.returncode == 0
    assert landed(creds) == want


def test_rows_the_target_rejects_go_to_the_dead_letter_log(
    workspace: Workspace, creds: dict[str, Any], vault: tuple[Path, str]
) -> None:
    live = {o.customer_id for o in workspace.data_set.orders if o.status != "CANCELLED"}
    bad = sorted(c.customer_id for c in workspace.data_set.customers if c.customer_id in live)[:2]
    countries = dict.fromkeys(bad, "XX")  # violates the CHECK constraint of the target
    seed(creds, workspace.data_set, countries)
    env_file = env_for(workspace, creds, vault[0], "dlq")
    run = submit(
        workspace.generated / "customer_revenue.py",
        env_file,
        extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
    )
    assert run.returncode == 3, (run.events[-3:], run.stderr[-2000:])
    finished = run.event("run_finished")[-1]
    assert finished["status"] == "PARTIAL"
    want = expected(workspace.data_set, countries)
    load = next(s for s in finished["steps"] if s["stage"] == "load")
    assert load["records_in"] == len(want)
    assert load["records_out"] == len(want) - len(bad)  # input = written + dead-lettered
    got = landed(creds)
    assert got == {k: v for k, v in want.items() if k not in bad}
    letters = [e for e in run.event("dead_letter")]
    assert sorted(e["key"]["customer_id"] for e in letters) == bad
    assert {(e["sqlstate"], e["constraint"]) for e in letters} == {
        ("23514", "customer_revenue_country_check")
    }
    assert all(set(e) >= {"pipeline", "step", "key", "sqlstate", "constraint"} for e in letters)
    assert all("revenue" not in e and "XX" not in json.dumps(e) for e in letters)
    dlq = list((workspace.root / "dead-letter" / "customer_revenue").glob("*.jsonl"))
    assert len(dlq) == 1 and len(dlq[0].read_text().splitlines()) == len(bad)


@pytest.mark.parametrize(("system", "connection"), [("postgres", "warehouse"), ("mysql", "crm")])
def test_a_wrong_password_fails_at_once_and_never_leaks(
    workspace: Workspace, creds: dict[str, Any], tmp_path: Path, system: str, connection: str
) -> None:
    seed(creds, workspace.data_set)
    path = tmp_path / "vault.json"
    master = secrets.token_urlsafe(16)
    store = FileVault.create(path, MasterKey.from_password(master), FAST_KDF)
    wrong = "LEAK_CANARY_" + secrets.token_hex(8)
    for other in ("mysql", "postgres"):
        value = wrong if other == system else creds[other]["password"]
        store.put(Reference.entry(f"services/{other}#password", str(path)), Secret(value))
    env_file = env_for(workspace, creds, path, f"wrongpw-{system}")
    run = submit(
        workspace.generated / "customer_revenue.py",
        env_file,
        extra_env={"ETLC_VAULT_PASSWORD": master},
    )
    assert run.returncode == 1
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "authentication", finished
    assert f"`{connection}`" in finished["error"]
    assert len(run.event("attempt_started")) == 1  # authentication failures are not retried
    texts = [json.dumps(e) for e in run.events] + [run.stderr]
    texts += [c.decode("utf-8", "replace") for c in files(workspace.generated).values()]
    texts += [c.decode("utf-8", "replace") for c in files(workspace.root / "stage").values()]
    assert_no_leak(texts, [Canary(f"vault://services/{system}#password", wrong)])
