"""What PostgreSQL and MySQL share: reads through Spark's JDBC source, and transactional loads.

A load never writes the target directly. Its rows go in parallel to a staging table private to
this attempt, through the database's bulk path (PostgreSQL's COPY, MySQL's LOAD DATA LOCAL:
etlc.jvm.load.BulkCopy) or else Spark's JDBC writer; then one transaction on the driver moves
them into the target
(``INSERT ... SELECT`` for append, ``DELETE`` + ``INSERT`` for overwrite, the dialect's upsert
for upsert) and commits. A failed attempt leaves the target as it was, so a retry never
duplicates, and a concurrent reader sees the old rows or the new ones, never a mix.

When the target rejects rows (SQLSTATE class 23: unique, foreign key, not null, check), the
failing range of staging rows is split in halves under savepoints until each rejected row is
isolated; those rows are dead-lettered (key, SQLSTATE and constraint only, never the other
values) and the rest commit.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from etlc import database_sql
from etlc.connectors.conform import conform
from etlc.connectors.dedupe import latest_per_key, none_superseded
from etlc.connectors.failures import translated
from etlc.connectors.target_shape import TargetShape, mismatches, read_shape, staging_columns
from etlc.profiles import JdbcProfile
from etlc.runtime import dataset_names
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    TerminalError,
    TransientError,
    java_chain,
    java_classes,
    java_origin,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.positions import in_range
from etlc.runtime.strategies import (
    BatchMarker,
    ExactlyOnceLoader,
    Extractor,
    Incremental,
    IncrementalExtractor,
    Loader,
    LoadResult,
    Position,
    PositionedLoader,
    Positions,
    refuse_unknown_mode,
)

T = TypeVar("T")
ROW_ID = "_etlc_row"
MAX_DEAD_LETTERS = 10_000  # past this, the load fails: that many rejects is not "a few bad rows"


# Streaming loads record each committed micro-batch here, in the same transaction as its rows.
MARKER_TABLE = "etlc_stream_batches"
# Batch loads fed by incremental extracts record the positions they read to here, likewise.
POSITION_TABLE = "etlc_incremental_state"


@dataclass(frozen=True)
class DeadLetter:
    key: dict[str, Any]
    sqlstate: str
    constraint: str


class Dialect(ABC):
    system: ClassVar[str]
    driver: ClassVar[str]
    # URL properties that make the driver send batched inserts as multi-row statements.
    batch_properties: ClassVar[Mapping[str, str]] = {}
    # MySQL: a `schema.table` names a database (a JDBC catalog), and column names are
    # compared without case.
    catalog_is_schema: ClassVar[bool] = False
    case_insensitive_names: ClassVar[bool] = False
    long_text: ClassVar[str] = "TEXT"  # a column of text without a practical length limit

    scheme: ClassVar[str]

    # What the bulk path's connections add (MySQL: LOAD DATA LOCAL, which reads the stream
    # etlc hands the driver, never a file), and the query whose one value says whether the
    # server takes it (None: it always does).
    bulk_properties: ClassVar[Mapping[str, str]] = {}
    bulk_check: ClassVar[str | None] = None
    # What etlc's own statements rely on, over a profile's properties.
    fixed_properties: ClassVar[Mapping[str, str]] = {}

    def url(self, c: JdbcProfile, *, bulk: bool = False) -> str:
        # Credentials travel as driver properties, never in the URL. The host and port are
        # pasted in as they are: the profile took only a host name or address and a number.
        props = {
            **self.batch_properties,
            **c.properties,
            **self.fixed_properties,
            **(self.bulk_properties if bulk else {}),
        }
        query = "&".join(f"{quote(k)}={quote(str(v))}" for k, v in sorted(props.items()))
        return f"{self.scheme}://{c.host}:{c.address_port}/{quote(c.database)}?{query}"

    def quote(self, identifier: str) -> str:
        """Quote a (possibly schema-qualified) name; anything but plain identifiers is refused."""
        try:
            return database_sql.quote(self.system, identifier)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None

    def locate(self, jdbc: Any, table: str) -> tuple[str | None, str | None, str]:
        """(catalog, schema, name) of ``table`` for JDBC's metadata calls; an unqualified
        name is in the connection's current schema (PostgreSQL) or database (MySQL)."""
        owner, _, name = table.rpartition(".")
        if self.catalog_is_schema:
            return (owner or str(jdbc.getCatalog()), None, name)
        return (None, owner or str(jdbc.getSchema()), name)

    def columns(self, names: Sequence[str]) -> str:
        return ", ".join(self.quote(n) for n in names)

    def insert_select(self, target: str, staging: str, names: Sequence[str], where: str) -> str:
        cols = self.columns(names)
        return f"INSERT INTO {self.quote(target)} ({cols}) SELECT {cols} FROM {staging}{where}"

    @abstractmethod
    def upsert(
        self,
        target: str,
        staging: str,
        names: Sequence[str],
        keys: Sequence[str],
        where: str,
        *,
        sequence_by: str | None = None,
    ) -> str:
        """The upsert statement; with ``sequence_by`` a row never replaces a newer one (a
        late or replayed row whose sequence is below the target's leaves the target as is)."""

    def constraint(self, error: Any) -> str:
        """The violated constraint's name, from the driver's exception (never its values)."""
        return ""


# --- reading ------------------------------------------------------------------------------


class JdbcExtractor(Extractor, IncrementalExtractor):
    dialect: ClassVar[Dialect]

    def __init__(
        self,
        connection: JdbcProfile,
        schema: DatasetSchema,
        *,
        table: str | None = None,
        query: str | None = None,
        partition: Mapping[str, Any] | None = None,
        fetch_size: int = 10_000,
        incremental: Mapping[str, Any] | None = None,
    ) -> None:
        if (table is None) == (query is None):
            raise ConfigurationError("a database extract takes exactly one of `table` or `query`")
        self.connection = _of_system(connection, self.dialect)
        self.schema: StructType = schema.struct()
        self.table = table
        self.query = query
        self.partition = dict(partition or {})
        self.fetch_size = fetch_size
        self.incremental = None if incremental is None else Incremental(**incremental)

    def describe(self) -> dict[str, Any]:
        return {
            "system": self.dialect.system,
            "connection": self.connection.name,
            "table": self.table or "(query)",
        }

    def dataset(self, spark: SparkSession) -> DatasetName | None:
        if self.table is None:
            return None  # a query may read any number of tables
        return _dataset(self.dialect, self.connection, self.table)

    def extract(self, spark: SparkSession) -> DataFrame:
        return self.extract_range(spark, None, None)

    def extract_range(
        self, spark: SparkSession, after: Position | None, upto: Position | None
    ) -> DataFrame:
        """The rows in a range of the incremental column's positions, filtered by the
        database: Spark folds the bounds into literals and sends the predicate with the read
        (in each partition's query, for a parallel read)."""
        reader = spark.read.format("jdbc").options(**_jdbc_options(self.dialect, self.connection))
        reader = reader.option("fetchsize", str(self.fetch_size))
        if self.table is not None:
            reader = reader.option("dbtable", self.dialect.quote(self.table))
        else:
            assert self.query is not None
            reader = reader.option("dbtable", subquery(self.query, self.dialect.system))
        if self.partition:
            reader = (
                reader.option("partitionColumn", self.dialect.quote(self.partition["column"]))
                .option("lowerBound", self.partition["lower"])
                .option("upperBound", self.partition["upper"])
                .option("numPartitions", str(self.partition["partitions"]))
            )
        source = f"{self.connection.name}:{self.table or '(query)'}"
        read = translate_errors(reader.load, self.connection)
        if self.incremental is not None:
            by = self.incremental
            assert by.column is not None
            where = in_range(F.col(f"`{by.column}`"), by.kind, after, upto)
            if where is not None:
                read = read.where(where)
        return conform(source, read, self.schema)


def subquery(query: str, system: str) -> str:
    """The ``dbtable`` text that reads ``query``: ``(query) etlc_query``.

    The compiler checked the query (one read-only SELECT) and emitted sqlglot's rendering of
    it; this refuses, before anything runs, text that could still leave the parentheses: a
    `;`, a comment, or a closing parenthesis with no opening one, outside quotes. (Spark's own
    ``query`` option wraps the text the same way and cannot take ``partitionColumn``.)
    """
    depth = 0
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch in "'\"`":
            i = _after_quoted(query, i, system)
            continue
        two = query[i : i + 2]
        if ch == ";" or two in ("--", "/*") or (ch == "#" and system == "mysql"):
            raise ConfigurationError(f"the query holds `{two.strip() or ch}` outside quotes")
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            raise ConfigurationError("the query closes a parenthesis it did not open")
        i += 1
    if depth != 0 or not query.strip():
        raise ConfigurationError("the query's parentheses do not balance")
    return f"({query}) etlc_query"


def _after_quoted(text: str, start: int, system: str) -> int:
    """The offset just past the quoted string or identifier opening at ``start``."""
    quote = text[start]
    # MySQL strings take backslash escapes; PostgreSQL's only in E'...' strings.
    escapes = quote != "`" and (
        system == "mysql" or (quote == "'" and start > 0 and text[start - 1] in "eE")
    )
    i = start + 1
    while i < len(text):
        ch = text[i]
        if (escapes and ch == "\\") or (ch == quote and text[i + 1 : i + 2] == quote):
            i += 2  # an escaped character, or a doubled quote
        elif ch == quote:
            return i + 1
        else:
            i += 1
    raise ConfigurationError(f"the query leaves a {quote} quote open")


def _of_system(connection: JdbcProfile, dialect: Dialect) -> JdbcProfile:
    # Both are JdbcProfiles to the type checker; the URL and the SQL are the dialect's.
    if connection.system != dialect.system:
        raise ConfigurationError(
            f"connection `{connection.name}` is a `{connection.system}` profile, "
            f"not `{dialect.system}`"
        )
    return connection


def _jdbc_options(dialect: Dialect, c: JdbcProfile) -> dict[str, str]:
    # The password is revealed here, in the options of the Spark call that needs it, and
    # nowhere else; Spark redacts it in plans (spark.redaction.regex covers `password`).
    return {
        "url": dialect.url(c),
        "driver": dialect.driver,
        "user": c.user,
        "password": c.password.reveal(),
    }


# --- writing ------------------------------------------------------------------------------


class JdbcLoader(Loader, ExactlyOnceLoader, PositionedLoader):
    dialect: ClassVar[Dialect]

    def __init__(
        self,
        connection: JdbcProfile,
        table: str,
        *,
        keys: Sequence[str] = (),
        sequence_by: str | None = None,
        batch_size: int = 5_000,
        parallelism: int | None = None,
        create_table: str | None = None,
        add_columns: Mapping[str, str] | None = None,
    ) -> None:
        """``create_table``: the CREATE TABLE statement (the compiler's, from the input's
        schema) to run when the target does not exist; without it a missing target fails.
        ``add_columns``: per input column, the ALTER TABLE that adds it to a target that
        lacks it; without it a missing column fails the load."""
        self.dialect.quote(table)  # refuse a bad name before anything runs
        self.connection = _of_system(connection, self.dialect)
        self.table = table
        self.keys = tuple(keys)
        self.sequence_by = sequence_by
        self.batch_size = batch_size
        self.parallelism = parallelism
        self.create_table = create_table
        self.add_columns = dict(add_columns or {})
        self.leftovers: list[str] = []  # staging tables not dropped yet

    def describe(self) -> dict[str, Any]:
        return {
            "system": self.dialect.system,
            "connection": self.connection.name,
            "table": self.table,
        }

    def dataset(self, spark: SparkSession) -> DatasetName:
        return _dataset(self.dialect, self.connection, self.table)

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        result = self._load(df, mode, None)
        assert result is not None  # only a marked batch can have been committed before
        return result

    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        """Write one micro-batch exactly once: its rows and ``marker`` commit together, and a
        batch whose marker is already there (a replay after a restart) is skipped (None)."""
        return self._load(df, mode, marker)

    def positions(self, spark: SparkSession, pipeline: str, load: str) -> dict[str, Any]:
        with _session(spark, self.dialect, self.connection) as sql:
            return sql.positions(pipeline, load)

    def replace_positions(self, spark: SparkSession, positions: Positions) -> None:
        with _session(spark, self.dialect, self.connection) as sql:
            sql.require_positions()
            sql.save_positions(positions)
            sql.commit()

    def load_positioned(self, df: DataFrame, mode: str, positions: Positions) -> LoadResult:
        """``load``, with the positions in the rows' transaction (``etlc_incremental_state``
        in the target's database)."""
        result = self._load(df, mode, None, positions)
        assert result is not None  # only a marked batch can have been committed before
        return result

    def _load(
        self,
        df: DataFrame,
        mode: str,
        marker: BatchMarker | None,
        positions: Positions | None = None,
    ) -> LoadResult | None:
        refuse_unknown_mode(mode, f"{self.dialect.system} table `{self.table}`")
        if mode == "upsert" and not self.keys:
            raise ConfigurationError("upsert needs `keys`")
        spark = df.sparkSession
        names = list(df.columns)
        staging_name = f"etlc_stage_{uuid.uuid4().hex[:16]}"
        superseded = none_superseded
        rows = df
        if mode == "upsert":
            rows, superseded = latest_per_key(df, self.keys, self.sequence_by)
        schema_prefix = self.table.rsplit(".", 1)[0] + "." if "." in self.table else ""
        staging_name = schema_prefix + staging_name
        staging = self.dialect.quote(staging_name)
        with _session(spark, self.dialect, self.connection) as sql:
            created = sql.require_table(self.table, self.create_table)
            added = self._check_target(sql, df.schema, mode)
            if marker is not None and sql.marked(self.dialect, marker):
                return None
            if positions is not None:
                sql.require_positions()
            try:
                started = time.monotonic()
                staged_with = self._write_staging(
                    sql, rows.withColumn(ROW_ID, F.monotonically_increasing_id()), staging_name
                )
                staged = time.monotonic()
                dead = self._move(sql, staging, names, mode, marker=marker, positions=positions)
                phases = {
                    "staging_ms": round((staged - started) * 1000),
                    "move_ms": round((time.monotonic() - staged) * 1000),
                }
            finally:
                # A staging table an earlier attempt could not drop (its server went away)
                # goes with this one's.
                self.leftovers = [t for t in (*self.leftovers, staging) if not sql.drop(t)]
        if dead is None:
            return None
        return LoadResult(
            dead_lettered=len(dead),
            superseded=superseded(),
            details={"dead_letters": [vars(d) for d in dead]} if dead else {},
            created_table=self.create_table if created else None,
            added_columns=added,
            phases_ms=phases,
            staged_with=staged_with,
        )

    def _check_target(self, sql: _Sql, schema: StructType, mode: str) -> tuple[str, ...]:
        """Before any row is written: the columns it added to the target (``add_columns``),
        else every difference that keeps the target from taking this load, in one message."""
        shape = self._shape(sql)
        added = self._add_missing(sql, shape, schema)
        if added:
            shape = self._shape(sql)
        found = mismatches(
            shape, schema, self.keys, mode, case_insensitive=self.dialect.case_insensitive_names
        )
        if found:
            raise TerminalError(
                f"table {self.table} on connection `{self.connection.name}` cannot take this "
                f"load: {'; '.join(found)} (`etlc ddl` prints the table the load needs)"
            )
        return added

    def _shape(self, sql: _Sql) -> TargetShape:
        catalog, owner, name = self.dialect.locate(sql.jdbc, self.table)
        try:
            return read_shape(sql.jdbc, catalog, owner, name)
        except Exception as exc:
            raise _classify_sql(exc, self.dialect, self.connection) from None

    def _add_missing(self, sql: _Sql, shape: TargetShape, schema: StructType) -> tuple[str, ...]:
        """The input's columns the target lacks, added (nullable) with the compiler's
        statements, in their own transaction; nothing without ``add_columns``."""
        if not self.add_columns:
            return ()

        def norm(name: str) -> str:
            return name.casefold() if self.dialect.case_insensitive_names else name

        have = {norm(c.name) for c in shape.columns}
        missing = [
            f.name for f in schema.fields if norm(f.name) not in have and f.name in self.add_columns
        ]
        for name in missing:
            sql.execute(self.add_columns[name])
        if missing:
            sql.commit()  # MySQL commits DDL implicitly; PostgreSQL must be told
        return tuple(missing)

    def _write_staging(self, sql: _Sql, df: DataFrame, name: str) -> str:
        """``df`` into a new staging table ``name``, made with etlc's column types (the ones
        ``etlc ddl`` gives a target: MySQL's DATETIME(6) keeps microseconds where Spark's
        own TIMESTAMP would drop them); through the database's bulk path (``copy``) when it
        can take every column, else through the JDBC writer's batched INSERTs (``insert``).
        A column type etlc has no SQL for leaves the table to Spark's writer."""
        out = df if self.parallelism is None else df.coalesce(self.parallelism)
        staging = self.dialect.quote(name)
        quoted = [self.dialect.quote(c) for c in out.columns]  # a bad name stops here
        columns = staging_columns(out.schema)
        system = self.dialect.system
        try:
            create = database_sql.staging_table(system, name, columns) if columns else None
        except ValueError:  # e.g. a decimal wider than MySQL's DECIMAL: Spark's type, as before
            create = None
        if create is None:
            self._jdbc_write(out, staging, "overwrite")
            return "insert"
        sql.define(create)
        jvm = df.sparkSession.sparkContext._jvm
        assert jvm is not None
        bulk = jvm.etlc.jvm.load.BulkCopy
        if not (bulk.copyable(out._jdf, system) and sql.bulk_allowed()):
            self._jdbc_write(out, staging, "append")
            return "insert"
        url = self.dialect.url(self.connection, bulk=True)
        props = _properties(jvm, self.connection)
        translate_errors(
            lambda: bulk.copy(out._jdf, system, url, props, staging, quoted), self.connection
        )
        return "copy"

    def _jdbc_write(self, out: DataFrame, staging: str, mode: str) -> None:
        """Spark's JDBC writer: ``overwrite`` makes the table with Spark's column types,
        ``append`` fills the one made here."""
        options = _jdbc_options(self.dialect, self.connection)
        translate_errors(
            lambda: (
                out.write.format("jdbc")
                .options(**options)
                .option("dbtable", staging)
                .option("batchsize", str(self.batch_size))
                # Each task's rows are one transaction: a task killed mid-write (its executor
                # lost) leaves nothing in staging, so the task Spark runs again cannot double it.
                .option("isolationLevel", "READ_COMMITTED")
                .mode(mode)
                .save()
            ),
            self.connection,
        )

    def _statement(self, staging: str, names: Sequence[str], mode: str, where: str) -> str:
        if mode == "upsert":
            return self.dialect.upsert(
                self.table, staging, names, self.keys, where, sequence_by=self.sequence_by
            )
        return self.dialect.insert_select(self.table, staging, names, where)

    def _move(
        self,
        sql: _Sql,
        staging: str,
        names: Sequence[str],
        mode: str,
        *,
        marker: BatchMarker | None = None,
        positions: Positions | None = None,
    ) -> list[DeadLetter] | None:
        """One transaction: everything lands, or the rejected rows are isolated and the rest do;
        ``positions`` with them. None: another run of the stream committed ``marker``'s batch
        first; nothing of this one was."""
        if mode == "overwrite":
            sql.execute(f"DELETE FROM {self.dialect.quote(self.table)}")
        try:
            sql.savepoint("etlc_all")
            sql.execute(self._statement(staging, names, mode, ""))
        except _RejectedError:
            sql.rollback_to("etlc_all")
            dead = self._isolate(sql, staging, names, mode)
        else:
            dead = []
        if marker is not None:
            try:
                sql.mark(self.dialect, marker)
            except _RejectedError:  # the marker's key is there now: the other run won
                sql.rollback()
                return None
        if positions is not None:
            sql.save_positions(positions)
        sql.commit()
        return dead

    def _isolate(
        self, sql: _Sql, staging: str, names: Sequence[str], mode: str
    ) -> list[DeadLetter]:
        dead: list[DeadLetter] = []
        row = self.dialect.quote(ROW_ID)
        lo, hi = sql.bounds(staging, row)
        pending = [(lo, hi)] if lo is not None and hi is not None else []
        while pending:
            lo, hi = pending.pop()
            where = f" WHERE {row} BETWEEN {lo} AND {hi}"
            try:
                sql.savepoint("etlc_range")
                sql.execute(self._statement(staging, names, mode, where))
                continue
            except _RejectedError as rejected:
                sql.rollback_to("etlc_range")
                error = rejected
            first, last = sql.bounds(staging, row, where)
            if first is None or last is None:
                continue
            if first == last:
                dead.append(self._dead_letter(sql, staging, row, first, error))
                if len(dead) > MAX_DEAD_LETTERS:
                    raise TerminalError(
                        f"more than {MAX_DEAD_LETTERS} rows rejected by {self.table}; "
                        "not loading a batch that bad"
                    )
                continue
            middle = (first + last) // 2
            pending.extend([(middle + 1, last), (first, middle)])
        return dead

    def _dead_letter(
        self, sql: _Sql, staging: str, row: str, row_id: int, error: _RejectedError
    ) -> DeadLetter:
        key_columns = list(self.keys)
        key: dict[str, Any] = {ROW_ID: row_id}
        if key_columns:
            values = sql.query_row(
                f"SELECT {self.dialect.columns(key_columns)} FROM {staging} WHERE {row} = {row_id}",
                len(key_columns),
            )
            if len(values) != len(key_columns):
                raise ValueError(f"{staging}: expected {len(key_columns)} key columns")
            key = dict(zip(key_columns, values))
        return DeadLetter(key, error.sqlstate, error.constraint)


# --- SQL on the driver, through the JVM's JDBC driver ---------------------------------------


class _RejectedError(Exception):
    """The target refused rows (integrity constraint violation, SQLSTATE class 23)."""

    def __init__(self, sqlstate: str, constraint: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate
        self.constraint = constraint


class _Sql:
    def __init__(self, jdbc: Any, dialect: Dialect, connection: JdbcProfile) -> None:
        self.jdbc = jdbc
        self.dialect = dialect
        self.connection = connection
        self.savepoints: dict[str, Any] = {}

    def define(self, statement: str) -> None:
        """Run a DDL statement and commit it (MySQL commits DDL implicitly; PostgreSQL must
        be told)."""
        self.execute(statement)
        self.commit()

    def execute(self, statement: str) -> None:
        stmt = self.jdbc.createStatement()
        try:
            stmt.execute(statement)
        except Exception as exc:
            raise _classify_sql(exc, self.dialect, self.connection) from None
        finally:
            stmt.close()

    def query_row(self, statement: str, width: int) -> list[Any]:
        stmt = self.jdbc.createStatement()
        try:
            result = stmt.executeQuery(statement)
            if not result.next():
                return [None] * width
            return [result.getObject(i) for i in range(1, width + 1)]
        except Exception as exc:
            raise _classify_sql(exc, self.dialect, self.connection) from None
        finally:
            stmt.close()

    def bounds(self, staging: str, row: str, where: str = "") -> tuple[int | None, int | None]:
        low, high = self.query_row(f"SELECT MIN({row}), MAX({row}) FROM {staging}{where}", 2)
        return (None if low is None else int(low), None if high is None else int(high))

    def bulk_allowed(self) -> bool:
        """Whether the server takes the dialect's bulk path (MySQL's ``local_infile`` is off
        by default in MySQL 8); a server that cannot say is written to with INSERTs."""
        if self.dialect.bulk_check is None:
            return True
        try:
            [allowed] = self.query_row(self.dialect.bulk_check, 1)
            self.commit()
        except (TerminalError, _RejectedError):
            with suppress(Exception):
                self.jdbc.rollback()
            return False
        return str(allowed).upper() in ("1", "ON", "TRUE")

    def create_shared(self, statement: str) -> None:
        """A ``CREATE TABLE IF NOT EXISTS`` of a table every load shares, in its own
        transaction. Two loads creating it at the same moment: one wins, and the other
        (PostgreSQL fails it with a unique violation) finds it there afterwards."""
        try:
            self.define(statement)
        except (_RejectedError, TerminalError):
            self.jdbc.rollback()

    def prepared(self, statement: str, values: Sequence[str | int], use: Callable[[Any], T]) -> T:
        """``use`` of the prepared ``statement`` with ``values`` bound in order (an int as a
        BIGINT); its failure classified, the statement closed."""
        stmt = self.jdbc.prepareStatement(statement)
        try:
            for index, value in enumerate(values, start=1):
                if isinstance(value, int):
                    stmt.setLong(index, value)
                else:
                    stmt.setString(index, value)
            return use(stmt)
        except Exception as exc:
            raise _classify_sql(exc, self.dialect, self.connection) from None
        finally:
            stmt.close()

    def marked(self, dialect: Dialect, marker: BatchMarker) -> bool:
        """Whether ``marker``'s batch committed before; creates the marker table if needed."""
        table = dialect.quote(MARKER_TABLE)
        self.create_shared(
            f"CREATE TABLE IF NOT EXISTS {table} (pipeline VARCHAR(200) NOT NULL, "
            "epoch VARCHAR(64) NOT NULL, batch_id BIGINT NOT NULL, "
            "committed_at TIMESTAMP NULL, PRIMARY KEY (pipeline, epoch, batch_id))"
        )
        found = self.prepared(
            f"SELECT 1 FROM {table} WHERE pipeline = ? AND epoch = ? AND batch_id = ?",
            (marker.pipeline, marker.epoch, marker.batch_id),
            lambda stmt: bool(stmt.executeQuery().next()),
        )
        # End the read now: MariaDB will not let a transaction whose snapshot predates the
        # staging table (written next, by Spark) read from it ("insufficient history").
        self.commit()
        return found

    def mark(self, dialect: Dialect, marker: BatchMarker) -> None:
        self.prepared(
            f"INSERT INTO {dialect.quote(MARKER_TABLE)} (pipeline, epoch, batch_id, committed_at) "
            "VALUES (?, ?, ?, CURRENT_TIMESTAMP)",
            (marker.pipeline, marker.epoch, marker.batch_id),
            lambda stmt: stmt.executeUpdate(),
        )

    def require_positions(self) -> None:
        """The position table, created in its own transaction if missing."""
        self.create_shared(
            f"CREATE TABLE IF NOT EXISTS {self.dialect.quote(POSITION_TABLE)} (pipeline "
            "VARCHAR(200) NOT NULL, load_step VARCHAR(200) NOT NULL, extract_step VARCHAR(200) "
            f"NOT NULL, position_json {self.dialect.long_text} NOT NULL, run_id VARCHAR(64) "
            "NOT NULL, committed_at TIMESTAMP NULL, PRIMARY KEY (pipeline, load_step, "
            "extract_step))"
        )

    def positions(self, pipeline: str, load: str) -> dict[str, Any]:
        """The positions ``load`` of ``pipeline`` committed (none: no table, or no row)."""
        if not self._exists(POSITION_TABLE):
            return {}

        def read(stmt: Any) -> dict[str, Any]:
            rows, found = stmt.executeQuery(), {}
            while rows.next():
                found[str(rows.getObject(1))] = json.loads(str(rows.getObject(2)))
            return found

        found = self.prepared(
            f"SELECT extract_step, position_json FROM {self.dialect.quote(POSITION_TABLE)} "
            "WHERE pipeline = ? AND load_step = ?",
            (pipeline, load),
            read,
        )
        self.commit()
        return found

    def save_positions(self, positions: Positions) -> None:
        """``positions`` in the open transaction, in place of the load's earlier ones. When
        it expects some, each row changes only from the value expected (a compare-and-set the
        database locks until the commit), and a row expected absent must still be: otherwise
        another run of the pipeline committed in between, and this one commits nothing."""
        table = self.dialect.quote(POSITION_TABLE)
        load = (positions.pipeline, positions.load)
        values = sorted(positions.values().items())
        expected = positions.expected
        if expected is None:  # an operator's reset: whatever was there goes
            self.prepared(
                f"DELETE FROM {table} WHERE pipeline = ? AND load_step = ?",
                load,
                lambda stmt: stmt.executeUpdate(),
            )
        insert = (
            f"INSERT INTO {table} (pipeline, load_step, extract_step, position_json, run_id, "
            "committed_at) VALUES (?, ?, ?, ?, ?, CURRENT_TIMESTAMP)"
        )
        update = (
            f"UPDATE {table} SET position_json = ?, run_id = ?, committed_at = CURRENT_TIMESTAMP "
            "WHERE pipeline = ? AND load_step = ? AND extract_step = ? AND position_json = ?"
        )
        try:
            for extract, at in values:
                text = json.dumps(at, sort_keys=True)
                if expected is None or extract not in expected:
                    added = (*load, extract, text, positions.run_id)
                    self.prepared(insert, added, lambda stmt: stmt.executeUpdate())
                    continue
                was = json.dumps(expected[extract], sort_keys=True)
                moved = (text, positions.run_id, *load, extract, was)
                if self.prepared(update, moved, lambda stmt: stmt.executeUpdate()) != 1:
                    raise _RejectedError("40001", "")
        except _RejectedError:  # a row changed or appeared since the run began
            raise TerminalError(
                f"another run of {positions.pipeline} committed load `{positions.load}` while "
                "this one ran; nothing of this run was written to it (runs of one pipeline "
                "must not overlap)"
            ) from None

    def savepoint(self, name: str) -> None:
        self.savepoints[name] = self.jdbc.setSavepoint(name)

    def rollback_to(self, name: str) -> None:
        self.jdbc.rollback(self.savepoints.pop(name))

    def commit(self) -> None:
        self.jdbc.commit()

    def rollback(self) -> None:
        self.jdbc.rollback()

    def require_table(self, table: str, create: str | None = None) -> bool:
        """Whether the target had to be created (with ``create``, in its own transaction);
        a missing target without ``create`` is a terminal error."""
        if self._exists(table):
            return False
        if create is None:
            raise TerminalError(
                f"table {table} does not exist on connection `{self.connection.name}` "
                "(or this user cannot read it); create it before loading (`etlc ddl` prints "
                "its CREATE TABLE) or set `create_table: if_missing`"
            )
        try:
            self.define(create)
        except (_RejectedError, TerminalError) as exc:
            # Another load created it a moment ago: what matters is that it is there now.
            with suppress(Exception):
                self.jdbc.rollback()
            if self._exists(table):
                return False
            raise TerminalError(
                f"could not create table {table} on connection `{self.connection.name}`: {exc}"
            ) from None
        return True

    def _exists(self, table: str) -> bool:
        stmt = self.jdbc.createStatement()
        try:
            stmt.executeQuery(f"SELECT 1 FROM {self.dialect.quote(table)} WHERE 1 = 0").close()
            return True
        except Exception as exc:
            state = _sqlstate(exc)
            with suppress(Exception):  # a dead connection cannot roll back; it is closed next
                self.jdbc.rollback()
            # 42: the name does not resolve (or is not readable); anything else, e.g. the
            # server going away, is that failure, not a missing table.
            if not state.startswith(_MISSING_STATES):
                raise _classify_sql(exc, self.dialect, self.connection) from None
            return False
        finally:
            stmt.close()

    def drop(self, staging: str) -> bool:
        """Whether ``staging`` is gone; ends the transaction (whatever was not committed)."""
        try:
            self.jdbc.rollback()
            self.jdbc.setAutoCommit(True)
            stmt = self.jdbc.createStatement()
            try:
                stmt.execute(f"DROP TABLE IF EXISTS {staging}")
            finally:
                stmt.close()
        except Exception:  # the load's own outcome matters more than a leftover staging table
            return False
        return True


@contextmanager
def _session(spark: SparkSession, dialect: Dialect, connection: JdbcProfile) -> Iterator[_Sql]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    # Registering through Spark makes the driver jar (shipped with --jars) visible to
    # java.sql.DriverManager, which only sees drivers of the system class loader otherwise.
    jvm.org.apache.spark.sql.execution.datasources.jdbc.DriverRegistry.register(dialect.driver)
    try:
        jdbc = jvm.java.sql.DriverManager.getConnection(
            dialect.url(connection), _properties(jvm, connection)
        )
    except Exception as exc:
        raise _classify_sql(exc, dialect, connection) from None
    try:
        jdbc.setAutoCommit(False)
        yield _Sql(jdbc, dialect, connection)
    finally:
        jdbc.close()


def _properties(jvm: Any, connection: JdbcProfile) -> Any:
    """The user and password as the JDBC driver takes them (a java.util.Properties)."""
    props = jvm.java.util.Properties()
    props.setProperty("user", connection.user)
    props.setProperty("password", connection.password.reveal())
    return props


# SQLSTATE classes: 08 connection, 28 authorization, 40 rollback (deadlock, serialization),
# 53 insufficient resources, 57 operator intervention (e.g. server shutting down).
_TRANSIENT_STATES = ("08", "40", "53", "57")
_AUTH_STATES = ("28",)
# 42: syntax error or access rule violation (PostgreSQL 42P01 undefined table, 42501 no
# privilege; MySQL 42S02 no such table, 42000 denied).
_MISSING_STATES = ("42",)


def _sqlstate(exc: BaseException) -> str:
    for origin in islice(java_chain(exc), 16):
        try:
            state = origin.getSQLState() if hasattr(origin, "getSQLState") else None
        except Exception:
            state = None
        if state:
            return str(state)
    return ""


def _classify_sql(exc: BaseException, dialect: Dialect, connection: JdbcProfile) -> Exception:
    """Map a JDBC failure by SQLSTATE (and exception type), never echoing the driver's text."""
    state = _sqlstate(exc)
    where = f"{dialect.system} connection `{connection.name}`"
    if state.startswith("23"):
        origin = java_origin(exc)
        return _RejectedError(state, dialect.constraint(origin))
    if state.startswith(_AUTH_STATES):
        return AuthenticationError(
            f"{where}: authentication failed (SQLSTATE {state}); check the user and the vault entry"
        )
    if state.startswith(_TRANSIENT_STATES) or any(
        name in ("java.net.ConnectException", "java.net.SocketTimeoutException")
        for name in java_classes(exc)
    ):
        return TransientError(f"{where}: unavailable (SQLSTATE {state or 'none'})")
    return TerminalError(f"{where}: statement failed (SQLSTATE {state or 'none'})")


def translate_errors(call: Callable[[], T], connection: JdbcProfile) -> T:
    """Run a Spark JDBC call; connection and authentication failures become typed errors."""

    def classify(exc: Exception) -> Exception | None:
        state = _sqlstate(exc)
        if state.startswith(_AUTH_STATES):
            return AuthenticationError(
                f"connection `{connection.name}`: authentication failed (SQLSTATE {state})"
            )
        if state.startswith(("08", "57")):
            return TransientError(f"connection `{connection.name}`: unavailable (SQLSTATE {state})")
        if state.startswith("22"):  # a data exception: a value its column cannot hold
            return TerminalError(
                f"connection `{connection.name}`: a value its column cannot hold (SQLSTATE {state})"
            )
        return None

    return translated(call, classify)


def _dataset(dialect: Dialect, connection: JdbcProfile, table: str) -> DatasetName:
    return dataset_names.table(
        dialect.system, connection.host, connection.address_port, connection.database, table
    )
