"""The one way etlc writes a name, a literal or a table's definition into a database's SQL.

Shared by the compiler (`etlc ddl`) and the database connectors (their statements), so both
quote alike; it imports neither side, nor pyspark. Names are plain identifiers only (letters,
digits, `_`, at most 63 characters, a table optionally `schema.table`): anything else is
refused, never quoted into shape. Types map a load's Avro-derived column types to the column
types etlc's loads write into, per system:

=================  ==============================  ===================================
column             PostgreSQL                      MySQL / MariaDB
=================  ==============================  ===================================
boolean            BOOLEAN                         BOOLEAN
int / long         INTEGER / BIGINT                INT / BIGINT
float / double     REAL / DOUBLE PRECISION         FLOAT / DOUBLE
decimal(p,s)       NUMERIC(p,s)                    DECIMAL(p,s) (p at most 65, s 30)
string, enum       TEXT                            TEXT; VARCHAR(255) in a primary key
bytes              BYTEA                           LONGBLOB
date               DATE                            DATE
timestamp          TIMESTAMP(6)                    DATETIME(6)
timestamp-millis   TIMESTAMP(3)                    DATETIME(3)
=================  ==============================  ===================================

Timestamps are written as UTC wall-clock time (the drivers' session time zone is UTC) into a
column without a time zone: MySQL's TIMESTAMP would convert it with the server's zone. An enum
column gets a CHECK that it holds one of the symbols, or NULL where it is nullable.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "SYSTEMS",
    "Column",
    "add_column",
    "create_table",
    "quote",
    "staging_table",
    "string_literal",
]

SYSTEMS = ("postgres", "mysql")
_QUOTE = {"postgres": '"', "mysql": "`"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
# What a literal may hold as it is; the symbols of an enum are Avro names, so this is a guard.
_SAFE_LITERAL = re.compile(r"[A-Za-z0-9_ .\-]*\Z")
_TYPES = {
    "postgres": {
        "boolean": "BOOLEAN",
        "int": "INTEGER",
        "long": "BIGINT",
        "float": "REAL",
        "double": "DOUBLE PRECISION",
        "string": "TEXT",
        "bytes": "BYTEA",
        "date": "DATE",
    },
    "mysql": {
        "boolean": "BOOLEAN",
        "int": "INT",
        "long": "BIGINT",
        "float": "FLOAT",
        "double": "DOUBLE",
        "string": "TEXT",
        "bytes": "LONGBLOB",
        "date": "DATE",
    },
}
_TIMESTAMP = {"postgres": "TIMESTAMP", "mysql": "DATETIME"}
_MYSQL_KEY_STRING = "VARCHAR(255)"  # MySQL indexes no TEXT column without a prefix length
_MYSQL_MAX_PRECISION, _MYSQL_MAX_SCALE = 65, 30


@dataclass(frozen=True)
class Column:
    """A column as a load writes it: the compiler's column type, flattened."""

    name: str
    kind: str  # boolean, int, long, float, double, decimal, string, bytes, date, timestamp
    nullable: bool = True
    precision: int = 0
    scale: int = 0
    symbols: tuple[str, ...] = ()
    logical: str = ""  # timestamp-millis or timestamp-micros


def quote(system: str, identifier: str) -> str:
    """``identifier`` (``name`` or ``schema.name``) quoted for ``system``; ValueError for
    anything but plain identifiers."""
    parts = identifier.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise ValueError(f"`{identifier}` is not a valid table or column name")
    q = _quote_char(system)
    return ".".join(f"{q}{p}{q}" for p in parts)


def string_literal(system: str, value: str) -> str:
    """``value`` as a string literal; only plain names and words are ever written."""
    _quote_char(system)
    if not _SAFE_LITERAL.match(value):
        raise ValueError(f"`{value}` cannot be written as a SQL literal here")
    return f"'{value}'"


def create_table(system: str, table: str, columns: Sequence[Column], keys: Sequence[str]) -> str:
    """The ``CREATE TABLE`` statement for a load's target; ``keys`` become its primary key."""
    names = [c.name for c in columns]
    missing = [k for k in keys if k not in names]
    if missing:
        raise ValueError(f"the keys {missing} are not columns of the load's input")
    lines = [
        f"  {quote(system, c.name)} {_column_type(system, c, c.name in keys)}" for c in columns
    ]
    lines += [f"  {check}" for c in columns if (check := _enum_check(system, c))]
    if keys:
        lines.append(f"  PRIMARY KEY ({', '.join(quote(system, k) for k in keys)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE {quote(system, table)} (\n{body}\n)"


def staging_table(system: str, table: str, columns: Sequence[Column]) -> str:
    """The ``CREATE TABLE`` statement for a load's staging table: no key, every column
    nullable, MySQL strings in its widest text type, utf8mb4 (the target decides what fits)."""
    body = ",\n".join(f"  {quote(system, c.name)} {_staging_type(system, c)}" for c in columns)
    return f"CREATE TABLE {quote(system, table)} (\n{body}\n)"


def _staging_type(system: str, column: Column) -> str:
    if system == "mysql" and column.kind == "string":
        # Whatever the database's default (latin1 on older servers): any text Spark holds.
        return "LONGTEXT CHARACTER SET utf8mb4"
    return _base_type(system, column)


def add_column(system: str, table: str, column: Column) -> str:
    """``ALTER TABLE ... ADD COLUMN`` for ``column``, nullable whatever its schema says: the
    rows already there have no value for it."""
    sql = _base_type(system, column)
    return f"ALTER TABLE {quote(system, table)} ADD COLUMN {quote(system, column.name)} {sql}"


def _quote_char(system: str) -> str:
    try:
        return _QUOTE[system]
    except KeyError:
        raise ValueError(f"no SQL dialect for `{system}` (known: {', '.join(SYSTEMS)})") from None


def _column_type(system: str, column: Column, is_key: bool) -> str:
    sql = _base_type(system, column)
    if system == "mysql" and is_key and sql == "TEXT":
        sql = _MYSQL_KEY_STRING
    # A key column is NOT NULL whatever its schema says: a primary key cannot hold NULL.
    return sql if column.nullable and not is_key else f"{sql} NOT NULL"


def _base_type(system: str, column: Column) -> str:
    if column.kind == "decimal":
        if system == "mysql" and (
            column.precision > _MYSQL_MAX_PRECISION or column.scale > _MYSQL_MAX_SCALE
        ):
            raise ValueError(
                f"column `{column.name}`: MySQL's DECIMAL holds at most precision 65, scale 30, "
                f"not ({column.precision},{column.scale})"
            )
        name = "NUMERIC" if system == "postgres" else "DECIMAL"
        return f"{name}({column.precision},{column.scale})"
    if column.kind == "timestamp":
        digits = 3 if column.logical == "timestamp-millis" else 6
        return f"{_TIMESTAMP[system]}({digits})"
    try:
        return _TYPES[system][column.kind]
    except KeyError:
        raise ValueError(
            f"column `{column.name}`: a {column.kind} column has no {system} type etlc writes"
        ) from None


def _enum_check(system: str, column: Column) -> str:
    if not column.symbols:
        return ""
    name = quote(system, column.name)
    allowed = ", ".join(string_literal(system, s) for s in column.symbols)
    return f"CHECK ({name} IN ({allowed}))"
