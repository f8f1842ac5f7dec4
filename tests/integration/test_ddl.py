"""`etlc ddl`: its script applies with the databases' own clients (psql, mysql), and the
pipelines then load into the tables it made, row for row."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.codegen.ddl import table_ddl
from etlc.dsl.checker import check_file, default_options
from etlc.project import find_project
from tests.integration import databases as db
from tests.integration.conftest import BIN, ROOT, Workspace, compile_variant, example, submit
from tests.integration.test_database_loads import CHECK_ENV, Target, live, run
from tests.integration.test_databases import expected, landed, seed


def _with_database_loads() -> list[str]:
    """Every definition in pipelines/ with a PostgreSQL or MySQL load (streams included)."""
    project = find_project(ROOT)
    found = []
    for path in sorted((ROOT / "pipelines").glob("*.json")):
        plan = check_file(path, default_options(path, project)).plan
        assert plan is not None, path
        if table_ddl(plan):
            found.append(path.name)
    return found


DEFINITIONS = _with_database_loads()
_CREATE = re.compile(r'^CREATE TABLE ([`"])(\w+)\1 \($', re.MULTILINE)


def ddl(definition: Path) -> str:
    done = subprocess.run(
        [str(BIN / "etlc"), "ddl", str(definition)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def apply(system: str, creds: dict[str, Any], script: str) -> None:
    """The script through the database's own command-line client, as a DBA would apply it;
    each table it creates is dropped first."""
    c = creds[system]
    tables = [name for _, name in _CREATE.findall(script)]
    for table in tables:  # names the regular expression took: plain identifiers
        drop(system, creds, table)
    if system == "postgres":
        cmd = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", c["host"], "-p", str(c["port"])]
        cmd += ["-U", c["user"], "-d", c["database"], "-f", "-"]
        environ = {**os.environ, "PGPASSWORD": c["password"]}
    else:
        cmd = ["mysql", "--protocol=TCP", "-h", c["host"], "-P", str(c["port"]), "-u", c["user"]]
        cmd += [c["database"]]
        environ = {**os.environ, "MYSQL_PWD": c["password"]}
    done = subprocess.run(
        cmd, input=script, env=environ, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, f"{cmd[0]} refused the script:\n{script}\n{done.stderr}"


def columns(system: str, creds: dict[str, Any], table: str) -> list[tuple[str, str, str]]:
    """(name, type, nullable) of each column, in order, as the server describes them."""
    if system == "postgres":
        sql = (
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            f"WHERE table_name = '{table}' AND table_schema = current_schema() "
            "ORDER BY ordinal_position"
        )
        return [(str(r[0]), str(r[1]), str(r[2])) for r in db.pg_rows(creds, sql)]
    sql = (
        "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
        f"WHERE table_name = '{table}' AND table_schema = DATABASE() ORDER BY ordinal_position"
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in db.my_rows(creds, sql)]


@pytest.mark.parametrize("name", DEFINITIONS)
def test_the_ddl_of_every_database_load_applies_with_the_databases_client(
    name: str, creds: dict[str, Any]
) -> None:
    script = ddl(ROOT / "pipelines" / name)
    systems = re.findall(r"^-- \w+: load \w+ \((postgres|mysql), ", script, re.MULTILINE)
    assert systems, script
    # Each statement to its own database's client (a definition may load into both).
    for block in script.split("\n\n"):
        system = re.match(r"-- \w+: load \w+ \((postgres|mysql), ", block)
        assert system, block
        apply(system.group(1), creds, block)


@pytest.mark.parametrize("system", ["postgres", "mysql"])
def test_a_load_runs_into_the_table_etlc_ddl_made(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    doc = example("orders_to_postgres")
    doc["load"][0].update(type=system, connection="warehouse" if system == "postgres" else "crm")
    doc["name"] = f"orders_to_{system}_ddl"
    driver = compile_variant(tmp_path, doc, CHECK_ENV)
    apply(system, creds, ddl(tmp_path / "defs" / f"{doc['name']}.json"))
    orders = demo.generate(orders=1_200, customers=40, seed=61).orders
    done = run(driver, tmp_path, orders, creds, vault)
    assert done.returncode == 0, (done.events[-3:], done.stderr[-3000:])
    assert Target(system, creds).rows() == sorted(live(orders).values())
    want = {
        "postgres": [
            ("order_id", "bigint", "NO"),
            ("customer_id", "bigint", "NO"),
            ("amount", "numeric", "NO"),
            ("status", "text", "NO"),
            ("ordered_at", "timestamp without time zone", "NO"),
            ("coupon", "text", "YES"),
        ],
        "mysql": [
            ("order_id", "bigint(20)", "NO"),
            ("customer_id", "bigint(20)", "NO"),
            ("amount", "decimal(12,2)", "NO"),
            ("status", "text", "NO"),
            ("ordered_at", "datetime(6)", "NO"),
            ("coupon", "text", "YES"),
        ],
    }
    assert columns(system, creds, "orders_copy") == want[system]


def test_an_upsert_runs_into_the_table_etlc_ddl_made_with_its_keys_as_primary_key(
    workspace: Workspace, creds: dict[str, Any], vault: tuple[Path, str]
) -> None:
    seed(creds, workspace.data_set)  # the MySQL customers it joins
    apply("postgres", creds, ddl(ROOT / "pipelines" / "customer_revenue.json"))
    env_file = db.env_file(
        workspace.root / "ddl.json",
        creds,
        vault[0],
        {"data_dir": str(workspace.data), "out_dir": str(workspace.out)},
        stage_dir=str(workspace.root / "stage"),
    )
    for _ in range(2):  # the second run upserts the same rows: nothing changes
        done = submit(
            workspace.generated / "customer_revenue.py",
            env_file,
            extra_env={"ETLC_VAULT_PASSWORD": vault[1]},
        )
        assert done.returncode == 0, (done.events[-3:], done.stderr[-2000:])
        assert landed(creds) == expected(workspace.data_set)
    assert primary_key("postgres", creds, "customer_revenue") == ["customer_id"]


@pytest.mark.parametrize("system", ["postgres", "mysql"])
def test_create_table_if_missing_creates_the_target_once_then_reuses_it(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    drop(system, creds, "orders_copy")
    doc = example("orders_to_postgres")
    doc["load"][0].update(
        type=system,
        connection="warehouse" if system == "postgres" else "crm",
        mode="upsert",
        keys=["order_id"],
        create_table="if_missing",
    )
    doc["name"] = f"orders_to_{system}_created"
    driver = compile_variant(tmp_path, doc, CHECK_ENV)
    orders = demo.generate(orders=900, customers=30, seed=62).orders
    first = run(driver, tmp_path, orders, creds, vault)
    assert first.returncode == 0, (first.events[-3:], first.stderr[-3000:])
    [created] = first.event("table_created")
    assert (created["step"], created["table"]) == ("load_1_live", "orders_copy")
    # What `etlc ddl` prints for the definition is what the driver ran.
    assert f"{created['statement']};\n" in ddl(tmp_path / "defs" / f"{doc['name']}.json")
    second = run(driver, tmp_path, orders, creds, vault)
    assert second.returncode == 0, (second.events[-3:], second.stderr[-3000:])
    assert not second.event("table_created")
    assert Target(system, creds).rows() == sorted(live(orders).values())
    assert primary_key(system, creds, "orders_copy") == ["order_id"]


def drop(system: str, creds: dict[str, Any], table: str) -> None:
    if system == "mysql":
        db.my_execute(creds, [f"DROP TABLE IF EXISTS {table}"])
    else:
        with db.postgres(creds) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def primary_key(system: str, creds: dict[str, Any], table: str) -> list[str]:
    if system == "mysql":
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            f"'{table}' AND table_schema = DATABASE() AND column_key = 'PRI' "
            "ORDER BY ordinal_position"
        )
        return [str(r[0]) for r in db.my_rows(creds, sql)]
    sql = (
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = '{table}'::regclass AND i.indisprimary"
    )
    return [str(r[0]) for r in db.pg_rows(creds, sql)]


@pytest.mark.parametrize("system", ["postgres", "mysql"])
def test_a_target_that_cannot_take_the_load_fails_before_any_row_is_written(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The table etlc ddl prints, without one column and without the upsert's unique key:
    the run fails naming both, and the table stays empty."""
    driver = without_coupon(system, creds, tmp_path, "checked", mode="upsert", keys=["order_id"])
    orders = demo.generate(orders=300, customers=20, seed=63).orders
    done = run(driver, tmp_path, orders, creds, vault)
    assert done.returncode == 1
    [failed] = done.event("run_finished")
    assert failed["attempts"] == 1  # terminal: not retried
    assert "cannot take this load: no column `coupon` (string)" in failed["error"]
    assert "no primary key or unique index on exactly (order_id)" in failed["error"]
    assert Target(system, creds).query("SELECT COUNT(*) FROM orders_copy") == [(0,)]


@pytest.mark.parametrize("system", ["postgres", "mysql"])
def test_add_columns_evolves_a_target_that_lacks_a_column(
    system: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    driver = without_coupon(system, creds, tmp_path, "evolved", add_columns=True)
    orders = demo.generate(orders=400, customers=20, seed=64).orders
    done = run(driver, tmp_path, orders, creds, vault)
    assert done.returncode == 0, (done.events[-3:], done.stderr[-3000:])
    [added] = done.event("columns_added")
    assert (added["step"], added["columns"]) == ("load_1_live", ["coupon"])
    assert Target(system, creds).rows() == sorted(live(orders).values())
    assert columns(system, creds, "orders_copy")[-1][::2] == ("coupon", "YES")  # nullable


def without_coupon(system: str, creds: dict[str, Any], tmp: Path, name: str, **load: Any) -> Path:
    """The orders load retargeted to ``system`` with ``load``'s options, compiled, and its
    target made by hand without the `coupon` column (nor any key)."""
    doc = example("orders_to_postgres")
    connection = "warehouse" if system == "postgres" else "crm"
    doc["load"][0].update(type=system, connection=connection, **load)
    doc["name"] = f"orders_to_{system}_{name}"
    driver = compile_variant(tmp, doc, CHECK_ENV)
    timestamp = "TIMESTAMP(6)" if system == "postgres" else "DATETIME(6)"
    drop(system, creds, "orders_copy")
    apply(
        system,
        creds,
        "CREATE TABLE orders_copy (order_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, "
        f"amount DECIMAL(12,2) NOT NULL, status TEXT NOT NULL, ordered_at {timestamp} NOT NULL);",
    )
    return driver
