"""The database extract and load (PostgreSQL, MySQL), over JDBC.

An extract reads a table or a checked SELECT, optionally in parallel over a partition
column's range; a load appends, overwrites or upserts into a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from etlc import database_sql
from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Severity, Span, diag
from etlc.dsl.durations import duration_problems, seconds
from etlc.dsl.expressions import valid_temporal
from etlc.dsl.incremental import refused_in_stream
from etlc.dsl.plan import SchemaOf
from etlc.dsl.sql_query import check_query
from etlc.dsl.steps.contract import CheckContext, Lowered, StepKind
from etlc.dsl.steps.files import refresh_rule
from etlc.dsl.types import DataType, RecordSchema
from etlc.dsl.upserts import check_sequence
from etlc.plugins import MavenArtifact, PluginSpec
from etlc.profiles import PROFILES


@dataclass(frozen=True, kw_only=True)
class JdbcPartition:
    column: ast.Name
    lower: ast.Scalar
    upper: ast.Scalar
    partitions: ast.Number
    span: Span


@dataclass(frozen=True, kw_only=True)
class JdbcIncremental:
    column: ast.Name
    lookback: ast.Scalar | None = None
    span: Span


@dataclass(frozen=True, kw_only=True)
class JdbcExtract(ast.Step):
    role: ClassVar[str] = "extract"
    connection: ast.Name
    schema: ast.Name
    table: ast.Name | None = None
    query: ast.Name | None = None
    partition: JdbcPartition | None = None
    fetch_size: ast.Number | None = None
    refresh: ast.Name | None = None
    incremental: JdbcIncremental | None = None


@dataclass(frozen=True, kw_only=True)
class JdbcLoad(ast.Step):
    role: ClassVar[str] = "load"
    input: ast.Name
    connection: ast.Name
    table: ast.Name
    mode: ast.Name
    keys: tuple[ast.Name, ...] = ()
    sequence_by: ast.Name | None = None
    batch_size: ast.Number | None = None
    parallelism: ast.Number | None = None
    create_table: ast.Name | None = None
    add_columns: ast.Flag | None = None

    def inputs(self) -> list[ast.Name]:
        return [self.input]


# The longest identifier each database takes: PostgreSQL truncates past 63 bytes (NAMEDATALEN
# - 1), so two long names could silently become one; MySQL refuses past 64 characters.
_IDENTIFIER_LIMITS: Mapping[str, tuple[int, str, Callable[[str], int]]] = {
    "postgres": (63, "bytes", lambda name: len(name.encode("utf-8"))),
    "mysql": (64, "characters", len),
}
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,19}")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def check_extract(
    ctx: CheckContext, step: JdbcExtract, inputs: Sequence[RecordSchema]
) -> Lowered | None:
    if (step.table is None) == (step.query is None):
        ctx.error(
            "E210",
            "a database extract needs exactly one of `table` or `query`",
            step.span,
            'name a table ("table": "schema.table") or give a SELECT ("query")',
        )
        return None
    connection = ctx.connection(step.connection, PROFILES[step.type.value])
    schema = ctx.load_avro(step.schema)
    if schema is None:
        return None
    args: dict[str, Any] = {"connection": connection}
    if step.table is not None:
        args["table"] = step.table.value
    else:
        assert step.query is not None
        checked, found = check_query(step.query.value, step.type.value, step.query.span)
        ctx.report(found)
        if checked is None:
            return None
        args["query"] = checked.sql
    args["schema"] = SchemaOf(step.id.value)
    if step.partition is not None:
        p = step.partition
        if not ctx.columns_exist([p.column], schema, "partition"):
            return None
        ctype = schema.columns()[p.column.value]
        if not (ctype.is_integral or ctype.is_temporal):
            ctx.error(
                "E304",
                f"partition column `{p.column.value}` is {ctype.describe()}; "
                "parallel reads need an integer, date or timestamp column",
                p.column.span,
                "pick a numeric or date key, or drop `partition`",
                column=p.column.value,
            )
            return None
        problems = _partition_problems(p, ctype)
        if problems:
            ctx.report(problems)
            return None
        args["partition"] = {
            "column": p.column.value,
            "lower": str(p.lower.value),
            "upper": str(p.upper.value),
            "partitions": int(p.partitions.value),
        }
    if step.fetch_size is not None:
        args["fetch_size"] = int(step.fetch_size.value)
    if step.incremental is not None:
        by = incremental_by(ctx, step.incremental, schema)
        if by is None:
            return None
        args["incremental"] = by
    return Lowered(args, schema, rules=ctx.validation_rules(schema, step.schema))


def incremental_by(
    ctx: CheckContext, inc: JdbcIncremental, schema: RecordSchema
) -> dict[str, Any] | None:
    """The runtime's :class:`~etlc.runtime.strategies.Incremental` of a checked
    ``incremental`` option: the column, how its values become positions, and the lookback in
    positions (microseconds of a timestamp, days of a date, units of an integer)."""
    if refused_in_stream(ctx, inc.span):
        return None
    if not ctx.columns_exist([inc.column], schema, "incremental"):
        return None
    ctype = schema.columns()[inc.column.value]
    kind = "integer" if ctype.is_integral else ctype.kind
    if kind not in ("integer", "date", "timestamp"):
        ctx.error(
            "E304",
            f"incremental column `{inc.column.value}` is {ctype.describe()}; it needs values "
            "that only grow: an integer, date or timestamp",
            inc.column.span,
            "pick an id or an updated_at column",
            column=inc.column.value,
        )
        return None
    if ctype.nullable:
        ctx.report(
            [
                diag(
                    "W205",
                    f"incremental column `{inc.column.value}` may be null; a row whose value "
                    "is null is read by the first run only",
                    inc.column.span,
                    "declare it non-null in the schema if the table never holds a null there",
                    Severity.WARNING,
                )
            ]
        )
    lookback = _lookback(ctx, inc, kind)
    if lookback is None:
        return None
    return {"column": inc.column.value, "kind": kind, "lookback": lookback}


def _lookback(ctx: CheckContext, inc: JdbcIncremental, kind: str) -> int | None:
    """The lookback in positions: an integer column's units; a duration for a timestamp
    (microseconds) or a date (whole days)."""
    given = inc.lookback
    if given is None:
        return 0
    value = given.value
    if kind == "integer":
        if isinstance(given, ast.Number) and isinstance(value, int) and 0 <= value <= _LONG_MAX:
            return value
        ctx.error(
            "E216",
            f"lookback {str(value)[:40]!r} is not a whole number of at least 0 for the integer "
            f"column `{inc.column.value}`",
            given.span,
            "give how many values below the last one read to read again, e.g. 1000",
        )
        return None
    if isinstance(given, ast.Name):
        found = duration_problems([given])
        if found:
            ctx.report(found)
            return None
        secs = seconds(given.value)
        if kind == "timestamp":
            return secs * 1_000_000
        if secs % 86_400 == 0:
            return secs // 86_400
    ctx.error(
        "E216",
        f"lookback {str(value)[:40]!r} is not a duration "
        + ("in whole days " if kind == "date" else "")
        + f"for the {kind} column `{inc.column.value}`",
        given.span,
        'write e.g. "2 days"' if kind == "date" else 'write e.g. "15 minutes"',
    )
    return None


def check_load(ctx: CheckContext, step: JdbcLoad, inputs: Sequence[RecordSchema]) -> Lowered | None:
    [schema] = inputs
    connection = ctx.connection(step.connection, PROFILES[step.type.value])
    if not ctx.columns_exist(step.keys, schema, "keys"):
        return None
    # Every column of the input becomes a column of the target (and of its staging table).
    names = [
        step.table,
        *step.keys,
        *([step.sequence_by] if step.sequence_by else []),
        *(ast.Name(n, step.input.span) for n in schema.names()),
    ]
    too_long = _identifier_problems(names, step.type.value)
    if too_long:
        ctx.report(too_long)
        return None
    args: dict[str, Any] = {"connection": connection, "table": step.table.value}
    if step.keys:
        args["keys"] = tuple(k.value for k in step.keys)
    if step.batch_size is not None:
        args["batch_size"] = int(step.batch_size.value)
    if step.parallelism is not None:
        args["parallelism"] = int(step.parallelism.value)
    if not check_sequence(ctx, step, schema, args):
        return None
    if step.create_table is not None and step.create_table.value == "if_missing":
        try:
            args["create_table"] = create_statement(step.type.value, step.table.value, schema, args)
        except ValueError as exc:
            ctx.error(
                "E216",
                f"the table cannot be created: {exc}",
                step.create_table.span,
                "create it yourself and drop `create_table`, or change the column's type",
            )
            return None
    if step.add_columns is not None and step.add_columns.value:
        try:
            args["add_columns"] = add_statements(step.type.value, step.table.value, schema)
        except ValueError as exc:
            ctx.error(
                "E216",
                f"a column cannot be added: {exc}",
                step.add_columns.span,
                "add it yourself and drop `add_columns`, or change the column's type",
            )
            return None
    return Lowered(args, schema, mode=step.mode.value)


def _columns(schema: RecordSchema) -> list[database_sql.Column]:
    return [
        database_sql.Column(
            name=f.name,
            kind=f.type.kind,
            nullable=f.type.nullable,
            precision=f.type.precision,
            scale=f.type.scale,
            symbols=f.type.symbols,
            logical=f.type.logical,
        )
        for f in schema.fields
    ]


def add_statements(system: str, table: str, schema: RecordSchema) -> dict[str, str]:
    """Per input column, the ALTER TABLE that adds it to a target that lacks it."""
    return {c.name: database_sql.add_column(system, table, c) for c in _columns(schema)}


def create_statement(system: str, table: str, schema: RecordSchema, args: Mapping[str, Any]) -> str:
    """The CREATE TABLE of a load's target: its input's columns, an upsert's keys as the
    primary key (what `etlc ddl` prints and `create_table: if_missing` runs)."""
    return database_sql.create_table(system, table, _columns(schema), tuple(args.get("keys", ())))


def _identifier_problems(names: Iterable[ast.Name], system: str) -> list[Diagnostic]:
    limit, unit, size = _IDENTIFIER_LIMITS[system]
    found: list[Diagnostic] = []
    seen: set[str] = set()
    for name in names:
        for part in name.value.split("."):
            if size(part) > limit and part not in seen:
                seen.add(part)
                found.append(
                    diag(
                        "E216",
                        f"`{part[:40]}...` is {size(part)} {unit} long; {system} identifiers "
                        f"take at most {limit}",
                        name.span,
                        "rename it (a select step can rename a column)",
                        identifier=part,
                    )
                )
    return found


def _partition_problems(p: JdbcPartition, ctype: DataType) -> list[Diagnostic]:
    """Spark reads `lowerBound`/`upperBound` as the column's type: integers for an integer
    column, dates or timestamps for a temporal one; lower must be below upper."""
    values: list[Any] = []
    found: list[Diagnostic] = []
    for bound in (p.lower, p.upper):
        raw = bound.value
        value: Any = None
        if ctype.is_integral:
            if isinstance(raw, int) and not isinstance(raw, bool):
                value = raw
            elif isinstance(raw, str) and _INTEGER_TEXT.fullmatch(raw):
                value = int(raw)
            if isinstance(value, int) and not _LONG_MIN <= value <= _LONG_MAX:
                value = None
            what = "an integer (a 64-bit long)"
        else:
            if isinstance(raw, str) and valid_temporal(raw, ctype.kind):
                value = raw.strip()
            what = f"a {ctype.kind} like '2024-01-31" + (
                " 00:00:00'" if ctype.kind == "timestamp" else "'"
            )
        if value is None:
            found.append(
                diag(
                    "E216",
                    f"partition bound {str(raw)[:40]!r} is not {what} for column "
                    f"`{p.column.value}` ({ctype.describe()})",
                    bound.span,
                    "give the bounds in the partition column's type",
                )
            )
        values.append(value)
    lower, upper = values
    if not found and _ordered(lower, ctype) >= _ordered(upper, ctype):
        found.append(
            diag(
                "E216",
                f"partition bounds are inverted or equal: lower {lower!r} is not below "
                f"upper {upper!r}",
                p.lower.span,
                "lower is the smallest value to split from, upper the largest",
            )
        )
    return found


def _ordered(value: Any, ctype: DataType) -> Any:
    """A bound as a comparable key (dates before times on the same day, zero-padded)."""
    if ctype.is_integral:
        return value
    date, _, time = str(value).replace("T", " ").partition(" ")
    parts = [int(x) for x in re.findall(r"[0-9]+", date)[:3]]
    clock = [float(x) for x in re.findall(r"[0-9]+(?:\.[0-9]+)?", time)[:3]]
    return [*parts, 1, 1][:3] + [*clock, 0.0, 0.0, 0.0][:3]


# One node and one check for both databases: the system is the step's `type`.
POSTGRES_JDBC = MavenArtifact("org.postgresql", "postgresql", "42.7.14")
MARIADB_JDBC = MavenArtifact("org.mariadb.jdbc", "mariadb-java-client", "3.5.11")
WRITE_MODES = frozenset({"append", "overwrite", "upsert"})
EXTRACTS = (
    PluginSpec(
        "postgres",
        "extract",
        "etlc.connectors.postgres:PostgresExtractor",
        streaming=True,
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "extract",
        "etlc.connectors.mysql:MySqlExtractor",
        streaming=True,
        artifacts=(MARIADB_JDBC,),
    ),
)
LOADS = (
    PluginSpec(
        "postgres",
        "load",
        "etlc.connectors.postgres:PostgresLoader",
        streaming=True,
        write_modes=WRITE_MODES,
        artifacts=(POSTGRES_JDBC,),
    ),
    PluginSpec(
        "mysql",
        "load",
        "etlc.connectors.mysql:MySqlLoader",
        streaming=True,
        write_modes=WRITE_MODES,
        artifacts=(MARIADB_JDBC,),
    ),
)
KINDS = (
    StepKind(JdbcExtract, check_extract, refresh_rule, specs=EXTRACTS),
    StepKind(JdbcLoad, check_load, specs=LOADS),
)
