"""`etlc ddl`: the CREATE TABLE statement of each database load's target, from the plan.

The columns are the load input's, with the types the compiler derived from the Avro schemas;
an upsert's `keys` are the primary key. The statements are text for a reviewer and a DBA to
apply (`psql -f`, `mysql <`); nothing here connects to a database.
"""

from __future__ import annotations

from dataclasses import dataclass

from etlc import database_sql
from etlc.dsl.plan import EnvConnection, Plan, PlannedStep
from etlc.dsl.steps.jdbc import create_statement


class DdlError(ValueError):
    """A load whose target cannot be written as a statement; the message names the load."""


@dataclass(frozen=True)
class TableDdl:
    load: str  # the load step's id
    system: str
    table: str
    connection: str
    mode: str
    statement: str


def table_ddl(plan: Plan) -> list[TableDdl]:
    """One statement per database load, in the plan's order."""
    return [
        _table(plan, step)
        for step in plan.steps
        if step.role == "load" and step.type in database_sql.SYSTEMS
    ]


def _table(plan: Plan, step: PlannedStep) -> TableDdl:
    args = dict(step.args)
    # The schema's table pattern has no room for ${...}: a table is always written out.
    table = args["table"]
    assert isinstance(table, str), table
    connection = args["connection"]
    schema = step.schema  # its input's, or what a quarantined load reads
    try:
        statement = args.get("create_table") or create_statement(step.type, table, schema, args)
    except ValueError as exc:
        raise DdlError(f"load `{step.id}`: {exc}") from None
    name = connection.name if isinstance(connection, EnvConnection) else str(connection)
    return TableDdl(step.id, step.type, table, name, step.mode, statement)


def render(plan: Plan, tables: list[TableDdl]) -> str:
    """The statements as one SQL script, each after a comment saying which load it serves."""
    if not tables:
        return f"-- {_comment(plan.name)}: no PostgreSQL or MySQL loads\n"
    parts = []
    for t in tables:
        about = f"{plan.name}: load {t.load} ({t.system}, {t.mode}) on connection {t.connection}"
        parts.append(f"-- {_comment(about)}\n{t.statement};\n")
    return "\n".join(parts)


def _comment(text: str) -> str:
    """``text`` fit for a SQL line comment: its names are checked identifiers, but nothing
    that ends the line (or is not plain printable ASCII) is written as it is."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)
