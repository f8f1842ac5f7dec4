"""A database extract's `query`: exactly one read-only SELECT in the source's SQL (E215)."""

from __future__ import annotations

import pytest

from etlc.dsl.diagnostics import Span
from etlc.dsl.sql_query import check_query

FILE, LINE, COL = "p.json", 7, 16


def span(text: str) -> Span:
    return Span(FILE, LINE, COL, LINE, COL + len(text) + 2)


POSTGRES_HOSTILE = [
    "SELECT * FROM t) etlc_query; DROP TABLE t; --",
    "SELECT * FROM t; DROP TABLE t",
    "SELECT 1;",
    "SELECT 1 -- trailing",
    "SELECT 1 /* hidden */",
    "SELECT /* /* nested */ */ 1",
    "WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
    "WITH x AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM x",
    "WITH x AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM x",
    "SELECT * INTO stolen FROM t",
    "SELECT * FROM t FOR UPDATE",
    "SELECT * FROM t FOR NO KEY UPDATE",
    "SELECT * FROM t FOR SHARE",
    "SELECT * FROM t FOR KEY SHARE SKIP LOCKED",
    "SELECT pg_sleep(10)",
    'SELECT "pg_sleep"(10)',
    "SELECT pg_catalog.pg_sleep(10)",
    "SELECT * FROM dblink('h', 'DELETE FROM t') AS r(a int)",
    "SELECT dblink_exec('h', 'DROP TABLE t')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_export(1, '/tmp/x')",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT set_config('role', 'admin', false)",
    "SELECT nextval('s')",
    "SELECT setval('s', 1)",
    "SELECT pg_terminate_backend(1)",
    "SELECT pg_advisory_lock(1)",
    "SELECT query_to_xml('DELETE FROM t', true, true, '')",
    "SELECT my_side_effecting_udf(a) FROM t",
    "SELECT * FROM t WHERE a IN (SELECT pg_sleep(1))",
    "SELECT (SELECT nextval('s'))",
    "EXPLAIN ANALYZE DELETE FROM t",
    "COPY t TO '/tmp/x'",
    "DELETE FROM t",
    "DROP TABLE t",
    "TRUNCATE t",
    "VALUES (1)",
    "SET ROLE admin",
    "CALL p()",
    "DO $$BEGIN DELETE FROM t; END$$",
    "SELECT 'a' || $$x$$ FROM t; SELECT 2",
    "",
    "SELECT * FROM t WHERE a = (" * 50 + "1" + ")" * 50,
]
MYSQL_HOSTILE = [
    "SELECT * FROM t) etlc_query; DROP TABLE t; -- ",
    "SELECT * FROM t; DROP TABLE t",
    "SELECT * FROM t INTO OUTFILE '/tmp/x'",
    "SELECT * INTO OUTFILE '/tmp/x' FROM t",
    "SELECT a INTO @x FROM t",
    "SELECT /*! SLEEP(5) */ 1",
    "SELECT /*!50000 SLEEP(5) */ 1",
    "SELECT 1 # comment",
    "SELECT 1 -- comment",
    "SELECT 1 /* comment */",
    "SELECT * FROM t LOCK IN SHARE MODE",
    "SELECT * FROM t FOR UPDATE",
    "SELECT * FROM t FOR SHARE NOWAIT",
    "SELECT @a := 1",
    "SELECT sleep(1)",
    "SELECT SLEEP(1) FROM t",
    "SELECT `sleep`(1)",
    "SELECT benchmark(1000000, md5('x'))",
    "SELECT load_file('/etc/passwd')",
    "SELECT get_lock('x', 10)",
    "SELECT release_lock('x')",
    "SELECT master_pos_wait('x', 1)",
    "SELECT sys_exec('id')",
    "SELECT last_insert_id(5)",
    "SELECT (SELECT sleep(1))",
    "DELETE FROM t",
    "INSERT INTO t SELECT * FROM u",
    "REPLACE INTO t VALUES (1)",
    "UPDATE t SET a = 1",
    "HANDLER t OPEN",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE t",
    "SET @a = 1",
    "DO SLEEP(1)",
    "CALL p()",
    "WITH x AS (SELECT 1) DELETE FROM t",
    "SELECT * FROM t PROCEDURE ANALYSE()",
]


@pytest.mark.parametrize("query", POSTGRES_HOSTILE)
def test_hostile_postgres_queries_are_refused(query: str) -> None:
    checked, diags = check_query(query, "postgres", span(query))
    assert checked is None
    assert [d.code for d in diags] == ["E215"]
    assert diags[0].span.line == LINE and diags[0].hint


@pytest.mark.parametrize("query", MYSQL_HOSTILE)
def test_hostile_mysql_queries_are_refused(query: str) -> None:
    checked, diags = check_query(query, "mysql", span(query))
    assert checked is None
    assert [d.code for d in diags] == ["E215"]


def test_errors_point_into_the_query() -> None:
    query = "SELECT * FROM t; DROP TABLE t"
    _, diags = check_query(query, "postgres", span(query))
    assert diags[0].span.col == COL + 1 + query.index(";")
    query = "SELECT a, pg_sleep(1) FROM t"
    _, diags = check_query(query, "postgres", span(query))
    assert diags[0].span.col == COL + 1 + query.index("pg_sleep")


POSTGRES_OK = {
    "SELECT * FROM public.orders": "SELECT * FROM public.orders",
    "SELECT a::text, b::numeric(10,2) FROM t JOIN u USING (id) WHERE c > now() - interval '1 day'": (
        "SELECT CAST(a AS TEXT), CAST(b AS DECIMAL(10, 2)) FROM t JOIN u USING (id) "
        "WHERE c > CURRENT_TIMESTAMP - INTERVAL '1 DAY'"
    ),
    "SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) AS rn FROM t": (
        "SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t"
    ),
    "WITH recent AS (SELECT * FROM orders WHERE amount > 0) "
    "SELECT customer_id, sum(amount) FROM recent GROUP BY customer_id": (
        "WITH recent AS (SELECT * FROM orders WHERE amount > 0) "
        "SELECT customer_id, SUM(amount) FROM recent GROUP BY customer_id"
    ),
    "SELECT o.id, c.country FROM orders o LEFT JOIN customers c ON c.id = o.customer_id": (
        "SELECT o.id, c.country FROM orders AS o LEFT JOIN customers AS c ON c.id = o.customer_id"
    ),
    "SELECT * FROM t UNION ALL SELECT * FROM u": "SELECT * FROM t UNION ALL SELECT * FROM u",
    "SELECT date_trunc('day', ts), coalesce(a, 0), to_char(ts, 'YYYY') FROM t": (
        "SELECT DATE_TRUNC('DAY', ts), COALESCE(a, 0), TO_CHAR(ts, 'YYYY') FROM t"
    ),
    'SELECT "Order Id" FROM "My Table" LIMIT 10 OFFSET 5': (
        'SELECT "Order Id" FROM "My Table" LIMIT 10 OFFSET 5'
    ),
    "SELECT 'it''s; -- not a comment' AS s": "SELECT 'it''s; -- not a comment' AS s",
    "SELECT split_part(email, '@', 2), extract(year FROM ts) FROM t": (
        "SELECT SPLIT_PART(email, '@', 2), EXTRACT(YEAR FROM ts) FROM t"
    ),
}
MYSQL_OK = {
    "SELECT `a b`, CAST(x AS DECIMAL(10,2)) FROM `db`.`t` LIMIT 10": (
        "SELECT `a b`, CAST(x AS DECIMAL(10, 2)) FROM `db`.`t` LIMIT 10"
    ),
    "SELECT DATE_FORMAT(d, '%Y'), IFNULL(a, 0) FROM t GROUP BY d": (
        "SELECT DATE_FORMAT(d, '%Y'), COALESCE(a, 0) FROM t GROUP BY d"
    ),
    "WITH r AS (SELECT * FROM orders) SELECT customer_id, SUM(amount) AS revenue FROM r "
    "GROUP BY customer_id": (
        "WITH r AS (SELECT * FROM orders) SELECT customer_id, SUM(amount) AS revenue FROM r "
        "GROUP BY customer_id"
    ),
    "SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t": (
        "SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t"
    ),
    "SELECT 'it\\'s # not a comment' FROM t": "SELECT 'it''s # not a comment' FROM t",
    "SELECT IF(a > 1, 'x', 'y'), DATEDIFF(a, b) FROM t WHERE a BETWEEN 1 AND 10": (
        "SELECT IF(a > 1, 'x', 'y'), DATEDIFF(a, b) FROM t WHERE a BETWEEN 1 AND 10"
    ),
}


@pytest.mark.parametrize(
    ("system", "query", "rendered"),
    [("postgres", q, r) for q, r in POSTGRES_OK.items()]
    + [("mysql", q, r) for q, r in MYSQL_OK.items()],
)
def test_queries_users_write_are_accepted_and_rendered_canonically(
    system: str, query: str, rendered: str
) -> None:
    checked, diags = check_query(query, system, span(query))
    assert diags == [] and checked is not None
    assert checked.sql == rendered
    again, _ = check_query(checked.sql, system, span(checked.sql))
    assert again is not None and again.sql == checked.sql


@pytest.mark.parametrize("query", ["SELECT " + "+".join(["a"] * 60_000), "SELECT " + "(" * 5000])
def test_huge_queries_are_refused_before_sqlglot_parses_them(
    monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    # Quick by construction, not by a clock: the length and the nesting are bounded on the
    # text and its tokens, and sqlglot's recursive parser never sees a query over them.
    from sqlglot.parser import Parser

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a query over the bounds reached the parser")

    monkeypatch.setattr(Parser, "parse", never)
    checked, diags = check_query(query, "postgres", span(query))
    assert checked is None and [d.code for d in diags] == ["E215"]


@pytest.mark.parametrize(
    ("query", "system", "why"),
    [
        ("SELECT * FROM t WHERE a = :x", "postgres", "parameter"),
        ("SELECT * FROM t WHERE a = $1", "postgres", "parameter"),
        ("SELECT * FROM t WHERE a = ?", "mysql", "parameter"),
        # sqlglot would drop the argument it does not model: not the query that was written.
        ("SELECT gen_random_uuid('1') AS u FROM t", "postgres", "round trip"),
    ],
)
def test_queries_that_cannot_run_as_written_are_refused(query: str, system: str, why: str) -> None:
    checked, diags = check_query(query, system, span(query))
    assert checked is None and [d.code for d in diags] == ["E215"]
    assert why in diags[0].message
