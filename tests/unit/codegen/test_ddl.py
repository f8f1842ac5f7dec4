"""`etlc ddl`: CREATE TABLE per database load, from the compiler's column types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etlc import database_sql
from etlc.cli import app
from etlc.database_sql import Column, create_table, quote, string_literal

ROOT = Path(__file__).resolve().parents[3]
runner = CliRunner()

EVERY_KIND = [
    Column("id", "long", nullable=False),
    Column("n", "int"),
    Column("ok", "boolean", nullable=False),
    Column("ratio", "float"),
    Column("score", "double"),
    Column("amount", "decimal", precision=22, scale=2),
    Column("name", "string"),
    Column("raw", "bytes"),
    Column("day", "date"),
    Column("at", "timestamp", nullable=False, logical="timestamp-micros"),
    Column("at_ms", "timestamp", logical="timestamp-millis"),
    Column("status", "string", nullable=False, symbols=("NEW", "PAID")),
]


def test_postgres_types_keys_and_checks() -> None:
    assert create_table("postgres", "wh.revenue", EVERY_KIND, ["id", "name"]) == (
        'CREATE TABLE "wh"."revenue" (\n'
        '  "id" BIGINT NOT NULL,\n'
        '  "n" INTEGER,\n'
        '  "ok" BOOLEAN NOT NULL,\n'
        '  "ratio" REAL,\n'
        '  "score" DOUBLE PRECISION,\n'
        '  "amount" NUMERIC(22,2),\n'
        '  "name" TEXT NOT NULL,\n'
        '  "raw" BYTEA,\n'
        '  "day" DATE,\n'
        '  "at" TIMESTAMP(6) NOT NULL,\n'
        '  "at_ms" TIMESTAMP(3),\n'
        '  "status" TEXT NOT NULL,\n'
        "  CHECK (\"status\" IN ('NEW', 'PAID')),\n"
        '  PRIMARY KEY ("id", "name")\n'
        ")"
    )


def test_mysql_types_and_a_string_key_that_mysql_can_index() -> None:
    text = create_table("mysql", "revenue", EVERY_KIND, ["name"])
    assert "`name` VARCHAR(255) NOT NULL," in text  # TEXT cannot be a key without a length
    assert "`score` DOUBLE," in text and "`raw` LONGBLOB," in text
    assert "`at` DATETIME(6) NOT NULL," in text and "`at_ms` DATETIME(3)," in text
    assert "`amount` DECIMAL(22,2)," in text
    assert text.endswith("  PRIMARY KEY (`name`)\n)")


@pytest.mark.parametrize(
    "name",
    ['x"; DROP TABLE t; --', "a.b.c", "", "x`y", "1st", "a" * 64, "tab\tle", "é"],
)
def test_anything_but_a_plain_identifier_is_refused(name: str) -> None:
    for system in database_sql.SYSTEMS:
        with pytest.raises(ValueError, match="not a valid table or column name"):
            quote(system, name)
        with pytest.raises(ValueError):
            create_table(system, "t", [Column(name, "long")], [])


def test_refusals_name_what_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="keys \\['nope'\\] are not columns"):
        create_table("postgres", "t", [Column("id", "long")], ["nope"])
    with pytest.raises(ValueError, match="at most precision 65, scale 30"):
        create_table("mysql", "t", [Column("d", "decimal", precision=70, scale=2)], [])
    with pytest.raises(ValueError, match="a null column has no postgres type"):
        create_table("postgres", "t", [Column("v", "null")], [])
    with pytest.raises(ValueError, match="no SQL dialect for `oracle`"):
        quote("oracle", "t")
    with pytest.raises(ValueError, match="cannot be written as a SQL literal"):
        string_literal("postgres", "it's")


def test_etlc_ddl_prints_every_database_load_of_a_definition() -> None:
    result = runner.invoke(app, ["ddl", str(ROOT / "pipelines" / "customer_revenue.json")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "-- customer_revenue: load load_1_revenue (postgres, upsert) on connection warehouse\n"
        'CREATE TABLE "customer_revenue" (\n'
    )
    assert '  PRIMARY KEY ("customer_id")\n);\n' in result.output
    # A sum of DECIMAL(12,2) as the compiler types it, not a guess.
    assert '"revenue" NUMERIC(22,2),' in result.output


def test_etlc_ddl_of_a_definition_without_database_loads_says_so() -> None:
    result = runner.invoke(app, ["ddl", str(ROOT / "pipelines" / "filter_orders.json")])
    assert (result.exit_code, result.output) == (
        0,
        "-- filter_orders: no PostgreSQL or MySQL loads\n",
    )


def test_etlc_ddl_of_a_broken_definition_reports_it_like_lint(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": "x",\n  "extract": [],\n  "lod": []\n}\n')
    result = runner.invoke(app, ["ddl", str(bad)])
    assert result.exit_code == 1 and "E101" in result.output


def test_a_load_whose_table_mysql_cannot_hold_is_named() -> None:
    from dataclasses import replace

    from etlc.codegen.ddl import DdlError, table_ddl
    from etlc.dsl.checker import check_file, default_options
    from etlc.dsl.types import DataType, Field
    from etlc.project import find_project

    path = ROOT / "pipelines" / "orders_to_mysql.json"
    plan = check_file(path, default_options(path, find_project(ROOT))).plan
    assert plan is not None
    live = plan.step("live")
    wide = Field("huge", DataType("decimal", precision=38, scale=31))
    schema = replace(live.schema, fields=(*live.schema.fields, wide))
    # The load reads what its input makes: both schemas as the compiler would give them.
    wider = ("live", "load_1_live")
    steps = tuple(replace(s, schema=schema) if s.id in wider else s for s in plan.steps)
    with pytest.raises(DdlError, match="load `load_1_live`: column `huge`: MySQL's DECIMAL"):
        table_ddl(replace(plan, steps=steps))


def _checked(tmp_path: Path, system: str, **load: Any) -> Any:
    """The plan of orders_to_postgres with its load retargeted, or its diagnostics."""
    from etlc.dsl.checker import check_file, default_options
    from etlc.project import find_project

    doc = json.loads((ROOT / "pipelines" / "orders_to_postgres.json").read_text())
    doc["transform"] += load.pop("transform", [])
    doc["load"][0].update(type=system, connection="db", **load)
    defs = tmp_path / "defs"
    (defs / "env").mkdir(parents=True)
    profile = {
        "system": system,
        "host": "h",
        "database": "d",
        "user": "u",
        "password": "vault://d#p",
    }
    env = {"variables": {"data_dir": "d"}, "connections": {"db": profile}}
    (defs / "env" / "check.json").write_text(json.dumps(env))
    path = defs / "x.json"
    path.write_text(json.dumps(doc))
    return check_file(path, default_options(path, find_project(ROOT)))


def test_create_table_if_missing_hands_the_driver_the_statement_etlc_ddl_prints(
    tmp_path: Path,
) -> None:
    from etlc.codegen.ddl import table_ddl

    plan = _checked(tmp_path, "postgres", create_table="if_missing").plan
    assert plan is not None, _checked(tmp_path / "again", "postgres").diagnostics
    args = dict(plan.step("load_1_live").args)
    never = _checked(tmp_path / "never", "postgres", create_table="never").plan
    assert never is not None and "create_table" not in dict(never.step("load_1_live").args)
    # etlc ddl of the plan without the option builds the statement itself: the same one.
    assert args["create_table"] == table_ddl(never)[0].statement
    assert args["create_table"].startswith('CREATE TABLE "orders_copy" (\n  "order_id" BIGINT')


def test_create_table_of_a_column_mysql_cannot_hold_is_e216_at_the_option(tmp_path: Path) -> None:
    derive = {"id": "wide", "type": "derive", "input": "live"}
    derive["columns"] = {"huge": "CAST(amount AS DECIMAL(38,31))"}
    result = _checked(
        tmp_path, "mysql", create_table="if_missing", input="wide", transform=[derive]
    )
    assert result.plan is None
    [found] = [d for d in result.diagnostics if d.code == "E216"]
    assert "the table cannot be created: column `huge`: MySQL's DECIMAL" in found.message


def test_add_columns_hands_the_driver_an_alter_table_per_input_column(tmp_path: Path) -> None:
    plan = _checked(tmp_path, "mysql", add_columns=True).plan
    assert plan is not None
    add = dict(plan.step("load_1_live").args)["add_columns"]
    assert add["coupon"] == "ALTER TABLE `orders_copy` ADD COLUMN `coupon` TEXT"
    # Nullable whatever the schema says: the rows already there have no value for it.
    assert add["amount"] == "ALTER TABLE `orders_copy` ADD COLUMN `amount` DECIMAL(12,2)"
    plain = _checked(tmp_path / "plain", "mysql", add_columns=False).plan
    assert plain is not None and "add_columns" not in dict(plain.step("load_1_live").args)


def test_a_quarantined_loads_table_has_the_columns_quarantine_adds(tmp_path: Path) -> None:
    from etlc.codegen.ddl import table_ddl

    rule = {"name": "known", "check": "coupon IS NOT NULL", "policy": "quarantine"}
    held = {"id": "held", "type": "filter", "input": "live", "condition": "amount > 0"}
    result = _checked(
        tmp_path,
        "postgres",
        transform=[{**held, "expect": {"rules": [rule]}}],
        input="held",
        quarantined=True,
        create_table="if_missing",
    )
    assert result.plan is not None, result.diagnostics
    [table] = table_ddl(result.plan)
    # Every column of the records set aside may be null; what quarantine adds never is.
    assert '  "order_id" BIGINT,\n' in table.statement
    assert '  "_etlc_rule" TEXT NOT NULL,\n  "_etlc_step" TEXT NOT NULL,\n' in table.statement
    assert dict(result.plan.step("load_1_held").args)["create_table"] == table.statement
