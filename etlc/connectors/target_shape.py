"""A load's target table as the database describes it, and what the load needs of it.

Read through JDBC's own metadata (``DatabaseMetaData``: columns, primary key, unique indexes)
before any row is written, so a target that cannot take the load fails the run with every
difference in one message, instead of part way through with the database's first complaint,
or, worse, an upsert into a table with no unique key on its keys quietly appending duplicates
(MySQL's ``ON DUPLICATE KEY UPDATE`` never fires without one).

Types are compared by family (integers, exact and approximate numbers, text, booleans, dates,
timestamps, binary), not by width: the database checks each value's range as it always does.
A column type the driver reports only as ``OTHER`` (a PostgreSQL enum, ``json``, ``uuid``) is
taken as it is. The other way round, ``staging_columns`` gives an input's columns as etlc
writes them into SQL (the staging table a load fills).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql.types import (
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from etlc import database_sql

# java.sql.Types, by family.
_INTEGRAL = frozenset({-6, 5, 4, -5})  # TINYINT SMALLINT INTEGER BIGINT
_EXACT = frozenset({2, 3})  # NUMERIC DECIMAL
_APPROX = frozenset({7, 6, 8})  # REAL FLOAT DOUBLE
_TEXT = frozenset({1, 12, -1, -15, -9, -16, 2005, 2011})  # CHAR ... CLOB NCLOB
_BOOLEAN = frozenset({-7, 16})  # BIT BOOLEAN
_DATE = frozenset({91})
_TIMESTAMP = frozenset({93, 2014})  # TIMESTAMP, TIMESTAMP WITH TIME ZONE
_BINARY = frozenset({-2, -3, -4, 2004})  # BINARY VARBINARY LONGVARBINARY BLOB
_OTHER = 1111
_NUMBERS = _INTEGRAL | _EXACT | _APPROX


@dataclass(frozen=True)
class TargetColumn:
    name: str
    jdbc_type: int  # java.sql.Types
    type_name: str  # as the database names it
    nullable: bool
    has_default: bool  # a default or generated value: a load need not write it


@dataclass(frozen=True)
class TargetShape:
    columns: tuple[TargetColumn, ...]
    unique: tuple[frozenset[str], ...]  # the primary key's and each unique index's columns


def read_shape(jdbc: Any, catalog: str | None, schema: str | None, table: str) -> TargetShape:
    """``table``'s columns and unique keys, through the connection's ``DatabaseMetaData``."""
    meta = jdbc.getMetaData()
    escape = str(meta.getSearchStringEscape() or "")
    # The table name is a search pattern there: `_` would match any one character.
    pattern = "".join(escape + c if escape and c in "_%" else c for c in table)
    columns = tuple(
        TargetColumn(
            name=str(row.getString("COLUMN_NAME")),
            jdbc_type=int(row.getInt("DATA_TYPE")),
            type_name=str(row.getString("TYPE_NAME")),
            nullable=int(row.getInt("NULLABLE")) != 0,  # columnNoNulls is 0
            has_default=bool(row.getString("COLUMN_DEF"))
            or str(row.getString("IS_AUTOINCREMENT") or "") == "YES"
            or str(row.getString("IS_GENERATEDCOLUMN") or "") == "YES",
        )
        for row in _rows(meta.getColumns(catalog, schema, pattern, "%"), table)
    )
    keys: dict[str, set[str]] = {}
    for row in _rows(meta.getPrimaryKeys(catalog, schema, table), table):
        keys.setdefault("primary key", set()).add(str(row.getString("COLUMN_NAME")))
    for row in _rows(meta.getIndexInfo(catalog, schema, table, True, False), table):
        name, column = row.getString("INDEX_NAME"), row.getString("COLUMN_NAME")
        if name is not None and column is not None and not row.getBoolean("NON_UNIQUE"):
            keys.setdefault(f"index {name}", set()).add(str(column))
    return TargetShape(columns, tuple(frozenset(k) for k in keys.values()))


def _rows(result: Any, table: str) -> Iterator[Any]:
    """Each row of a metadata result set for exactly ``table`` (a pattern may match more)."""
    try:
        while result.next():
            if str(result.getString("TABLE_NAME")) == table:
                yield result
    finally:
        result.close()


def mismatches(
    shape: TargetShape,
    schema: StructType,
    keys: Sequence[str],
    mode: str,
    *,
    case_insensitive: bool,
) -> list[str]:
    """What keeps the target from taking the load, one phrase each; empty when it can."""

    def norm(name: str) -> str:
        return name.casefold() if case_insensitive else name

    target = {norm(c.name): c for c in shape.columns}
    written = {norm(f.name) for f in schema.fields}
    found = []
    for field in schema.fields:
        column = target.get(norm(field.name))
        if column is None:
            found.append(f"no column `{field.name}` ({field.dataType.simpleString()})")
        elif not _takes(column, field.dataType):
            found.append(
                f"column `{field.name}` is {column.type_name}, the load writes "
                f"{field.dataType.simpleString()}"
            )
    found += [
        f"column `{c.name}` is NOT NULL without a default, and the load does not write it"
        for c in shape.columns
        if norm(c.name) not in written and not c.nullable and not c.has_default
    ]
    if mode == "upsert" and frozenset(map(norm, keys)) not in {
        frozenset(map(norm, u)) for u in shape.unique
    }:
        found.append(
            f"no primary key or unique index on exactly ({', '.join(keys)}), which the upsert needs"
        )
    return found


def _takes(column: TargetColumn, written: DataType) -> bool:
    accepted = _accepted(written)
    return column.jdbc_type == _OTHER or accepted is None or column.jdbc_type in accepted


def _accepted(written: DataType) -> frozenset[int] | None:
    """The column types that take ``written``; None: any (a type this check does not judge)."""
    if isinstance(written, BooleanType):
        return _BOOLEAN | _INTEGRAL
    if isinstance(written, (ByteType, ShortType, IntegerType, LongType)):
        return _NUMBERS
    if isinstance(written, DecimalType):
        return _EXACT | _APPROX | (_INTEGRAL if written.scale == 0 else frozenset())
    if isinstance(written, (FloatType, DoubleType)):
        return _APPROX | _EXACT
    if isinstance(written, StringType):
        return _TEXT
    if isinstance(written, BinaryType):
        return _BINARY
    if isinstance(written, DateType):
        return _DATE | _TIMESTAMP
    if isinstance(written, (TimestampType, TimestampNTZType)):
        return _TIMESTAMP
    return None


_KINDS: Mapping[type[DataType], str] = {
    BooleanType: "boolean",
    ByteType: "int",
    ShortType: "int",
    IntegerType: "int",
    LongType: "long",
    FloatType: "float",
    DoubleType: "double",
    StringType: "string",
    BinaryType: "bytes",
    DateType: "date",
    TimestampType: "timestamp",
    TimestampNTZType: "timestamp",
}


def staging_columns(schema: StructType) -> list[database_sql.Column] | None:
    """``schema``'s columns as etlc writes them into SQL; None when one has a type etlc
    has no SQL for (an array, a map, a struct)."""
    columns = []
    for f in schema.fields:
        t = f.dataType
        if isinstance(t, DecimalType):
            columns.append(
                database_sql.Column(f.name, "decimal", precision=t.precision, scale=t.scale)
            )
        elif type(t) in _KINDS:
            columns.append(database_sql.Column(f.name, _KINDS[type(t)]))
        else:
            return None
    return columns
