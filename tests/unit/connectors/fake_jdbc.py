"""A fake of the java.sql surface the JDBC loader drives through py4j, backed by sqlite3.

The SQL the loader sends really runs, with sqlite's transactions and savepoints, so a test sees
what would be committed; only the py4j shape is faked. Failures come back as py4j does: a
Python exception carrying a Java ``SQLException`` (``java_exception``) whose SQLSTATE, message
and server detail are what the loader's classifier and the dialects read. The database is a
file in WAL mode so that a second connection (Spark's staging writer, or a test checking the
target) reads the last committed state while the fake's transaction is still open.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

# SQLSTATEs of the constraint violations, as PostgreSQL reports them.
_INTEGRITY_STATES = {
    "SQLITE_CONSTRAINT_CHECK": "23514",
    "SQLITE_CONSTRAINT_UNIQUE": "23505",
    "SQLITE_CONSTRAINT_PRIMARYKEY": "23505",
    "SQLITE_CONSTRAINT_NOTNULL": "23502",
    "SQLITE_CONSTRAINT_FOREIGNKEY": "23503",
}
DRIVER_TEXT = "driver detail: connection reset by peer"


class ServerErrorMessage:
    """PostgreSQL's server detail (``PSQLException.getServerErrorMessage()``)."""

    def __init__(self, constraint: str | None, column: str | None) -> None:
        self.constraint, self.column = constraint, column

    def getConstraint(self) -> str | None:  # noqa: N802 - mirrors the driver
        return self.constraint

    def getColumn(self) -> str | None:  # noqa: N802
        return self.column


class JavaClass:
    def __init__(self, name: str) -> None:
        self.name = name

    def getName(self) -> str:  # noqa: N802
        return self.name


class JavaSqlException:
    """What py4j hands back as the Java side of a failed call: a ``java.sql.SQLException``."""

    def __init__(
        self,
        state: str | None,
        message: str,
        *,
        detail: ServerErrorMessage | None = None,
        cause: Any = None,
        cls: str = "org.postgresql.util.PSQLException",
    ) -> None:
        self.state, self.message, self.detail, self.cause, self.cls = (
            state,
            message,
            detail,
            cause,
            cls,
        )

    def getSQLState(self) -> str | None:  # noqa: N802
        return self.state

    def getMessage(self) -> str:  # noqa: N802
        return self.message

    def getCause(self) -> Any:  # noqa: N802
        return self.cause

    def getClass(self) -> JavaClass:  # noqa: N802
        return JavaClass(self.cls)

    def getServerErrorMessage(self) -> ServerErrorMessage | None:  # noqa: N802
        return self.detail


class FakePy4JJavaError(Exception):
    """Like ``py4j.protocol.Py4JJavaError``: its text is the driver's, which may quote values
    and credentials, so the loader must never echo it."""

    def __init__(self, java_exception: Any) -> None:
        text = getattr(java_exception, "message", "")
        super().__init__(f"An error occurred while calling o42.execute: {text}")
        self.java_exception = java_exception


def integrity_error(exc: sqlite3.Error) -> FakePy4JJavaError:
    """sqlite's failure as the PostgreSQL driver would report it."""
    text = str(exc)
    errorname = getattr(exc, "sqlite_errorname", "")
    if isinstance(exc, sqlite3.IntegrityError):
        state = _INTEGRITY_STATES.get(errorname, "23000")
        named = text.split(": ", 1)[1] if ": " in text else None
        # sqlite names a CHECK constraint, and only the column of NOT NULL (as PostgreSQL).
        constraint = named if errorname == "SQLITE_CONSTRAINT_CHECK" else None
        column = named.rsplit(".", 1)[-1] if named and state == "23502" else None
        detail = ServerErrorMessage(constraint, column)
    else:
        state = "42P01" if "no such table" in text else "42601"
        detail = None
    return FakePy4JJavaError(JavaSqlException(state, f"ERROR: {text}", detail=detail))


class FakeResultSet:
    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = list(rows)
        self.at = -1
        self.closed = False

    def next(self) -> bool:
        self.at += 1
        return self.at < len(self.rows)

    def getObject(self, index: int) -> Any:  # noqa: N802
        return self.rows[self.at][index - 1]

    def close(self) -> None:
        self.closed = True


class FakeStatement:
    """A ``Statement``, or a ``PreparedStatement`` when made with its SQL."""

    def __init__(self, connection: FakeConnection, sql: str | None = None) -> None:
        self.connection = connection
        self.sql = sql
        self.params: dict[int, Any] = {}
        self.closed = False

    def _args(self) -> list[Any]:
        return [self.params[i] for i in sorted(self.params)]

    def setString(self, index: int, value: str) -> None:  # noqa: N802
        self.params[index] = str(value)

    def setLong(self, index: int, value: int) -> None:  # noqa: N802
        self.params[index] = int(value)

    def execute(self, sql: str) -> bool:
        self.connection.run(sql, (), write=True)
        return False

    def executeUpdate(self, sql: str | None = None) -> int:  # noqa: N802
        cursor = self.connection.run(sql or self.sql or "", self._args(), write=True)
        return cursor.rowcount

    def executeQuery(self, sql: str | None = None) -> FakeResultSet:  # noqa: N802
        cursor = self.connection.run(sql or self.sql or "", self._args(), write=False)
        return FakeResultSet(cursor.fetchall())

    def close(self) -> None:
        self.closed = True


class FakeSavepoint:
    def __init__(self, name: str) -> None:
        self.name = name

    def getSavepointName(self) -> str:  # noqa: N802
        return self.name


class FakeMetaRows:
    """A ``DatabaseMetaData`` result set: rows of named columns."""

    def __init__(self, rows: Sequence[dict[str, Any]]) -> None:
        self.rows, self.at, self.closed = list(rows), -1, False

    def next(self) -> bool:
        self.at += 1
        return self.at < len(self.rows)

    def getString(self, column: str) -> str | None:  # noqa: N802
        value = self.rows[self.at].get(column)
        return None if value is None else str(value)

    def getInt(self, column: str) -> int:  # noqa: N802
        return int(self.rows[self.at].get(column) or 0)

    def getBoolean(self, column: str) -> bool:  # noqa: N802
        return bool(self.rows[self.at].get(column))

    def close(self) -> None:
        self.closed = True


def _jdbc_type(declared: str) -> int:
    """java.sql.Types for a sqlite declared type; none declared is OTHER (anything goes)."""
    d = declared.upper()
    for part, code in (
        ("INT", -5),
        ("CHAR", 12),
        ("TEXT", 12),
        ("REAL", 8),
        ("DOUB", 8),
        ("NUMERIC", 2),
        ("DECIMAL", 2),
        ("BOOL", 16),
        ("TIMESTAMP", 93),
        ("DATETIME", 93),
        ("DATE", 91),
        ("BLOB", 2004),
    ):
        if part in d:
            return code
    return 1111


class FakeMetaData:
    """``DatabaseMetaData`` over sqlite's PRAGMAs: columns, primary key, unique indexes."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def getSearchStringEscape(self) -> str:  # noqa: N802
        return "\\"

    def _info(self, table: str) -> list[tuple[Any, ...]]:
        return self.connection.db.execute(f'PRAGMA table_info("{table}")').fetchall()

    def getColumns(self, catalog: Any, schema: Any, pattern: str, columns: str) -> FakeMetaRows:  # noqa: N802
        table = pattern.replace("\\", "")
        return FakeMetaRows(
            [
                {
                    "TABLE_NAME": table,
                    "COLUMN_NAME": name,
                    "DATA_TYPE": _jdbc_type(declared),
                    "TYPE_NAME": declared or "ANY",
                    "NULLABLE": 0 if notnull else 1,
                    "COLUMN_DEF": default,
                }
                for _, name, declared, notnull, default, _ in self._info(table)
            ]
        )

    def getPrimaryKeys(self, catalog: Any, schema: Any, table: str) -> FakeMetaRows:  # noqa: N802
        return FakeMetaRows(
            [{"TABLE_NAME": table, "COLUMN_NAME": row[1]} for row in self._info(table) if row[5]]
        )

    def getIndexInfo(  # noqa: N802
        self, catalog: Any, schema: Any, table: str, unique: bool, approximate: bool
    ) -> FakeMetaRows:
        rows = []
        for _, index, is_unique, _, _ in self.connection.db.execute(
            f'PRAGMA index_list("{table}")'
        ).fetchall():
            for info in self.connection.db.execute(f'PRAGMA index_info("{index}")').fetchall():
                rows.append(
                    {
                        "TABLE_NAME": table,
                        "INDEX_NAME": index,
                        "COLUMN_NAME": info[2],
                        "NON_UNIQUE": not is_unique,
                    }
                )
        return FakeMetaRows([r for r in rows if not (unique and r["NON_UNIQUE"])])


class FakeConnection:
    """A ``java.sql.Connection``; ``log`` holds every statement and transaction call in order.

    ``fail_at=N`` makes the N-th SQL statement fail with ``fail_state`` (a dropped connection
    by default) before it runs. A read outside a transaction does not open one, like a
    READ COMMITTED read on PostgreSQL: it sees what other connections committed since.
    """

    def __init__(
        self,
        path: Path,
        *,
        fail_at: int | None = None,
        fail_state: str = "08006",
        driver_text: str = DRIVER_TEXT,
    ) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.fail_at, self.fail_state, self.driver_text = fail_at, fail_state, driver_text
        self.log: list[str] = []
        self.statements: list[FakeStatement] = []
        self.executed = 0
        self.autocommit = True
        self.closed = False

    def run(self, sql: str, args: Sequence[Any], *, write: bool) -> sqlite3.Cursor:
        self.executed += 1
        if self.executed == self.fail_at:
            self.log.append(f"FAILED {sql}")
            raise FakePy4JJavaError(JavaSqlException(self.fail_state, self.driver_text))
        if write:
            self._begin()
        self.log.append(sql)
        try:
            return self.db.execute(sql, tuple(args))
        except sqlite3.Error as exc:
            raise integrity_error(exc) from None

    def _begin(self) -> None:
        if not self.autocommit and not self.db.in_transaction:
            self.db.execute("BEGIN")

    def getMetaData(self) -> FakeMetaData:  # noqa: N802
        return FakeMetaData(self)

    def getSchema(self) -> str:  # noqa: N802
        return "main"

    def getCatalog(self) -> str:  # noqa: N802
        return "main"

    def createStatement(self) -> FakeStatement:  # noqa: N802
        self.statements.append(FakeStatement(self))
        return self.statements[-1]

    def prepareStatement(self, sql: str) -> FakeStatement:  # noqa: N802
        self.statements.append(FakeStatement(self, sql))
        return self.statements[-1]

    def setAutoCommit(self, flag: bool) -> None:  # noqa: N802
        self.log.append(f"AUTOCOMMIT {flag}")
        if flag and self.db.in_transaction:
            self.db.execute("COMMIT")  # JDBC commits an open transaction here
        self.autocommit = flag

    def setSavepoint(self, name: str) -> FakeSavepoint:  # noqa: N802
        self._begin()
        self.log.append(f"SAVEPOINT {name}")
        self.db.execute(f'SAVEPOINT "{name}"')
        return FakeSavepoint(name)

    def rollback(self, savepoint: FakeSavepoint | None = None) -> None:
        if savepoint is None:
            self.log.append("ROLLBACK")
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            return
        self.log.append(f"ROLLBACK TO {savepoint.name}")
        self.db.execute(f'ROLLBACK TO "{savepoint.name}"')

    def commit(self) -> None:
        self.log.append("COMMIT")
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.log.append("CLOSE")
        self.closed = True
        self.db.close()  # an open transaction is discarded, as a closed JDBC connection's

    @property
    def open_statements(self) -> list[str | None]:
        return [s.sql for s in self.statements if not s.closed]


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """What a separate connection sees: only committed data."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def run_sql(path: Path, *statements: str) -> None:
    """Run ``statements`` through their own connection and commit them."""
    db = sqlite3.connect(path)
    try:
        for statement in statements:
            db.execute(statement)
        db.commit()
    finally:
        db.close()


def write_table(
    path: Path, table: str, columns: Sequence[str], values: Sequence[Sequence[Any]]
) -> None:
    """Create and fill ``table`` through its own connection, committed (as Spark writes)."""
    db = sqlite3.connect(path)
    try:
        db.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO {table} VALUES ({marks})", [tuple(v) for v in values])
        db.commit()
    finally:
        db.close()


class JavaProperties(dict[str, str]):
    def setProperty(self, key: str, value: str) -> None:  # noqa: N802
        self[key] = value


def _package(path: str, leaf: Any) -> Any:
    """A chain of namespaces, as py4j walks ``jvm.a.b.C``."""
    node = leaf
    for part in reversed(path.split(".")):
        node = SimpleNamespace(**{part: node})
    return node


class FakeJvm:
    """The JVM view ``_session`` uses: Spark's driver registry, Properties, DriverManager."""

    def __init__(
        self, connect: Callable[[], FakeConnection], *, connect_state: str | None = None
    ) -> None:
        self.registered: list[str] = []
        self.connects: list[tuple[str, dict[str, str]]] = []
        self.made: list[FakeConnection] = []
        self._connect, self.connect_state = connect, connect_state
        registry = SimpleNamespace(register=self.registered.append)
        self.org = _package("apache.spark.sql.execution.datasources.jdbc.DriverRegistry", registry)
        manager = SimpleNamespace(getConnection=self.get_connection)
        self.java = SimpleNamespace(
            util=SimpleNamespace(Properties=JavaProperties),
            sql=SimpleNamespace(DriverManager=manager),
        )

    def get_connection(self, url: str, props: JavaProperties) -> FakeConnection:
        self.connects.append((url, dict(props)))
        if self.connect_state is not None:
            text = f'FATAL: password authentication failed for user "{props["user"]}"'
            raise FakePy4JJavaError(
                JavaSqlException(self.connect_state, f"{text} ({props['password']})")
            )
        self.made.append(self._connect())
        return self.made[-1]


def fake_spark(jvm: FakeJvm) -> Any:
    return SimpleNamespace(sparkContext=SimpleNamespace(_jvm=jvm))
