"""JDBC loads without a database: the loader's SQL runs on sqlite behind a fake java.sql API.

What matters here is the transaction: every row lands or none does, rejected rows are isolated
by halving under savepoints and dead-lettered while the rest commit, a failure leaves the target
as it was, and a replayed streaming batch adds nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from etlc.connectors import jdbc
from etlc.connectors.jdbc import (
    MARKER_TABLE,
    POSITION_TABLE,
    DeadLetter,
    Dialect,
    JdbcLoader,
    _session,
    _Sql,
    _sqlstate,
)
from etlc.connectors.mysql import MySqlDialect, MySqlExtractor, MySqlLoader
from etlc.connectors.postgres import PostgresDialect, PostgresExtractor, PostgresLoader
from etlc.profiles import JdbcProfile, MySqlProfile, PostgresProfile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    TerminalError,
    TransientError,
)
from etlc.runtime.graph import DatasetSchema
from etlc.runtime.strategies import BatchMarker, LoadResult, Positions
from tests.unit.connectors.fake_jdbc import (
    DRIVER_TEXT,
    FakeConnection,
    FakeJvm,
    FakePy4JJavaError,
    JavaProperties,
    JavaSqlException,
    ServerErrorMessage,
    fake_spark,
    rows,
    run_sql,
    write_table,
)

PASSWORD = "pg-pass-91"
PG = PostgresDialect()
STAGE = '"stage"'
TARGET_DDL = (
    'CREATE TABLE "orders" ("id" INTEGER PRIMARY KEY, '
    '"qty" INTEGER CONSTRAINT qty_pos CHECK ("qty" > 0))'
)


class Hidden:
    """A password the redactor does not know: a message without it is the code's doing."""

    def reveal(self) -> str:
        return PASSWORD

    def __repr__(self) -> str:
        return "[hidden]"


def profile(kind: type[JdbcProfile] = PostgresProfile) -> JdbcProfile:
    doc = {
        "system": kind.system,
        "host": "127.0.0.1",
        "database": "shop",
        "user": "etl",
        "password": "vault://db/crm#password",
    }
    return open_profile("crm", doc, "dev.json", lambda ref: Hidden(), kind)  # type: ignore[arg-type,return-value]


CONN = profile()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    conn = FakeConnection(path)
    conn.run(TARGET_DDL, (), write=True)
    conn.close()
    return path


def open_sql(
    path: Path, dialect: Dialect = PG, connection: JdbcProfile = CONN, **fake: Any
) -> tuple[FakeConnection, _Sql]:
    """A connection as ``_session`` leaves it: autocommit off, nothing logged yet."""
    conn = FakeConnection(path, **fake)
    conn.setAutoCommit(False)
    conn.log.clear()
    return conn, _Sql(conn, dialect, connection)


def stage(path: Path, qty: dict[int, int], table: str = STAGE) -> None:
    """Staging rows 1..N: row i has id 100+i and the given quantity (positive is valid)."""
    values = [(100 + i, q, i) for i, q in qty.items()]
    write_table(path, table, ['"id"', '"qty"', '"_etlc_row"'], values)


def quantities(n: int, bad: set[int]) -> dict[int, int]:
    return {i: -1 if i in bad else i for i in range(1, n + 1)}


def target(path: Path) -> list[tuple[Any, ...]]:
    return rows(path, 'SELECT "id", "qty" FROM "orders" ORDER BY "id"')


def ranges_tried(log: list[str]) -> list[tuple[int, int, bool]]:
    """The halving, read off the log: each range inserted and whether it was rolled back."""
    tried = []
    for i, entry in enumerate(log):
        found = re.search(r"BETWEEN (\d+) AND (\d+)$", entry)
        if entry.startswith("INSERT") and found:
            rejected = log[i + 1] == "ROLLBACK TO etlc_range"
            tried.append((int(found[1]), int(found[2]), not rejected))
    return tried


APPEND = 'INSERT INTO "orders" ("id", "qty") SELECT "id", "qty" FROM "stage"'


# --- moving staged rows into the target ------------------------------------------------------


def test_an_append_moves_every_staged_row_in_one_statement_and_one_commit(db: Path) -> None:
    stage(db, quantities(40, set()))
    conn, sql = open_sql(db)
    dead = PostgresLoader(CONN, "orders", keys=["id"])._move(sql, STAGE, ["id", "qty"], "append")
    assert dead == []
    assert conn.log == ["SAVEPOINT etlc_all", APPEND, "COMMIT"]
    assert target(db) == [(100 + i, i) for i in range(1, 41)]
    assert conn.open_statements == []


def test_rejected_rows_are_isolated_by_halving_and_the_other_38_commit(db: Path) -> None:
    stage(db, quantities(40, {3, 17}))
    conn, sql = open_sql(db)
    loader = PostgresLoader(CONN, "orders", keys=["id"])
    dead = loader._move(sql, STAGE, ["id", "qty"], "append")
    assert dead == [
        DeadLetter({"id": 103}, "23514", "qty_pos"),
        DeadLetter({"id": 117}, "23514", "qty_pos"),
    ]
    assert target(db) == [(100 + i, i) for i in range(1, 41) if i not in (3, 17)]
    assert conn.log[:4] == [
        "SAVEPOINT etlc_all",
        APPEND,
        "ROLLBACK TO etlc_all",
        'SELECT MIN("_etlc_row"), MAX("_etlc_row") FROM "stage"',
    ]
    # Each failing range splits in halves, the lower half first; single rows are the rejects.
    assert ranges_tried(conn.log) == [
        (1, 40, False),
        (1, 20, False),
        (1, 10, False),
        (1, 5, False),
        (1, 3, False),
        (1, 2, True),
        (3, 3, False),
        (4, 5, True),
        (6, 10, True),
        (11, 20, False),
        (11, 15, True),
        (16, 20, False),
        (16, 18, False),
        (16, 17, False),
        (16, 16, True),
        (17, 17, False),
        (18, 18, True),
        (19, 20, True),
        (21, 40, True),
    ]
    assert conn.log.count("ROLLBACK TO etlc_range") == 11
    assert 'SELECT "id" FROM "stage" WHERE "_etlc_row" = 17' in conn.log
    assert conn.log[-1] == "COMMIT" and conn.log.count("COMMIT") == 1


def test_an_overwrite_deletes_the_old_rows_in_the_same_transaction_as_the_insert(
    db: Path,
) -> None:
    run_sql(db, 'INSERT INTO "orders" VALUES (1, 1), (2, 2)')
    stage(db, quantities(6, {4}))
    conn, sql = open_sql(db)
    dead = PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "overwrite")
    # Without keys, a dead letter names the staging row only: no other value leaves the table.
    assert dead == [DeadLetter({"_etlc_row": 4}, "23514", "qty_pos")]
    assert target(db) == [(101, 1), (102, 2), (103, 3), (105, 5), (106, 6)]
    assert conn.log[:2] == ['DELETE FROM "orders"', "SAVEPOINT etlc_all"]
    assert conn.log[-1] == "COMMIT" and conn.log.count("COMMIT") == 1


def test_a_not_null_reject_names_the_column_and_a_unique_one_its_state(db: Path) -> None:
    run_sql(db, 'INSERT INTO "orders" VALUES (102, 9)')
    write_table(db, "nn", ['"id"', '"qty"', '"_etlc_row"'], [(101, 1, 1), (102, 2, 2)])
    run_sql(db, 'CREATE TABLE "strict" ("id" INTEGER, "qty" INTEGER NOT NULL) STRICT')
    _, sql = open_sql(db)
    loader = PostgresLoader(CONN, "orders", keys=["id"])
    dead = loader._move(sql, '"nn"', ["id", "qty"], "append")
    assert dead == [DeadLetter({"id": 102}, "23505", "")]
    assert target(db) == [(101, 1), (102, 9)]

    write_table(db, "nulls", ['"id"', '"qty"', '"_etlc_row"'], [(1, None, 1), (2, 5, 2)])
    _, sql = open_sql(db)
    strict = PostgresLoader(CONN, "strict", keys=["id"])
    assert strict._move(sql, '"nulls"', ["id", "qty"], "append") == [
        DeadLetter({"id": 1}, "23502", "not null: qty")
    ]
    assert rows(db, 'SELECT * FROM "strict"') == [(2, 5)]


def test_a_mysql_move_runs_its_backquoted_statement_and_dead_letters_the_reject(
    db: Path,
) -> None:
    # The fake's message is sqlite's, in which MySQL's dialect finds no key name.
    write_table(db, "`stage`", ["`id`", "`qty`", "`_etlc_row`"], [(1, 5, 1), (2, -5, 2)])
    conn, sql = open_sql(db, MySqlDialect(), profile(MySqlProfile))
    loader = MySqlLoader(profile(MySqlProfile), "orders", keys=["id"])
    assert loader._move(sql, "`stage`", ["id", "qty"], "append") == [
        DeadLetter({"id": 2}, "23514", "")
    ]
    assert conn.log[1] == "INSERT INTO `orders` (`id`, `qty`) SELECT `id`, `qty` FROM `stage`"
    assert target(db) == [(1, 5)]


def test_an_upsert_updates_existing_keys_while_a_reject_is_isolated(db: Path) -> None:
    # PostgreSQL's upsert runs on sqlite only with a WHERE (the filtered statements of the
    # halving): without one, sqlite reads `ON CONFLICT` as a join condition.
    run_sql(db, 'INSERT INTO "orders" VALUES (101, 50), (102, 50)')
    stage(db, {1: 70, 2: 1, 3: -1, 4: 4})
    conn, sql = open_sql(db)
    loader = PostgresLoader(CONN, "orders", keys=["id"], sequence_by="qty")
    dead = loader._isolate(sql, STAGE, ["id", "qty"], "upsert")
    sql.commit()
    assert dead == [DeadLetter({"id": 103}, "23514", "qty_pos")]
    # 101 took the newer quantity; 102's staged 1 is below the target's 50, so it stays.
    assert target(db) == [(101, 70), (102, 50), (104, 4)]
    assert conn.log[:2] == [
        'SELECT MIN("_etlc_row"), MAX("_etlc_row") FROM "stage"',
        "SAVEPOINT etlc_range",
    ]
    assert conn.log[2] == (
        'INSERT INTO "orders" AS "etlc_target" ("id", "qty") SELECT "id", "qty" FROM "stage" '
        'WHERE "_etlc_row" BETWEEN 1 AND 4 ON CONFLICT ("id") DO UPDATE SET "qty" = '
        'EXCLUDED."qty" WHERE "etlc_target"."qty" IS NULL OR "etlc_target"."qty" <= '
        'EXCLUDED."qty"'
    )


def test_more_rejects_than_the_limit_fail_the_load_and_commit_nothing(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jdbc, "MAX_DEAD_LETTERS", 2)
    run_sql(db, 'INSERT INTO "orders" VALUES (1, 1)')
    stage(db, quantities(12, {2, 5, 9}))
    conn, sql = open_sql(db)
    with pytest.raises(TerminalError) as raised:
        PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "overwrite")
    assert str(raised.value) == (
        "more than 2 rows rejected by orders; not loading a batch that bad"
    )
    assert "COMMIT" not in conn.log
    assert target(db) == [(1, 1)]  # read while the failed transaction is still open
    conn.close()
    assert target(db) == [(1, 1)]


def test_a_dropped_connection_mid_move_is_transient_names_the_connection_and_commits_nothing(
    db: Path,
) -> None:
    run_sql(db, 'INSERT INTO "orders" VALUES (1, 1)')
    stage(db, quantities(8, {6}))
    # Statements: DELETE, the rejected INSERT, the bounds, then the first range: it fails.
    text = f"{DRIVER_TEXT}; url=jdbc:postgresql://127.0.0.1/shop?password={PASSWORD}"
    conn, sql = open_sql(db, fail_at=4, driver_text=text)
    with pytest.raises(TransientError) as raised:
        PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "overwrite")
    assert str(raised.value) == "postgres connection `crm`: unavailable (SQLSTATE 08006)"
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert PASSWORD not in str(raised.value) and DRIVER_TEXT not in str(raised.value)
    assert conn.log[-1].startswith('FAILED INSERT INTO "orders"')
    assert "COMMIT" not in conn.log
    assert target(db) == [(1, 1)]


def test_a_dropped_connection_while_bounding_the_rejects_is_transient_not_raw(
    db: Path,
) -> None:
    stage(db, quantities(8, {6}))
    # Statements: the rejected INSERT, then the MIN/MAX of the rows to halve: it fails.
    conn, sql = open_sql(db, fail_at=2)
    with pytest.raises(TransientError) as raised:
        PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "append")
    assert str(raised.value) == "postgres connection `crm`: unavailable (SQLSTATE 08006)"
    assert conn.log[-1].startswith("FAILED SELECT MIN(")
    assert "COMMIT" not in conn.log and target(db) == []


# --- the statements around a move ---------------------------------------------------------


MARKER = BatchMarker("orders_stream", "e1", 7)


def test_the_first_marked_call_creates_the_marker_table_and_a_marked_batch_is_found(
    db: Path,
) -> None:
    conn, sql = open_sql(db)
    assert sql.marked(PG, MARKER) is False
    assert conn.log == [
        'CREATE TABLE IF NOT EXISTS "etlc_stream_batches" (pipeline VARCHAR(200) NOT NULL, '
        "epoch VARCHAR(64) NOT NULL, batch_id BIGINT NOT NULL, committed_at TIMESTAMP NULL, "
        "PRIMARY KEY (pipeline, epoch, batch_id))",
        "COMMIT",
        'SELECT 1 FROM "etlc_stream_batches" WHERE pipeline = ? AND epoch = ? AND batch_id = ?',
        "COMMIT",
    ]
    sql.mark(PG, MARKER)
    assert rows(db, f"SELECT pipeline FROM {MARKER_TABLE}") == []  # not before the commit
    sql.commit()
    assert rows(db, f"SELECT pipeline, epoch, batch_id FROM {MARKER_TABLE}") == [
        ("orders_stream", "e1", 7)
    ]
    assert sql.marked(PG, MARKER) is True
    assert sql.marked(PG, BatchMarker("orders_stream", "e2", 7)) is False
    assert conn.open_statements == []


def test_a_marker_table_another_load_just_created_is_read_after_a_rollback(db: Path) -> None:
    # PostgreSQL fails a concurrent CREATE TABLE IF NOT EXISTS with a unique violation.
    conn, sql = open_sql(db)
    sql.marked(PG, MARKER)
    sql.mark(PG, MARKER)
    sql.commit()
    conn, sql = open_sql(db, fail_at=1, fail_state="23505")
    assert sql.marked(PG, MARKER) is True
    assert conn.log[0].startswith("FAILED CREATE TABLE") and conn.log[1] == "ROLLBACK"


def test_marking_a_batch_twice_is_a_rejection_not_a_second_commit(db: Path) -> None:
    conn, sql = open_sql(db)
    sql.marked(PG, MARKER)
    sql.mark(PG, MARKER)
    with pytest.raises(jdbc._RejectedError) as raised:
        sql.mark(PG, MARKER)
    assert raised.value.sqlstate == "23505"
    assert conn.open_statements == []


def test_a_target_check_that_loses_the_server_is_transient_not_a_missing_table(
    db: Path,
) -> None:
    conn, sql = open_sql(db, fail_at=1)
    with pytest.raises(TransientError) as raised:
        sql.require_table("orders")
    assert str(raised.value) == "postgres connection `crm`: unavailable (SQLSTATE 08006)"
    assert conn.open_statements == []


def test_a_missing_target_is_terminal_and_names_the_table_and_the_connection(db: Path) -> None:
    conn, sql = open_sql(db)
    sql.require_table("orders")
    assert conn.log == ['SELECT 1 FROM "orders" WHERE 1 = 0']
    with pytest.raises(TerminalError) as raised:
        sql.require_table("invoices")
    assert str(raised.value) == (
        "table invoices does not exist on connection `crm` (or this user cannot read it); "
        "create it before loading (`etlc ddl` prints its CREATE TABLE) or set "
        "`create_table: if_missing`"
    )
    assert raised.value.__cause__ is None
    assert conn.log[-1] == "ROLLBACK" and conn.open_statements == []


def test_a_missing_target_is_created_once_with_the_compilers_statement(db: Path) -> None:
    conn, sql = open_sql(db)
    create = 'CREATE TABLE "invoices" ("id" BIGINT NOT NULL, PRIMARY KEY ("id"))'
    assert sql.require_table("invoices", create) is True
    assert conn.log[-2:] == [create, "COMMIT"]
    assert sql.require_table("invoices", create) is False  # there now: reused
    assert conn.log[-1] == 'SELECT 1 FROM "invoices" WHERE 1 = 0'
    assert conn.open_statements == []


def test_a_target_another_load_created_meanwhile_is_used(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, sql = open_sql(db)
    checks = iter([False, True])  # missing at first, there after the failed CREATE
    monkeypatch.setattr(sql, "_exists", lambda table: next(checks))
    create = 'CREATE TABLE "orders" ("id" BIGINT)'  # sqlite: it exists already
    assert sql.require_table("orders", create) is False
    assert conn.log[-1] == "ROLLBACK"


def test_a_create_that_fails_for_another_reason_is_raised(db: Path) -> None:
    conn, sql = open_sql(db)
    with pytest.raises(
        TerminalError, match="could not create table invoices on connection `crm`: "
    ):
        sql.require_table("invoices", 'CREATE TABLE "invoices" (')
    assert conn.open_statements == []


def test_drop_removes_the_staging_table_outside_the_transaction(db: Path) -> None:
    stage(db, {1: 1})
    conn, sql = open_sql(db)
    sql.execute('DELETE FROM "orders"')
    sql.drop(STAGE)
    assert conn.log[1:] == ["ROLLBACK", "AUTOCOMMIT True", 'DROP TABLE IF EXISTS "stage"']
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'stage'") == []
    assert conn.open_statements == []


def test_drop_swallows_its_own_failure_and_leaves_the_table(db: Path) -> None:
    stage(db, {1: 1})
    conn, sql = open_sql(db, fail_at=1)
    sql.drop(STAGE)  # no exception: a leftover staging table must not fail the load
    assert conn.log == ["ROLLBACK", "AUTOCOMMIT True", 'FAILED DROP TABLE IF EXISTS "stage"']
    assert rows(db, "SELECT name FROM sqlite_master WHERE name = 'stage'") == [("stage",)]
    assert conn.open_statements == []


def test_a_statement_that_fails_otherwise_is_terminal_without_the_driver_text(db: Path) -> None:
    conn, sql = open_sql(db)
    with pytest.raises(TerminalError) as raised:
        sql.execute('UPDATE "nowhere" SET x = 1')
    assert str(raised.value) == "postgres connection `crm`: statement failed (SQLSTATE 42P01)"
    assert sql.query_row('SELECT "id" FROM "orders" WHERE 1 = 0', 1) == [None]
    assert conn.open_statements == []


# --- the whole load, with Spark's staging write replaced ------------------------------------


class Loads:
    """``_session`` and the staging write, pointed at the sqlite file."""

    def __init__(self, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = path
        self.connections: list[FakeConnection] = []
        self.staged: list[str] = []
        self.staged_rows: list[tuple[Any, ...]] = []
        monkeypatch.setattr(jdbc, "_session", self.session)

        def write_staging(loader: JdbcLoader, sql: _Sql, df: DataFrame, name: str) -> str:
            # A function: the loader comes as `self`.
            self.write_staging(loader, df, loader.dialect.quote(name))
            return "insert"

        monkeypatch.setattr(JdbcLoader, "_write_staging", write_staging)

    @contextmanager
    def session(self, spark: Any, dialect: Dialect, connection: JdbcProfile) -> Iterator[_Sql]:
        conn = FakeConnection(self.path)
        self.connections.append(conn)
        conn.setAutoCommit(False)
        try:
            yield _Sql(conn, dialect, connection)
        finally:
            conn.close()

    def write_staging(self, loader: JdbcLoader, df: DataFrame, staging: str) -> None:
        # Collecting is fine in a test; Spark's JDBC writer would send the same rows.
        self.staged.append(staging)
        columns = [loader.dialect.quote(c) for c in df.columns]
        values = [tuple(r) for r in df.collect()]
        self.staged_rows.extend(values)
        write_table(self.path, staging, columns, values)

    def leftovers(self) -> list[tuple[Any, ...]]:
        return rows(self.path, "SELECT name FROM sqlite_master WHERE name LIKE 'etlc_stage_%'")


@pytest.fixture
def loads(db: Path, monkeypatch: pytest.MonkeyPatch) -> Loads:
    run_sql(db, 'INSERT INTO "orders" VALUES (1, 1), (2, 2)')
    return Loads(db, monkeypatch)


def batch(spark: SparkSession, data: list[tuple[int, int]]) -> DataFrame:
    return spark.createDataFrame(data, "id BIGINT, qty INT")


BAD_QTY = {"key": {"id": 11}, "sqlstate": "23514", "constraint": "qty_pos"}


def outcome(result: LoadResult) -> LoadResult:
    """``result`` without how long its phases took and how it staged (checked apart)."""
    return dataclasses.replace(result, phases_ms={}, staged_with=None)


def test_a_load_appends_the_good_rows_and_reports_the_rejected_key(
    spark: SparkSession, loads: Loads
) -> None:
    loader = PostgresLoader(CONN, "orders", keys=["id"])
    result = loader.load(batch(spark, [(10, 5), (11, -1), (12, 7)]), "append")
    assert outcome(result) == LoadResult(dead_lettered=1, details={"dead_letters": [BAD_QTY]})
    assert result.staged_with == "insert" and set(result.phases_ms) == {"staging_ms", "move_ms"}
    assert target(loads.path) == [(1, 1), (2, 2), (10, 5), (12, 7)]
    assert loads.leftovers() == [] and re.fullmatch(r'"etlc_stage_[0-9a-f]{16}"', loads.staged[0])
    (conn,) = loads.connections
    assert conn.log[:2] == ["AUTOCOMMIT False", 'SELECT 1 FROM "orders" WHERE 1 = 0']
    assert conn.closed and conn.log[-1] == "CLOSE"


def test_a_clean_overwrite_load_replaces_the_table_and_reports_nothing(
    spark: SparkSession, loads: Loads
) -> None:
    result = PostgresLoader(CONN, "orders").load(batch(spark, [(10, 5), (12, 7)]), "overwrite")
    assert outcome(result) == LoadResult()
    assert target(loads.path) == [(10, 5), (12, 7)]
    assert loads.leftovers() == []


def test_an_upsert_load_sends_the_dialects_statement_and_fails_clean_on_sqlite(
    spark: SparkSession, loads: Loads
) -> None:
    # sqlite cannot parse PostgreSQL's unfiltered INSERT ... SELECT ... ON CONFLICT (it takes
    # ON for a join condition): the statement sent is asserted, and that a failed move leaves
    # the target as it was and no staging table behind.
    loader = PostgresLoader(CONN, "orders", keys=["id"])
    with pytest.raises(TerminalError) as raised:
        loader.load(batch(spark, [(1, 9), (1, 8), (12, 7)]), "upsert")
    assert str(raised.value) == "postgres connection `crm`: statement failed (SQLSTATE 42601)"
    (conn,) = loads.connections
    (staging,) = loads.staged
    assert (
        'INSERT INTO "orders" AS "etlc_target" ("id", "qty") SELECT "id", "qty" '
        f'FROM {staging} ON CONFLICT ("id") DO UPDATE SET "qty" = EXCLUDED."qty"'
    ) in conn.log
    # One row per key reached staging: of id 1's two rows, the greater quantity won.
    assert sorted(r[:2] for r in loads.staged_rows) == [(1, 9), (12, 7)]
    assert rows(loads.path, 'SELECT "id", "qty" FROM "orders" ORDER BY "id"') == [(1, 1), (2, 2)]
    assert loads.leftovers() == []
    assert "COMMIT" not in conn.log[conn.log.index("SAVEPOINT etlc_all") :]


def test_a_replayed_batch_is_skipped_and_adds_nothing(spark: SparkSession, loads: Loads) -> None:
    loader = PostgresLoader(CONN, "orders", keys=["id"])
    marker = BatchMarker("orders_stream", "e1", 3)
    first = loader.load_batch(batch(spark, [(10, 5), (11, -1)]), "append", marker)
    assert first is not None
    assert outcome(first) == LoadResult(dead_lettered=1, details={"dead_letters": [BAD_QTY]})
    assert loader.load_batch(batch(spark, [(20, 5)]), "append", marker) is None
    assert target(loads.path) == [(1, 1), (2, 2), (10, 5)]
    assert rows(loads.path, f"SELECT batch_id FROM {MARKER_TABLE}") == [(3,)]
    assert len(loads.staged) == 1  # the replay never wrote staging rows
    replay = loads.connections[1]
    assert replay.closed and "DROP TABLE IF EXISTS" not in " ".join(replay.log)


def test_a_batch_another_run_committed_first_is_rolled_back_and_skipped(
    spark: SparkSession, loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two drivers on one checkpoint: both find the batch unmarked, the other commits first."""
    loader = PostgresLoader(CONN, "orders")
    marker = BatchMarker("orders_stream", "e1", 4)
    done = loader.load_batch(batch(spark, [(10, 5)]), "append", marker)
    assert done is not None and outcome(done) == LoadResult()
    monkeypatch.setattr(_Sql, "marked", lambda self, dialect, marker: False)
    assert loader.load_batch(batch(spark, [(20, 5)]), "append", marker) is None
    assert target(loads.path) == [(1, 1), (2, 2), (10, 5)]
    assert rows(loads.path, f"SELECT batch_id FROM {MARKER_TABLE}") == [(4,)]
    assert loads.leftovers() == []
    log = loads.connections[1].log
    marking = next(
        i for i, entry in enumerate(log) if entry.startswith(f'INSERT INTO "{MARKER_TABLE}"')
    )
    assert log[marking + 1] == "ROLLBACK" and "COMMIT" not in log[marking:]


def test_a_staging_table_an_attempt_could_not_drop_goes_with_the_next_one(
    spark: SparkSession, loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = PostgresLoader(CONN, "orders")
    dropping = _Sql.drop
    monkeypatch.setattr(_Sql, "drop", lambda self, staging: False)  # the server went away
    loader.load(batch(spark, [(10, 5)]), "append")
    assert loader.leftovers == [loads.staged[0]] and len(loads.leftovers()) == 1
    monkeypatch.setattr(_Sql, "drop", dropping)
    loader.load(batch(spark, [(11, 6)]), "append")
    assert loader.leftovers == [] and loads.leftovers() == []
    assert target(loads.path) == [(1, 1), (2, 2), (10, 5), (11, 6)]


# --- the session -----------------------------------------------------------------------------


def test_a_session_registers_the_driver_connects_without_autocommit_and_closes(
    db: Path,
) -> None:
    jvm = FakeJvm(lambda: FakeConnection(db))
    with _session(fake_spark(jvm), PG, CONN) as sql:
        (conn,) = jvm.made
        assert sql.jdbc is conn and not conn.autocommit and not conn.closed
    assert conn.closed and conn.log == ["AUTOCOMMIT False", "CLOSE"]
    assert jvm.registered == ["org.postgresql.Driver"]
    assert jvm.connects == [
        (
            "jdbc:postgresql://127.0.0.1:5432/shop?reWriteBatchedInserts=true",
            {"user": "etl", "password": PASSWORD},
        )
    ]


class NoAutocommitOff(FakeConnection):
    def setAutoCommit(self, value: bool) -> None:  # noqa: N802 - java.sql.Connection
        raise FakePy4JJavaError(JavaSqlException("08006", DRIVER_TEXT))


def test_a_session_whose_connection_breaks_at_once_still_closes_it(db: Path) -> None:
    jvm = FakeJvm(lambda: NoAutocommitOff(db))
    with pytest.raises(FakePy4JJavaError), _session(fake_spark(jvm), PG, CONN):
        pytest.fail("the block must not run")
    assert jvm.made[0].closed


def test_a_session_closes_its_connection_when_the_block_raises(db: Path) -> None:
    jvm = FakeJvm(lambda: FakeConnection(db))
    with pytest.raises(RuntimeError, match="boom"), _session(fake_spark(jvm), PG, CONN):
        raise RuntimeError("boom")
    assert jvm.made[0].closed


@pytest.mark.parametrize(
    ("state", "error", "message"),
    [
        (
            "28P01",
            AuthenticationError,
            "postgres connection `crm`: authentication failed (SQLSTATE 28P01); "
            "check the user and the vault entry",
        ),
        ("08001", TransientError, "postgres connection `crm`: unavailable (SQLSTATE 08001)"),
    ],
)
def test_a_failed_connect_is_typed_and_never_quotes_the_password(
    db: Path, state: str, error: type[Exception], message: str
) -> None:
    jvm = FakeJvm(lambda: FakeConnection(db), connect_state=state)
    with pytest.raises(error) as raised, _session(fake_spark(jvm), PG, CONN):
        pass
    assert type(raised.value) is error and str(raised.value) == message
    assert raised.value.__cause__ is None and PASSWORD not in str(raised.value)
    assert jvm.made == []


# --- what the dialects tell of a violation ---------------------------------------------------


def pg_error(detail: ServerErrorMessage | None) -> JavaSqlException:
    return JavaSqlException("23505", "ERROR: Key (id)=(42) already exists", detail=detail)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (pg_error(ServerErrorMessage("orders_pkey", None)), "orders_pkey"),
        (pg_error(ServerErrorMessage(None, "qty")), "not null: qty"),
        (pg_error(ServerErrorMessage(None, None)), ""),
        (pg_error(None), ""),
        (SimpleNamespace(), ""),  # not a PSQLException: no server detail to ask for
        (None, ""),
    ],
)
def test_postgres_names_the_constraint_or_the_not_null_column(error: Any, expected: str) -> None:
    assert PostgresDialect().constraint(error) == expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Duplicate entry 'x' for key 'orders.PRIMARY'", "orders.PRIMARY"),
        ("CONSTRAINT `qty_pos` failed for `shop`.`orders`", "qty_pos"),
        ("Check constraint 'qty_pos' is violated.", "qty_pos"),  # MySQL 8
        ("Column 'qty' cannot be null", ""),
    ],
)
def test_mysql_takes_the_key_name_from_the_message(message: str, expected: str) -> None:
    assert MySqlDialect().constraint(JavaSqlException("23000", message)) == expected


def test_mysql_and_the_default_dialect_name_nothing_without_a_message() -> None:
    assert MySqlDialect().constraint(None) == ""

    class Plain(Dialect):
        def upsert(self, *args: Any, **kwargs: Any) -> str:
            return ""

    assert Plain().constraint(pg_error(ServerErrorMessage("orders_pkey", None))) == ""


class Unreadable:
    """A Java exception whose gateway died: every call fails."""

    def getSQLState(self) -> str:  # noqa: N802
        raise RuntimeError("gateway closed")

    def getCause(self) -> Any:  # noqa: N802
        raise RuntimeError("gateway closed")


def test_the_sqlstate_is_searched_down_the_cause_chain_past_unreadable_links() -> None:
    wrapped = JavaSqlException(None, "wrapper", cause=JavaSqlException("40001", "deadlock"))
    assert _sqlstate(FakePy4JJavaError(wrapped)) == "40001"
    assert _sqlstate(FakePy4JJavaError(Unreadable())) == ""


# --- reading ------------------------------------------------------------------------------


class Reader:
    """Spark's DataFrameReader chain, recorded; ``load`` gives an empty frame or fails."""

    def __init__(self, frame: DataFrame, fail: str | None = None) -> None:
        self.frame, self.fail = frame, fail
        self.format_name = ""
        self.bulk: dict[str, str] = {}
        self.single: list[tuple[str, Any]] = []

    def format(self, name: str) -> Reader:
        self.format_name = name
        return self

    def options(self, **options: str) -> Reader:
        self.bulk.update(options)
        return self

    def option(self, key: str, value: Any) -> Reader:
        self.single.append((key, value))
        return self

    def load(self) -> DataFrame:
        if self.fail:
            raise FakePy4JJavaError(JavaSqlException(self.fail, f"refused; {PASSWORD}"))
        return self.frame


SCHEMA = DatasetSchema({}, "`id` BIGINT, `qty` INT")


def read_with(spark: SparkSession, extractor: Any, fail: str | None = None) -> Reader:
    reader = Reader(spark.createDataFrame([], "qty BIGINT, id INT"), fail)
    df = extractor.extract(SimpleNamespace(read=reader))
    assert [(f.name, f.dataType.simpleString()) for f in df.schema.fields] == [
        ("id", "bigint"),
        ("qty", "int"),
    ]
    return reader


def test_a_table_extract_reads_through_spark_with_the_password_only_in_the_options(
    spark: SparkSession,
) -> None:
    extractor = PostgresExtractor(CONN, SCHEMA, table="public.orders", fetch_size=500)
    reader = read_with(spark, extractor)
    assert reader.format_name == "jdbc"
    assert reader.bulk == {
        "url": "jdbc:postgresql://127.0.0.1:5432/shop?reWriteBatchedInserts=true",
        "driver": "org.postgresql.Driver",
        "user": "etl",
        "password": PASSWORD,
    }
    assert reader.single == [("fetchsize", "500"), ("dbtable", '"public"."orders"')]
    assert extractor.describe() == {
        "system": "postgres",
        "connection": "crm",
        "table": "public.orders",
    }


def test_a_partitioned_query_extract_wraps_the_query_and_splits_on_the_column(
    spark: SparkSession,
) -> None:
    mysql = profile(MySqlProfile)
    extractor = MySqlExtractor(
        mysql,
        SCHEMA,
        query="SELECT id, qty FROM orders WHERE qty > 0",
        partition={"column": "id", "lower": 1, "upper": 1000, "partitions": 4},
    )
    reader = read_with(spark, extractor)
    assert reader.bulk["driver"] == "org.mariadb.jdbc.Driver"
    assert reader.single == [
        ("fetchsize", "10000"),
        ("dbtable", "(SELECT id, qty FROM orders WHERE qty > 0) etlc_query"),
        ("partitionColumn", "`id`"),
        ("lowerBound", 1),
        ("upperBound", 1000),
        ("numPartitions", "4"),
    ]
    assert all(PASSWORD not in str(value) for _, value in reader.single)
    assert extractor.describe()["table"] == "(query)"


def test_an_unreachable_source_is_transient_and_an_extract_needs_one_table_or_query(
    spark: SparkSession,
) -> None:
    with pytest.raises(TransientError) as raised:
        read_with(spark, PostgresExtractor(CONN, SCHEMA, table="orders"), fail="08001")
    assert str(raised.value) == "connection `crm`: unavailable (SQLSTATE 08001)"
    with pytest.raises(ConfigurationError, match="exactly one of `table` or `query`"):
        PostgresExtractor(CONN, SCHEMA, table="orders", query="SELECT 1")
    with pytest.raises(ConfigurationError, match="exactly one of `table` or `query`"):
        PostgresExtractor(CONN, SCHEMA)


# --- Spark's staging write ---------------------------------------------------------------


class Writer:
    """A DataFrame's ``.write`` chain (and ``coalesce``), recorded; ``save`` may fail."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, Any]] = []
        self.write = self

    def coalesce(self, n: int) -> Writer:
        self.calls.append(("coalesce", n))
        return self

    def format(self, name: str) -> Writer:
        self.calls.append(("format", name))
        return self

    def options(self, **options: str) -> Writer:
        self.calls.append(("options", options))
        return self

    def option(self, key: str, value: str) -> Writer:
        self.calls.append((key, value))
        return self

    def mode(self, mode: str) -> Writer:
        self.calls.append(("mode", mode))
        return self

    def save(self) -> None:
        if self.fail:
            raise FakePy4JJavaError(JavaSqlException(self.fail, f"no; {PASSWORD}"))
        self.calls.append(("save", None))


def test_the_staging_write_is_batched_and_one_transaction_per_task() -> None:
    writer = Writer()
    loader = PostgresLoader(CONN, "orders", batch_size=250)
    loader._jdbc_write(writer, '"etlc_stage_1"', "append")  # type: ignore[arg-type]
    assert writer.calls == [
        ("format", "jdbc"),
        (
            "options",
            {
                "url": "jdbc:postgresql://127.0.0.1:5432/shop?reWriteBatchedInserts=true",
                "driver": "org.postgresql.Driver",
                "user": "etl",
                "password": PASSWORD,
            },
        ),
        ("dbtable", '"etlc_stage_1"'),
        ("batchsize", "250"),
        ("isolationLevel", "READ_COMMITTED"),
        ("mode", "append"),
        ("save", None),
    ]


def test_a_staging_write_refused_for_the_password_is_an_authentication_error() -> None:
    writer = Writer(fail="28P01")
    with pytest.raises(AuthenticationError) as raised:
        PostgresLoader(CONN, "orders")._jdbc_write(writer, '"s"', "append")  # type: ignore[arg-type]
    assert str(raised.value) == "connection `crm`: authentication failed (SQLSTATE 28P01)"
    assert writer.calls[0] == ("format", "jdbc")


def test_a_value_its_column_cannot_hold_is_terminal_and_quotes_no_value() -> None:
    with pytest.raises(TerminalError) as raised:
        PostgresLoader(CONN, "orders")._jdbc_write(Writer(fail="22003"), '"s"', "append")  # type: ignore[arg-type]
    assert str(raised.value).startswith(
        "connection `crm`: a value its column cannot hold (SQLSTATE 22003)"
    )
    assert PASSWORD not in str(raised.value) and raised.value.__cause__ is None


class Staged(Writer):
    """A DataFrame as ``_write_staging`` sees it: its schema, its JVM side (etlc's BulkCopy,
    recorded) and its ``.write`` chain."""

    def __init__(self, schema: StructType, copyable: bool = True) -> None:
        super().__init__()
        self.schema, self.columns, self._jdf = schema, schema.fieldNames(), "jdf"
        self.copies: list[tuple[Any, ...]] = []
        bulk = SimpleNamespace(copyable=lambda jdf, system: copyable, copy=self.copy)
        jvm = SimpleNamespace(
            etlc=SimpleNamespace(jvm=SimpleNamespace(load=SimpleNamespace(BulkCopy=bulk))),
            java=SimpleNamespace(util=SimpleNamespace(Properties=JavaProperties)),
        )
        self.sparkSession = fake_spark(jvm)

    def copy(self, *args: Any) -> None:
        self.copies.append(args)


WIDE = StructType(
    [
        StructField("id", LongType()),
        StructField("at", TimestampType()),
        StructField("ok", BooleanType()),
        StructField("note", StringType()),
        StructField("amount", DecimalType(12, 2)),
    ]
)


def test_a_staging_table_is_made_with_etlcs_types_and_filled_by_the_bulk_path(db: Path) -> None:
    staged = Staged(WIDE)
    sql = _Sql(FakeConnection(db), PostgresDialect(), CONN)
    assert PostgresLoader(CONN, "orders")._write_staging(sql, staged, "etlc_stage_1") == "copy"  # type: ignore[arg-type]
    assert sql.jdbc.log[0] == (
        'CREATE TABLE "etlc_stage_1" (\n  "id" BIGINT,\n  "at" TIMESTAMP(6),\n  "ok" BOOLEAN,'
        '\n  "note" TEXT,\n  "amount" NUMERIC(12,2)\n)'
    )
    [(jdf, system, url, props, table, columns)] = staged.copies
    assert (jdf, system, table) == ("jdf", "postgres", '"etlc_stage_1"')
    assert columns == ['"id"', '"at"', '"ok"', '"note"', '"amount"']
    assert url == "jdbc:postgresql://127.0.0.1:5432/shop?reWriteBatchedInserts=true"
    assert dict(props) == {"user": "etl", "password": PASSWORD}
    assert staged.calls == []  # no INSERTs


def test_a_mysql_staging_keeps_microseconds_and_goes_by_inserts_when_the_server_cannot_say(
    db: Path,
) -> None:
    # sqlite has no @@GLOBAL.local_infile: a server that cannot say gets INSERTs.
    staged = Staged(WIDE)
    my = profile(MySqlProfile)
    sql = _Sql(FakeConnection(db), MySqlDialect(), my)
    sent: list[str] = []
    sql.execute = sent.append  # type: ignore[method-assign]  # sqlite knows no CHARACTER SET
    loader = MySqlLoader(my, "orders", parallelism=3)
    assert loader._write_staging(sql, staged, "etlc_stage_2") == "insert"  # type: ignore[arg-type]
    [create] = sent
    assert "`at` DATETIME(6)" in create and "`note` LONGTEXT CHARACTER SET utf8mb4" in create
    assert staged.copies == []
    assert ("coalesce", 3) in staged.calls and ("mode", "append") in staged.calls


def test_a_column_etlc_has_no_sql_for_leaves_the_staging_table_to_sparks_writer(db: Path) -> None:
    staged = Staged(StructType([StructField("tags", ArrayType(StringType()))]), copyable=False)
    sql = _Sql(FakeConnection(db), PostgresDialect(), CONN)
    assert PostgresLoader(CONN, "orders")._write_staging(sql, staged, "s") == "insert"  # type: ignore[arg-type]
    assert not any(line.startswith("CREATE") for line in sql.jdbc.log)
    assert ("mode", "overwrite") in staged.calls and staged.copies == []


def test_the_bulk_path_asks_mysql_whether_local_infile_is_on(db: Path) -> None:
    sql = _Sql(FakeConnection(db), MySqlDialect(), CONN)
    answers = iter([["1"], ["0"], ["ON"]])
    sql.query_row = lambda statement, width: next(answers)  # type: ignore[method-assign]
    assert [sql.bulk_allowed() for _ in range(3)] == [True, False, True]
    assert _Sql(FakeConnection(db), PostgresDialect(), CONN).bulk_allowed()
    assert "allowLocalInfile=true" in MySqlDialect().url(CONN, bulk=True)
    assert "allowLocalInfile=false" in MySqlDialect().url(CONN)


# --- the target checked before any row is written -------------------------------------------


def test_a_target_that_cannot_take_the_load_fails_it_before_staging_naming_every_difference(
    spark: SparkSession, loads: Loads
) -> None:
    run_sql(
        loads.path,
        'CREATE TABLE "slim" ("id" BIGINT, "qty" TEXT, "note" TEXT NOT NULL)',
    )
    loader = PostgresLoader(CONN, "slim", keys=["id"])
    df = spark.createDataFrame([(1, 2, 3)], "id BIGINT, qty INT, extra INT")
    with pytest.raises(TerminalError) as raised:
        loader.load(df, "upsert")
    assert str(raised.value) == (
        "table slim on connection `crm` cannot take this load: column `qty` is TEXT, the load "
        "writes int; no column `extra` (int); column `note` is NOT NULL without a default, and "
        "the load does not write it; no primary key or unique index on exactly (id), which the "
        "upsert needs (`etlc ddl` prints the table the load needs)"
    )
    assert loads.staged == []  # nothing was written anywhere


def test_an_upsert_finds_its_key_as_a_primary_key_or_a_unique_index(
    spark: SparkSession, loads: Loads, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_sql(loads.path, 'CREATE TABLE "keyed" ("id" BIGINT, "qty" INT)')
    run_sql(loads.path, 'CREATE UNIQUE INDEX "keyed_id" ON "keyed" ("id")')
    seen: list[str] = []
    monkeypatch.setattr(
        JdbcLoader, "_move", lambda self, sql, staging, names, mode, **_: seen.append(mode) or []
    )
    PostgresLoader(CONN, "keyed", keys=["id"]).load(batch(spark, [(1, 2)]), "upsert")
    assert seen == ["upsert"]
    with pytest.raises(TerminalError, match=r"unique index on exactly \(qty\)"):
        PostgresLoader(CONN, "keyed", keys=["qty"]).load(batch(spark, [(1, 2)]), "upsert")


def test_mysql_compares_column_names_without_case() -> None:
    from pyspark.sql.types import LongType, StructField, StructType

    from etlc.connectors.target_shape import TargetColumn, TargetShape, mismatches

    shape = TargetShape((TargetColumn("ID", -5, "BIGINT", False, False),), (frozenset({"ID"}),))
    schema = StructType([StructField("id", LongType())])
    assert mismatches(shape, schema, ["id"], "upsert", case_insensitive=True) == []
    assert mismatches(shape, schema, ["id"], "upsert", case_insensitive=False) == [
        "no column `id` (bigint)",
        "column `ID` is NOT NULL without a default, and the load does not write it",
        "no primary key or unique index on exactly (id), which the upsert needs",
    ]


def test_add_columns_adds_what_the_target_lacks_then_loads(
    spark: SparkSession, loads: Loads
) -> None:
    run_sql(loads.path, 'CREATE TABLE "grown" ("id" BIGINT, "qty" INT)')
    add = {"extra": 'ALTER TABLE "grown" ADD COLUMN "extra" INTEGER'}
    loader = PostgresLoader(CONN, "grown", add_columns=add)
    df = spark.createDataFrame([(1, 2, 3)], "id BIGINT, qty INT, extra INT")
    result = loader.load(df, "append")
    assert result.added_columns == ("extra",)
    assert rows(loads.path, 'SELECT "id", "qty", "extra" FROM "grown"') == [(1, 2, 3)]
    (conn, *_) = loads.connections
    assert conn.log[conn.log.index(add["extra"]) + 1] == "COMMIT"  # before anything is staged
    again = loader.load(df, "append")
    assert again.added_columns == ()  # there now


# --- incremental positions, committed with the rows -----------------------------------------


def positions(at: dict[str, int], load: str = "load_1_live") -> Positions:
    return Positions("orders_incremental", load, "run7", lambda: at)


def test_positions_commit_in_the_moves_transaction_and_replace_the_loads_earlier_ones(
    db: Path,
) -> None:
    conn, sql = open_sql(db)
    assert sql.positions("orders_incremental", "load_1_live") == {}  # no table yet
    sql.require_positions()
    stage(db, quantities(3, set()))
    loader = PostgresLoader(CONN, "orders")
    loader._move(sql, STAGE, ["id", "qty"], "append", positions=positions({"orders": 41}))
    assert conn.log[-1] == "COMMIT"
    assert target(db) == [(101, 1), (102, 2), (103, 3)]
    assert sql.positions("orders_incremental", "load_1_live") == {"orders": 41}
    sql.save_positions(positions({"orders": 42, "customers": 7}))
    sql.save_positions(positions({"orders": 9}, load="load_2_other"))
    sql.rollback()  # not committed: the earlier positions stand
    assert sql.positions("orders_incremental", "load_1_live") == {"orders": 41}
    sql.save_positions(positions({"orders": 42, "customers": 7}))
    sql.commit()
    assert sql.positions("orders_incremental", "load_1_live") == {"orders": 42, "customers": 7}
    assert sql.positions("orders_incremental", "load_2_other") == {}
    assert rows(db, f"SELECT run_id FROM {POSITION_TABLE}") == [("run7",), ("run7",)]
    assert conn.open_statements == []


def test_a_move_that_fails_commits_no_position(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jdbc, "MAX_DEAD_LETTERS", 1)
    _, sql = open_sql(db)
    sql.require_positions()
    sql.commit()
    stage(db, quantities(12, {2, 5}))
    with pytest.raises(TerminalError, match="more than 1 rows rejected"):
        PostgresLoader(CONN, "orders")._move(
            sql, STAGE, ["id", "qty"], "append", positions=positions({"orders": 60})
        )
    sql.rollback()
    assert sql.positions("orders_incremental", "load_1_live") == {}


def test_a_load_that_lost_a_race_with_another_run_commits_nothing(db: Path) -> None:
    conn, sql = open_sql(db)
    sql.require_positions()
    sql.save_positions(positions({"orders": 41}))
    sql.commit()
    stage(db, quantities(2, set()))
    # This run began at 40; another run of the pipeline has committed 41 since.
    late = Positions(
        "orders_incremental", "load_1_live", "run8", lambda: {"orders": 45}, {"orders": 40}
    )
    with pytest.raises(TerminalError, match="another run of orders_incremental committed load"):
        PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "append", positions=late)
    assert conn.log[-1].startswith('UPDATE "etlc_incremental_state" SET position_json = ?')
    sql.rollback()
    assert target(db) == [] and sql.positions("orders_incremental", "load_1_live") == {"orders": 41}
    on_time = dataclasses.replace(late, expected={"orders": 41})
    PostgresLoader(CONN, "orders")._move(sql, STAGE, ["id", "qty"], "append", positions=on_time)
    assert target(db) == [(101, 1), (102, 2)]
    assert sql.positions("orders_incremental", "load_1_live") == {"orders": 45}


def test_a_first_run_that_finds_another_first_run_committed_commits_nothing(db: Path) -> None:
    _, first = open_sql(db)
    first.require_positions()
    first.save_positions(dataclasses.replace(positions({"orders": 5}), expected={}))
    first.commit()
    # The second began when no position was there, and expects none at its commit.
    _, second = open_sql(db)
    with pytest.raises(TerminalError, match="runs of one pipeline must not overlap"):
        second.save_positions(dataclasses.replace(positions({"orders": 6}), expected={}))
    second.rollback()
    assert second.positions("orders_incremental", "load_1_live") == {"orders": 5}
