"""JDBC connectors without a server: SQL per dialect, quoting, URLs, error mapping."""

from __future__ import annotations

from typing import Any

import pytest

from etlc.connectors.jdbc import (
    _classify_sql,
    _RejectedError,
    _sqlstate,
    subquery,
    translate_errors,
)
from etlc.connectors.mysql import MySqlDialect, MySqlLoader
from etlc.connectors.postgres import PostgresDialect, PostgresLoader
from etlc.profiles import MySqlProfile, PostgresProfile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    TerminalError,
    TransientError,
)


class Hidden:
    def reveal(self) -> str:
        return "s3cret"

    def __repr__(self) -> str:
        return "[hidden]"


CONN = open_profile(
    "crm",
    {
        "system": "postgres",
        "host": "127.0.0.1",
        "port": 5432,
        "database": "shop db",
        "user": "etl",
        "password": "vault://db/crm#password",
        "properties": {"sslmode": "disable"},
    },
    "dev.json",
    lambda ref: Hidden(),
    PostgresProfile,
)


def test_urls_carry_no_credentials_and_enable_batching() -> None:
    pg = PostgresDialect().url(CONN)
    assert (
        pg
        == "jdbc:postgresql://127.0.0.1:5432/shop%20db?reWriteBatchedInserts=true&sslmode=disable"
    )
    my = MySqlDialect().url(CONN)
    assert my.startswith("jdbc:mysql://127.0.0.1:5432/shop%20db?")
    assert "permitMysqlScheme=true" in my and "rewriteBatchedStatements=true" in my
    assert "s3cret" not in pg + my and "etl" not in pg.split("?")[0].split("/")[-1]
    assert "s3cret" not in repr(CONN)


@pytest.mark.parametrize("name", ["orders; DROP TABLE x", 'a"b', "a.b.c", "1abc", "", "a`b"])
def test_bad_identifiers_are_refused_never_spliced(name: str) -> None:
    with pytest.raises(ConfigurationError):
        PostgresDialect().quote(name)
    with pytest.raises(ConfigurationError):
        MySqlLoader(CONN, name)


def test_quoting_per_dialect() -> None:
    assert PostgresDialect().quote("public.orders") == '"public"."orders"'
    assert MySqlDialect().quote("orders") == "`orders`"


def test_upsert_statements() -> None:
    pg = PostgresDialect().upsert("t", '"stg"', ["id", "v"], ["id"], " WHERE x")
    assert pg == (
        'INSERT INTO "t" AS "etlc_target" ("id", "v") SELECT "id", "v" FROM "stg" WHERE x '
        'ON CONFLICT ("id") DO UPDATE SET "v" = EXCLUDED."v"'
    )
    sequenced = PostgresDialect().upsert(
        "t", '"stg"', ["id", "v", "at"], ["id"], "", sequence_by="at"
    )
    assert sequenced.endswith(
        'DO UPDATE SET "v" = EXCLUDED."v", "at" = EXCLUDED."at" '
        'WHERE "etlc_target"."at" IS NULL OR "etlc_target"."at" <= EXCLUDED."at"'
    )
    my_sequenced = MySqlDialect().upsert(
        "t", "`stg`", ["id", "at", "v"], ["id"], "", sequence_by="at"
    )
    newer = "(VALUES(`at`) >= `t`.`at` OR `t`.`at` IS NULL)"
    assert my_sequenced.endswith(
        f"ON DUPLICATE KEY UPDATE `t`.`v` = IF({newer}, VALUES(`v`), `t`.`v`), "
        f"`t`.`at` = IF({newer}, VALUES(`at`), `t`.`at`)"
    )
    assert PostgresDialect().upsert("t", "s", ["id"], ["id"], "").endswith("DO NOTHING")
    my = MySqlDialect().upsert("t", "`stg`", ["id", "v"], ["id"], "")
    assert (
        my
        == "INSERT INTO `t` (`id`, `v`) SELECT `id`, `v` FROM `stg` ON DUPLICATE KEY UPDATE `t`.`v` = VALUES(`v`)"
    )


class FakeJava:
    def __init__(
        self,
        state: str | None,
        message: str = "",
        cause: Any = None,
        cls: str = "java.sql.SQLException",
    ) -> None:
        self.state, self.message, self.cause, self.cls = state, message, cause, cls

    def getSQLState(self) -> str | None:  # noqa: N802 - mirrors JDBC
        return self.state

    def getCause(self) -> Any:  # noqa: N802
        return self.cause

    def getMessage(self) -> str:  # noqa: N802
        return self.message

    def getClass(self) -> Any:  # noqa: N802
        name = self.cls

        class C:
            def getName(self) -> str:  # noqa: N802
                return name

        return C()


class CapturedError(Exception):
    def __init__(self, origin: Any) -> None:
        super().__init__("password=s3cret in driver text")
        self._origin = origin


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("28P01", AuthenticationError),
        ("28000", AuthenticationError),
        ("08001", TransientError),
        ("40001", TransientError),
        ("57P01", TransientError),
        ("42P01", TerminalError),
    ],
)
def test_sqlstate_decides_the_error_class(state: str, expected: type) -> None:
    err = _classify_sql(
        CapturedError(FakeJava(None, cause=FakeJava(state))), PostgresDialect(), CONN
    )
    assert type(err) is expected
    assert "s3cret" not in str(err) and "crm" in str(err)


def test_constraint_violations_are_rejections_with_the_constraint_name() -> None:
    java = FakeJava("23000", "Duplicate entry 'secret-value' for key 'PRIMARY'")
    err = _classify_sql(CapturedError(java), MySqlDialect(), CONN)
    assert isinstance(err, _RejectedError)
    assert (err.sqlstate, err.constraint) == ("23000", "PRIMARY")
    check = FakeJava("23000", "CONSTRAINT `qty_pos` failed for `db`.`t`")
    assert MySqlDialect().constraint(check) == "qty_pos"


def test_a_refused_connection_is_transient_even_without_sqlstate() -> None:
    java = FakeJava(None, cls="java.net.ConnectException")
    assert isinstance(_classify_sql(CapturedError(java), PostgresDialect(), CONN), TransientError)
    assert _sqlstate(ValueError()) == ""


def test_translate_errors_maps_auth_and_outages_and_passes_the_rest() -> None:
    def fail(state: str) -> Any:
        def call() -> None:
            raise CapturedError(FakeJava(state))

        return call

    with pytest.raises(AuthenticationError):
        translate_errors(fail("28P01"), CONN)
    with pytest.raises(TransientError):
        translate_errors(fail("08006"), CONN)
    with pytest.raises(CapturedError):
        translate_errors(fail("42P01"), CONN)
    assert translate_errors(lambda: 7, CONN) == 7


def test_loader_refuses_bad_modes_before_touching_spark() -> None:
    loader = PostgresLoader(CONN, "t")
    with pytest.raises(ConfigurationError, match="upsert needs"):
        loader.load(None, "upsert")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        loader.load(None, "merge")  # type: ignore[arg-type]
    assert loader.describe() == {"system": "postgres", "connection": "crm", "table": "t"}


# --- the query of an extract ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "system"),
    [
        ("SELECT 'it''s; -- text', e'a\\'b' FROM t", "postgres"),
        ("SELECT 'a\\'b; /* text */' FROM `c)d`", "mysql"),
        ('SELECT "a;b" FROM (SELECT 1 AS x) AS s', "postgres"),
    ],
)
def test_a_checked_query_is_wrapped_as_a_subquery(query: str, system: str) -> None:
    assert subquery(query, system) == f"({query}) etlc_query"


@pytest.mark.parametrize(
    ("query", "system"),
    [
        ("SELECT * FROM t) etlc_query; DROP TABLE t; --", "postgres"),
        ("SELECT 1; DROP TABLE t", "mysql"),
        ("SELECT 1 -- hidden", "postgres"),
        ("SELECT /*! SLEEP(5) */ 1", "mysql"),
        ("SELECT 1 # hidden", "mysql"),
        ("SELECT (1", "postgres"),
        ("SELECT 'open", "postgres"),
        ("SELECT 'a\\' ; DROP TABLE t; '", "postgres"),  # no backslash escapes here
        ("   ", "postgres"),
    ],
)
def test_a_query_that_could_leave_its_parentheses_is_refused_at_run_time(
    query: str, system: str
) -> None:
    with pytest.raises(ConfigurationError):
        subquery(query, system)


@pytest.mark.parametrize(
    ("host", "port", "what"),
    [
        ("127.0.0.1/x?socketFactory=org.example.Evil&socketFactoryArg=x", 5432, "host"),
        ("db.internal:6543", 5432, "host"),
        ("db\n.internal", 5432, "host"),
        ("db.internal", 99999, "port"),
        ("db.internal", "5432/other", "port"),
    ],
)
def test_a_host_or_port_that_would_rewrite_the_url_is_refused(
    host: str, port: object, what: str
) -> None:
    # Refused when the profile is made, so no URL is ever built from it.
    profile = {
        **{"system": "postgres", "host": host, "port": port, "database": "d", "user": "u"},
        "password": "vault://db/crm#password",
    }
    with pytest.raises(ConfigurationError, match=f"`{what}` is not a"):
        open_profile("crm", profile, "dev.json", lambda ref: Hidden(), PostgresProfile)


@pytest.mark.parametrize("host", ["db-1.example.com", "10.0.0.7", "[::1]", "localhost"])
def test_host_names_and_addresses_are_accepted(host: str) -> None:
    profile = {"system": "mysql", "host": host, "database": "d", "user": "u"}
    profile["password"] = "vault://db/crm#password"
    conn = open_profile("crm", profile, "dev.json", lambda ref: Hidden(), MySqlProfile)
    assert MySqlDialect().url(conn).startswith(f"jdbc:mysql://{host}:3306/d?")


def test_a_profile_of_the_other_database_is_refused() -> None:
    profile = {"system": "mysql", "host": "h", "database": "d", "user": "u"}
    profile["password"] = "vault://db/crm#password"
    mysql = open_profile("crm", profile, "dev.json", lambda ref: Hidden(), MySqlProfile)
    with pytest.raises(ConfigurationError, match="a `mysql` profile, not `postgres`"):
        PostgresLoader(mysql, "orders")
    with pytest.raises(ConfigurationError, match="a `postgres` profile, not `mysql`"):
        MySqlLoader(CONN, "orders")
