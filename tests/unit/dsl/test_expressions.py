"""The expression checker: canonical SQL, types, diagnostic codes and their exact columns."""

from __future__ import annotations

from typing import Any

import pytest
from sqlglot.errors import ParseError, SqlglotError

from etlc.dsl import expressions
from etlc.dsl.diagnostics import Diagnostic, Span
from etlc.dsl.expressions import FUNCTIONS, CheckedExpr, Context, Scope, check_expression
from etlc.dsl.types import DataType

ROW, AGG, PRED = Context.ROW, Context.AGGREGATE, Context.PREDICATE
FILE, LINE, COL = "pipeline.json", 7, 20


def _t(
    kind: str,
    nullable: bool = False,
    precision: int = 0,
    scale: int = 0,
    symbols: tuple[str, ...] = (),
) -> DataType:
    return DataType(kind, nullable, precision, scale, symbols)


SCOPE = Scope(
    {
        "amount": _t("double", True),
        "qty": _t("int"),
        "id": _t("long"),
        "rate": _t("float"),
        "price": _t("decimal", precision=10, scale=2),
        "name": _t("string", True),
        "region": _t("string"),
        "status": _t("string", symbols=("NEW", "PAID", "SHIPPED")),
        "flag": _t("boolean", True),
        "d": _t("date", True),
        "ts": _t("timestamp"),
        "order": _t("int"),
        "date": _t("date"),
        "Amount": _t("int"),
    }
)
JOIN = Scope(
    {},
    {
        "left": {"id": _t("long"), "amount": _t("double"), "lonly": _t("int")},
        "right": {"id": _t("long"), "amount": _t("double", True), "ronly": _t("string")},
    },
)


def _span(text: str) -> Span:
    """The span of the JSON string token holding ``text``: the text plus two quotes."""
    return Span(FILE, LINE, COL, LINE, COL + len(text) + 2)


def check(
    text: str, context: Context = ROW, scope: Scope = SCOPE, keys: frozenset[str] = frozenset()
) -> tuple[CheckedExpr | None, list[Diagnostic]]:
    return check_expression(text, scope, _span(text), context, keys)


def found(diags: list[Diagnostic]) -> list[tuple[str, int]]:
    """(code, offset into the expression text) of each diagnostic."""
    return [(d.code, d.span.col - COL - 1) for d in diags]


# --- valid expressions: canonical SQL and type -------------------------------------------------

# The SQL strings are the exact rendering. The types were cross-checked once against Spark 4.2.0's
# analyzer: identical with spark.sql.ansi.enabled=false; with ANSI on, Spark proves a few more
# results non-null (to_date with a format, unix_timestamp, some decimal arithmetic).
VALID = [
    # arithmetic and numeric typing
    ("amount + qty", ROW, "amount + qty", "double?"),
    ("qty * 2 - id", ROW, "qty * 2 - id", "long"),
    ("qty / 2", ROW, "qty / 2", "double?"),
    ("qty % 3", ROW, "qty % 3", "int?"),
    ("rate * rate", ROW, "rate * rate", "float"),
    ("rate / 2", ROW, "rate / 2", "double?"),
    ("price * 2", ROW, "price * 2", "decimal(12,2)?"),  # the literal 2 counts as decimal(1,0)
    ("price + 1", ROW, "price + 1", "decimal(11,2)?"),
    ("price % 3", ROW, "price % 3", "decimal(3,2)?"),
    ("price - qty", ROW, "price - qty", "decimal(13,2)?"),
    ("price / qty", ROW, "price / qty", "decimal(21,13)?"),
    ("price * price * price * price", ROW, "price * price * price * price", "decimal(38,6)?"),
    ("-amount", ROW, "-amount", "double?"),
    ("(((qty)))", ROW, "(((qty)))", "int"),
    ("NULL + 1", ROW, "NULL + 1", "int?"),
    ("NULL / 2", ROW, "NULL / 2", "double?"),
    ("NULL + NULL", ROW, "NULL + NULL", "double?"),
    ("price * NULL", ROW, "price * NULL", "decimal(21,4)?"),
    # literals
    ("1.5", ROW, "1.5", "decimal(2,1)"),
    ("0.05", ROW, "0.05", "decimal(2,2)"),
    ("3000000000", ROW, "3000000000", "long"),
    ("99999999999999999999", ROW, "99999999999999999999", "decimal(20,0)"),
    ("1e3", ROW, "1e3", "double"),
    ("100L", ROW, "CAST(100 AS BIGINT)", "long"),
    ("1.5BD", ROW, "CAST('1.5' AS DECIMAL(2, 1))", "decimal(2,1)?"),
    ("1.5D * 2", ROW, "CAST(1.5 AS DOUBLE) * 2", "double"),
    ("NULL", ROW, "NULL", "null?"),
    ("'it''s'", ROW, "CONCAT('it', 's')", "string"),
    # sqlglot writes typed literals as casts from strings, which Spark marks nullable.
    ("DATE '2024-02-29'", ROW, "CAST('2024-02-29' AS DATE)", "date?"),
    (
        "TIMESTAMP '2024-01-01 10:00:00'",
        ROW,
        "CAST('2024-01-01 10:00:00' AS TIMESTAMP)",
        "timestamp?",
    ),
    # identifiers: quoted only when needed, case kept
    ("`amount` + Amount", ROW, "amount + Amount", "double?"),
    ("`order` + 1", ROW, "`order` + 1", "int"),
    ("`date` > DATE '2024-01-01'", PRED, "`date` > CAST('2024-01-01' AS DATE)", "boolean?"),
    ("amount > 1 -- a comment", PRED, "amount > 1", "boolean?"),
    # math functions
    ("abs(qty)", ROW, "ABS(qty)", "int"),
    ("round(amount, 2)", ROW, "ROUND(amount, 2)", "double?"),
    ("round(price, 1)", ROW, "ROUND(price, 1)", "decimal(10,1)?"),
    ("round(price)", ROW, "ROUND(price)", "decimal(9,0)?"),
    ("round(price, 3)", ROW, "ROUND(price, 3)", "decimal(11,2)?"),
    ("round(price, -2)", ROW, "ROUND(price, -2)", "decimal(9,0)?"),
    ("floor(price)", ROW, "FLOOR(price)", "decimal(9,0)?"),
    ("ceil(amount)", ROW, "CEIL(amount)", "long?"),
    (
        "sqrt(qty) + pow(qty, 2) + power(2, 3) + exp(1) + ln(2)",
        ROW,
        "SQRT(qty) + POWER(qty, 2) + POWER(2, 3) + EXP(1) + LN(2)",
        "double?",
    ),
    ("log10(amount)", ROW, "LOG10(amount)", "double?"),
    ("pow(qty, 2)", ROW, "POWER(qty, 2)", "double"),
    ("greatest(qty, id)", ROW, "GREATEST(qty, id)", "long"),
    ("least(amount, 0)", ROW, "LEAST(amount, 0)", "double"),  # NULLs are skipped
    ("least(amount, amount)", ROW, "LEAST(amount, amount)", "double?"),
    # conditionals
    ("coalesce(name, 'n/a')", ROW, "COALESCE(name, 'n/a')", "string"),
    ("coalesce(name, name)", ROW, "COALESCE(name, name)", "string?"),
    ("nullif(qty, 0)", ROW, "NULLIF(qty, 0)", "int?"),
    ("if(flag, 'y', 'n')", ROW, "IF(flag, 'y', 'n')", "string"),
    ("isnull(name) OR isnotnull(amount)", PRED, "ISNULL(name) OR ISNOTNULL(amount)", "boolean"),
    (
        "CASE WHEN qty > 10 THEN 'bulk' WHEN qty > 1 THEN 'multi' END",
        ROW,
        "CASE WHEN qty > 10 THEN 'bulk' WHEN qty > 1 THEN 'multi' END",
        "string?",
    ),
    (
        "CASE status WHEN 'PAID' THEN 1 ELSE 0 END",
        ROW,
        "CASE status WHEN 'PAID' THEN 1 ELSE 0 END",
        "int",
    ),
    # strings
    ("lower(name)", ROW, "LOWER(name)", "string?"),
    ("upper(region)", ROW, "UPPER(region)", "string"),
    ("trim(name)", ROW, "TRIM(name)", "string?"),
    ("ltrim(region)", ROW, "LTRIM(region)", "string"),
    ("rtrim(name)", ROW, "RTRIM(name)", "string?"),
    ("trim(TRAILING 'x' FROM region)", ROW, "TRIM(TRAILING 'x' FROM region)", "string"),
    ("trim(BOTH 'x' FROM region)", ROW, "TRIM(BOTH 'x' FROM region)", "string"),
    ("length(name)", ROW, "LENGTH(name)", "int?"),
    ("substring(region, 1, 3)", ROW, "SUBSTRING(region, 1, 3)", "string"),
    ("substr(region, 2)", ROW, "SUBSTRING(region, 2)", "string"),
    ("concat(region, '-', qty)", ROW, "CONCAT(region, '-', qty)", "string"),
    ("concat_ws('-', name, qty)", ROW, "CONCAT_WS('-', name, qty)", "string"),
    ("replace(region, 'a', 'b')", ROW, "REPLACE(region, 'a', 'b')", "string"),
    ("regexp_replace(region, '[0-9]', '')", ROW, "REGEXP_REPLACE(region, '[0-9]', '')", "string"),
    # sqlglot drops group index 1: it is Spark's default.
    ("regexp_extract(region, 'a(b)', 1)", ROW, "REGEXP_EXTRACT(region, 'a(b)')", "string"),
    ("regexp_extract(region, 'a(b)', 0)", ROW, "REGEXP_EXTRACT(region, 'a(b)', 0)", "string"),
    ("lpad(qty, 5, '0')", ROW, "LPAD(qty, 5, '0')", "string"),
    ("rpad(region, 10)", ROW, "RPAD(region, 10)", "string"),
    ("md5(region)", ROW, "MD5(region)", "string"),
    ("sha2(name, 256)", ROW, "SHA2(name, 256)", "string?"),
    ("hash(name, qty)", ROW, "HASH(name, qty)", "int"),
    # casts
    ("cast(amount AS decimal(12, 2))", ROW, "CAST(amount AS DECIMAL(12, 2))", "decimal(12,2)?"),
    ("cast(qty AS decimal)", ROW, "CAST(qty AS DECIMAL)", "decimal(10,0)"),
    ("cast(qty AS decimal(5))", ROW, "CAST(qty AS DECIMAL(5))", "decimal(5,0)?"),  # may not fit
    ("cast(price AS decimal(12, 4))", ROW, "CAST(price AS DECIMAL(12, 4))", "decimal(12,4)"),
    ("cast(price AS decimal(8, 2))", ROW, "CAST(price AS DECIMAL(8, 2))", "decimal(8,2)?"),
    ("cast(amount AS int)", ROW, "CAST(amount AS INT)", "int?"),
    ("cast(rate AS int)", ROW, "CAST(rate AS INT)", "int?"),
    ("cast(id AS int)", ROW, "CAST(id AS INT)", "int"),
    ("cast(qty AS timestamp)", ROW, "CAST(qty AS TIMESTAMP)", "timestamp"),
    ("cast(flag AS string)", ROW, "CAST(flag AS STRING)", "string?"),
    ("cast(qty AS string)", ROW, "CAST(qty AS STRING)", "string"),
    ("cast(region AS bigint)", ROW, "CAST(region AS BIGINT)", "long?"),
    ("cast('12' AS int)", ROW, "CAST('12' AS INT)", "int?"),
    ("try_cast(region AS int)", ROW, "TRY_CAST(region AS INT)", "int?"),
    ("cast(ts AS date)", ROW, "CAST(ts AS DATE)", "date"),
    # dates and times
    ("to_date(region, 'dd/MM/yyyy')", ROW, "TO_DATE(region, 'dd/MM/yyyy')", "date?"),
    ("to_date(ts)", ROW, "TO_DATE(ts)", "date"),
    ("to_timestamp(region)", ROW, "TO_TIMESTAMP(region)", "timestamp?"),
    ("date_format(ts, 'yyyy-MM-dd')", ROW, "DATE_FORMAT(ts, 'yyyy-MM-dd')", "string"),
    (
        "year(d) + month(ts) + day(d) + dayofmonth(d)",
        ROW,
        "YEAR(d) + MONTH(ts) + DAY(d) + DAYOFMONTH(d)",
        "int?",
    ),
    (
        "hour(ts) * 60 + minute(ts) + second(ts)",
        ROW,
        "HOUR(ts) * 60 + MINUTE(ts) + SECOND(ts)",
        "int",
    ),
    ("date_add(d, qty)", ROW, "DATE_ADD(d, qty)", "date?"),
    ("date_sub(d, 1)", ROW, "DATE_SUB(d, 1)", "date?"),
    ("datediff(current_date(), d)", ROW, "DATEDIFF(CURRENT_DATE, d)", "int?"),
    ("current_date", ROW, "CURRENT_DATE", "date"),
    ("current_timestamp()", ROW, "CURRENT_TIMESTAMP()", "timestamp"),
    ("unix_timestamp()", ROW, "UNIX_TIMESTAMP()", "long?"),
    ("unix_timestamp(ts)", ROW, "UNIX_TIMESTAMP(ts)", "long?"),
    ("unix_timestamp(region, 'yyyy-MM-dd')", ROW, "UNIX_TIMESTAMP(region, 'yyyy-MM-dd')", "long?"),
    ("from_unixtime(id, 'yyyy')", ROW, "FROM_UNIXTIME(id, 'yyyy')", "string?"),
    # a date string is parsed: unparseable text is NULL
    ("year(region)", ROW, "YEAR(region)", "int?"),
    ("date_format(region, 'd/M/y')", ROW, "DATE_FORMAT(region, 'd/M/y')", "string?"),
    # predicates
    ("amount > 10 AND status = 'PAID'", PRED, "amount > 10 AND status = 'PAID'", "boolean?"),
    ("name IS NOT NULL", PRED, "NOT name IS NULL", "boolean"),
    ("name LIKE 'a%' OR name RLIKE '^b'", PRED, "name LIKE 'a%' OR name RLIKE '^b'", "boolean?"),
    ("amount BETWEEN 1 AND 10", PRED, "amount BETWEEN 1 AND 10", "boolean?"),
    ("status IN ('NEW', 'PAID')", PRED, "status IN ('NEW', 'PAID')", "boolean"),
    ("status NOT IN ('NEW')", PRED, "NOT status IN ('NEW')", "boolean"),
    ("status < 'X'", PRED, "status < 'X'", "boolean"),
    ("d >= '2024-01-01'", PRED, "d >= '2024-01-01'", "boolean?"),
    ("ts < '2024-01-01T10:00:00Z'", PRED, "ts < '2024-01-01T10:00:00Z'", "boolean?"),
    (
        "ts BETWEEN '2024-01-01' AND '2025-01-01'",
        PRED,
        "ts BETWEEN '2024-01-01' AND '2025-01-01'",
        "boolean?",
    ),
    ("d IN ('2024-01-01')", PRED, "d IN ('2024-01-01')", "boolean?"),
    ("amount <=> NULL", PRED, "amount IS NOT DISTINCT FROM NULL", "boolean"),
    ("amount != 0", PRED, "amount <> 0", "boolean?"),
    ("NOT flag", PRED, "NOT flag", "boolean?"),
    ("flag IS TRUE", PRED, "flag IS TRUE", "boolean"),
    ("amount > 1 AND NULL", PRED, "amount > 1 AND NULL", "boolean?"),
    # aggregates
    ("sum(amount)", AGG, "SUM(amount)", "double?"),
    ("sum(qty)", AGG, "SUM(qty)", "long?"),
    ("sum(price)", AGG, "SUM(price)", "decimal(20,2)?"),
    ("avg(price)", AGG, "AVG(price)", "decimal(14,6)?"),
    ("avg(qty)", AGG, "AVG(qty)", "double?"),
    ("count(*)", AGG, "COUNT(*)", "long"),
    ("count(DISTINCT name)", AGG, "COUNT(DISTINCT name)", "long"),
    ("sum(DISTINCT qty)", AGG, "SUM(DISTINCT qty)", "long?"),
    ("approx_count_distinct(name)", AGG, "APPROX_COUNT_DISTINCT(name)", "long"),
    ("min(status)", AGG, "MIN(status)", "enum?"),
    ("max(ts)", AGG, "MAX(ts)", "timestamp?"),
    ("first(name, true)", AGG, "FIRST(name) IGNORE NULLS", "string?"),
    ("last(region)", AGG, "LAST(region)", "string?"),
    ("sum(amount) / count(*)", AGG, "SUM(amount) / COUNT(*)", "double?"),
]


@pytest.mark.parametrize(("text", "context", "sql", "type_"), VALID)
def test_valid_expression(text: str, context: Context, sql: str, type_: str) -> None:
    checked, diags = check(text, context)
    assert diags == []
    assert checked is not None
    assert (checked.sql, checked.type.describe()) == (sql, type_)
    assert checked.is_aggregate == (context is AGG)


@pytest.mark.parametrize(("text", "context", "sql", "type_"), VALID)
def test_canonical_sql_checks_to_itself(text: str, context: Context, sql: str, type_: str) -> None:
    checked, _ = check(sql, context)
    assert checked is not None
    assert (checked.sql, checked.type.describe()) == (sql, type_)


def test_enum_type_keeps_symbols() -> None:
    checked, _ = check("max(status)", AGG)
    assert checked is not None
    assert checked.type.symbols == ("NEW", "PAID", "SHIPPED")


def test_referenced_columns() -> None:
    checked, _ = check("coalesce(amount, qty) + length(name) + `order`")
    assert checked is not None
    assert checked.columns == {"amount", "qty", "name", "order"}
    assert not checked.is_aggregate


def test_every_allowed_function_has_a_valid_case() -> None:
    written = " ".join(text.lower() for text, *_ in VALID)
    assert [name for name in FUNCTIONS if f"{name}(" not in written] == []


# --- errors: code and column ------------------------------------------------------------------

ERRORS = [
    # E301 syntax
    ("amount +", ROW, [("E301", 7)]),
    ("amount = = 1", ROW, [("E301", 9)]),
    ("upper(region region)", ROW, [("E301", 13)]),
    ("amount AS a", ROW, [("E301", 7)]),
    ("a = 1; b", ROW, [("E301", 5)]),
    ("amount > 1;", PRED, [("E301", 10)]),
    ("select 1", ROW, [("E301", 0)]),
    ("(SELECT 1)", ROW, [("E301", 0)]),
    ("amount IN (SELECT 1)", PRED, [("E301", 10)]),
    ("amount IN ()", PRED, [("E301", 0)]),
    ("*", ROW, [("E301", 0)]),
    ("t.*", ROW, [("E301", 0)]),
    ("sum(*)", AGG, [("E301", 4)]),
    ("amount > 'abc", PRED, [("E301", 9)]),
    ("name = 'a\\'b", PRED, [("E301", 7)]),
    ("region = 'x\\'", PRED, [("E301", 9)]),
    ("region = 'a' AND name = 'b", PRED, [("E301", 24)]),
    ("(" * 60 + "1" + ")" * 60, ROW, [("E308", 24)]),  # refused at the 25th parenthesis
    # E302 unknown column
    ("amout > 1", PRED, [("E302", 0)]),
    ("amount = Amout", PRED, [("E302", 9)]),
    ("a.b.c", ROW, [("E302", 0)]),
    ("x.amount", ROW, [("E302", 0)]),
    # E303 function not allowed
    ("foo(amount)", ROW, [("E303", 0)]),
    ("flag XOR flag", PRED, [("E301", 5)]),  # not Spark syntax
    ("amount + split(region, ',')", ROW, [("E303", 9)]),
    ("collect_list(name)", AGG, [("E303", 0)]),
    ("transform(x, y -> y + 1)", ROW, [("E303", 0), ("E302", 10)]),
    # E304 type mismatch
    ("amount > 'abc'", PRED, [("E304", 9)]),
    ("'abc' < amount", PRED, [("E304", 0)]),
    ("amount > d", PRED, [("E304", 0)]),
    ("sum(region)", AGG, [("E304", 4)]),
    ("amount + region", ROW, [("E304", 9)]),
    ("1 + true", ROW, [("E304", 4)]),
    ("-region", ROW, [("E304", 1)]),
    ("NOT region", PRED, [("E304", 4)]),
    ("region", PRED, [("E304", 0)]),
    ("amount + 1", PRED, [("E304", 0)]),
    ("region IS TRUE", PRED, [("E304", 0)]),
    ("qty LIKE 'a'", PRED, [("E304", 0)]),
    ("upper(region, 1)", ROW, [("E304", 0)]),
    ("upper()", ROW, [("E304", 0)]),
    ("round()", ROW, [("E304", 0)]),
    ("count()", AGG, [("E304", 0)]),
    ("current_date(1)", ROW, [("E304", 0)]),
    ("if(flag, 1)", ROW, [("E304", 0)]),
    ("status = 'PAYED'", PRED, [("E304", 9)]),
    ("'X' <> status", PRED, [("E304", 0)]),
    ("status IN ('NEW', 'DONE')", PRED, [("E304", 18)]),
    ("status = ('PAYED')", PRED, [("E304", 9)]),
    ("CASE status WHEN 'PAYD' THEN 1 END", ROW, [("E304", 17)]),
    ("cast(d AS int)", ROW, [("E304", 0)]),
    ("cast('abc' AS int)", ROW, [("E304", 5)]),
    ("DATE '2024-02-30'", ROW, [("E304", 5)]),
    ("d > '2024-13-01'", PRED, [("E304", 4)]),
    ("ts > '2024-01-01 25:00:00'", PRED, [("E304", 5)]),
    ("d > 'tomorrow'", PRED, [("E304", 4)]),
    ("ts > '2024-01-01 10:00 later'", PRED, [("E304", 5)]),
    ("CASE WHEN flag THEN 'a' END + 1", ROW, [("E304", 0)]),
    ("CASE WHEN flag THEN amout END", ROW, [("E302", 20)]),
    ("coalesce(amount, 'x')", ROW, [("E304", 17)]),
    ("least(qty, region)", ROW, [("E304", 11)]),
    ("nullif(qty, 'x')", ROW, [("E304", 12)]),
    ("CASE WHEN region THEN 1 ELSE 'x' END", ROW, [("E304", 10), ("E304", 29)]),
    ("date_sub(d, region)", ROW, [("E304", 12)]),
    ("rtrim(region, 'x')", ROW, [("E304", 0)]),  # Spark: trims the characters of `region`
    ("amount BETWEEN 1 AND 'x'", PRED, [("E304", 21)]),
    # E305 aggregate misuse
    ("sum(amount)", ROW, [("E305", 0)]),
    ("count(*) > 1", PRED, [("E305", 0)]),
    ("sum(sum(amount))", AGG, [("E305", 4)]),
    ("sum(amount) + qty", AGG, [("E305", 14)]),
    ("upper(region)", AGG, [("E305", 6)]),
    # E306 unsupported construct
    ("sum(amount) OVER (PARTITION BY region)", AGG, [("E306", 0)]),
    ("x -> x + 1", ROW, [("E306", 0)]),
    ("region || 'x'", ROW, [("E306", 0)]),
    ("amount DIV 2", ROW, [("E306", 0)]),
    ("amount > > 1", ROW, [("E306", 0)]),  # sqlglot reads `> >` as `>>`
    ("region ILIKE 'a%'", PRED, [("E306", 0)]),
    ("cast(qty AS smallint)", ROW, [("E306", 0)]),
    ("cast(qty AS array<int>)", ROW, [("E306", 0)]),
    ("(1, 2) = (1, 2)", PRED, [("E306", 0), ("E306", 9)]),
    ("region[0]", ROW, [("E306", 0)]),
    ("upper(region) RESPECT NULLS", ROW, [("E306", 0)]),
    ("x'AB'", ROW, [("E306", 0)]),
    # several problems in one expression
    ("amout + qtty", ROW, [("E302", 0), ("E302", 8)]),
    ("foo(amout) + bar", ROW, [("E303", 0), ("E302", 4), ("E302", 13)]),
    ("amout + region + upper(qty)", ROW, [("E302", 0), ("E304", 8), ("E304", 23)]),
    ("sum(region) + qty > 'x'", AGG, [("E304", 4), ("E305", 14)]),
]


@pytest.mark.parametrize(("text", "context", "expected"), ERRORS)
def test_error(text: str, context: Context, expected: list[tuple[str, int]]) -> None:
    checked, diags = check(text, context)
    assert checked is None
    assert found(diags) == expected


def test_error_spans_cover_the_offending_text() -> None:
    _, diags = check("amount + split(region, ',') + upper(name, 1)")
    assert [(d.code, d.span.col, d.span.end_col) for d in diags] == [
        ("E303", COL + 1 + 9, COL + 1 + 14),  # the name `split`
        ("E304", COL + 1 + 30, COL + 1 + 35),  # the name `upper`
    ]
    _, diags = check("amount > 'abc'", PRED)
    assert (diags[0].span.line, diags[0].span.col, diags[0].span.end_col) == (LINE, 30, 35)


def test_compound_spans_include_keywords_and_parentheses() -> None:
    text = "CASE WHEN flag THEN CASE WHEN flag THEN 'a' END END + NOT (flag)"
    _, diags = check(text)
    assert [(d.code, d.span.col - COL - 1, d.span.end_col - COL - 1) for d in diags] == [
        ("E304", 0, text.index(" + ")),  # the whole outer CASE ... END
        ("E304", text.index("NOT"), len(text)),  # NOT and its parentheses
    ]


def test_hints_name_the_fix() -> None:
    hint = {
        text: check(text, ctx)[1][0].hint
        for text, ctx in [
            ("amout > 1", PRED),
            ("status = 'PAYED'", PRED),
            ("status = 'LOST'", PRED),
            ("uper(region)", ROW),
            ("split(region, ',')", ROW),
            ("sum(amount) + qty", AGG),
        ]
    }
    assert "`amount`" in hint["amout > 1"]
    assert "`PAID`" in hint["status = 'PAYED'"]
    assert all(f"`{s}`" in hint["status = 'LOST'"] for s in ("NEW", "PAID", "SHIPPED"))
    assert "`upper`" in hint["uper(region)"]
    assert "array" in hint["split(region, ',')"]
    assert "qty" in hint["sum(amount) + qty"]


def test_messages_name_both_types() -> None:
    _, diags = check("amount > 'abc'", PRED)
    assert "double?" in diags[0].message
    assert "string" in diags[0].message


# --- join scopes ------------------------------------------------------------------------------

JOIN_VALID = [
    ("left.id = right.id", "`left`.`id` = `right`.`id`", "boolean", {"left.id", "right.id"}),
    ("`left`.amount > right.amount", "`left`.`amount` > `right`.`amount`", "boolean?", None),
    ("lonly > 1 AND ronly = 'x'", "`left`.`lonly` > 1 AND `right`.`ronly` = 'x'", "boolean", None),
    ("coalesce(left.amount, right.amount) > 0", None, "boolean", None),
]


@pytest.mark.parametrize(("text", "sql", "type_", "columns"), JOIN_VALID)
def test_join_condition(text: str, sql: str | None, type_: str, columns: set[str] | None) -> None:
    checked, diags = check(text, PRED, JOIN)
    assert diags == []
    assert checked is not None
    assert checked.type.describe() == type_
    if sql is not None:
        assert checked.sql == sql
        assert check(sql, PRED, JOIN)[0] == checked  # the rendered form checks the same
    if columns is not None:
        assert checked.columns == columns


JOIN_ERRORS = [
    ("amount > 1", [("E302", 0)]),  # ambiguous: on both sides
    ("lft.id = right.id", [("E302", 0)]),
    ("left.idd = right.id", [("E302", 5)]),
    ("left.id = right.id AND nope = 1", [("E302", 23)]),
]


@pytest.mark.parametrize(("text", "expected"), JOIN_ERRORS)
def test_join_errors(text: str, expected: list[tuple[str, int]]) -> None:
    checked, diags = check(text, PRED, JOIN)
    assert checked is None
    assert found(diags) == expected


def test_join_hints() -> None:
    ambiguous = check("amount > 1", PRED, JOIN)[1][0].hint
    assert "`left.amount`" in ambiguous and "`right.amount`" in ambiguous
    assert "`left`" in check("lft.id = 1", PRED, JOIN)[1][0].hint
    assert "`id`" in check("left.idd = 1", PRED, JOIN)[1][0].hint


# --- aggregate context ------------------------------------------------------------------------

AGG_KEYED = [
    ("region", "string", False),
    ("upper(region)", "string", False),
    ("sum(amount) + qty", "double?", True),
    ("max(amount) - min(amount)", "double?", True),
    ("count(*) + 1", "long", True),
    ("1", "int", False),
]


@pytest.mark.parametrize(("text", "type_", "is_aggregate"), AGG_KEYED)
def test_aggregate_with_group_keys(text: str, type_: str, is_aggregate: bool) -> None:
    checked, diags = check(text, AGG, keys=frozenset({"region", "qty"}))
    assert diags == []
    assert checked is not None
    assert (checked.type.describe(), checked.is_aggregate) == (type_, is_aggregate)


def test_rejected_function_does_not_also_blame_its_columns() -> None:
    # collect_list's columns are not reported as ungrouped: whether it aggregates is unknown.
    assert found(check("collect_list(name)", AGG)[1]) == [("E303", 0)]


# --- positions when offsets cannot be mapped --------------------------------------------------


def test_escaped_string_points_at_whole_token() -> None:
    text = "name = 'a\tb' AND amout > 1"
    # In the JSON file the tab is written `\t`: the token is one character longer.
    span = Span(FILE, LINE, COL, LINE, COL + len(text) + 3)
    checked, diags = check_expression(text, SCOPE, span, PRED)
    assert checked is None
    assert [(d.code, d.span) for d in diags] == [("E302", span)]


def test_multi_line_span_points_at_whole_token() -> None:
    span = Span(FILE, 3, 10, 4, 5)
    _, diags = check_expression("amout > 1", SCOPE, span, PRED)
    assert [(d.code, d.span) for d in diags] == [("E302", span)]


def test_empty_and_untokenizable_expressions() -> None:
    for text in ("", "   ", "-- only a comment", "/* unterminated"):
        checked, diags = check(text)
        assert checked is None
        assert [(d.code, d.span) for d in diags] == [("E301", _span(text))]


# --- robustness -------------------------------------------------------------------------------

GARBAGE = [
    ")",
    "(",
    "(((",
    "1 +* 2",
    "case",
    "CASE WHEN END",
    "cast(",
    "cast(a)",
    "cast(a as foo)",
    "upper(",
    "@x",
    "?",
    "$1",
    "#",
    "a ~ b",
    "a & b | c",
    "a:b",
    "'\\",
    "\x00",
    "sum(a) over",
    "DROP TABLE t",
    "a = 1 UNION SELECT 2",
    "EXISTS (SELECT 1)",
    "ARRAY(1, 2)[0]",
    "map('a', 1)",
    "struct(1 AS a).a",
    "CURRENT_USER()",
    "x IN (1, 2",
    "1 BETWEEN 2",
    "1 + " * 400 + "1",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_never_raises(text: str) -> None:
    checked, diags = check(text, PRED)
    assert checked is None
    assert diags
    assert {d.code for d in diags} <= {"E301", "E302", "E303", "E304", "E305", "E306", "E308"}


def test_sqlglot_failure_outside_parsing_is_a_diagnostic(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(text: str, tokens: object) -> None:
        raise SqlglotError("boom")

    monkeypatch.setattr(expressions, "_parse", boom)
    assert found(check("amount")[1]) == [("E301", -1)]


def test_parse_error_without_position_points_at_whole_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def fail(text: str, tokens: object) -> None:
        raise ParseError("no details")

    monkeypatch.setattr(expressions, "_parse", fail)
    _, diags = check("amount")
    assert [(d.code, d.span) for d in diags] == [("E301", _span("amount"))]


# --- regular expression literals (E307) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("name RLIKE 'a(b'", 11),
        ("name RLIKE '(?P<x>a)'", 11),  # Python's named group
        ("name REGEXP '[[:alpha:]]+'", 12),  # POSIX class: RE2's, not Java's
        ("regexp_like(name, 'a++')", 18),  # possessive: Java's, not vouched for by RE2
        ("name RLIKE '(?=a)b'", 11),  # lookahead
        ("regexp_replace(name, '(', 'x') = 'y'", 21),
        ("regexp_extract(name, 'a{2,1}', 0) = 'y'", 21),
        ("regexp_extract(name, '(a)(b)', 3) = 'y'", 31),  # no group 3
        ("name RLIKE '\\\\C'", 11),  # \C, RE2's any byte
    ],
)
def test_invalid_regex_literals_are_e307_at_the_pattern(text: str, offset: int) -> None:
    assert found(check(text, PRED)[1]) == [("E307", offset)]


@pytest.mark.parametrize(
    "text",
    [
        "name RLIKE '^[A-Z]\\\\d{3}$'",
        "name RLIKE '(?<word>\\\\w+)'",
        "regexp_extract(name, '(a)(b)', 2) = 'b'",
        "regexp_replace(name, '\\\\s+', ' ') = 'x'",
        "name RLIKE name",  # a pattern from the data is not checked at compile time
    ],
)
def test_valid_regex_literals_pass(text: str) -> None:
    checked, diags = check(text, PRED)
    assert checked is not None, diags


def test_regex_literal_is_read_as_spark_reads_it() -> None:
    # '\\d' is the two characters \d to Spark; '\d' is just d (an unknown escape drops `\`).
    assert found(check("name RLIKE '\\\\d('", PRED)[1]) == [("E307", 11)]
    assert check("name RLIKE '\\\\('", PRED)[0] is not None


# --- bounds (E308) --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "parses"),
    [
        ("(" * 5000 + "1" + ")" * 5000, 0),
        ("+".join(["amount"] * 100_000), 0),
        ("amount + " * 150 + "1", 1),  # 301 tokens, no nesting: parsed, then refused by depth
        ("x" * (1 << 20), 0),
        ("NOT " * 5000 + "flag", 0),
        ("- " * 5000 + "amount", 0),
        ("CASE WHEN flag THEN " * 30 + "1" + " END" * 30, 0),
        ("coalesce(" * 30 + "amount" + ")" * 30, 0),
    ],
)
def test_huge_or_deep_expressions_are_e308_before_the_work_they_would_cost(
    monkeypatch: pytest.MonkeyPatch, text: str, parses: int
) -> None:
    # Quick by construction, not by a clock: the bounds are checked on the characters and
    # tokens before sqlglot's recursive parser runs, and a parsed tree too deep is refused
    # before it is typed (the checker's own recursion).
    parsed: list[str] = []
    real_parse = expressions._parse

    def counted(text: str, tokens: Any) -> Any:
        parsed.append(text)
        return real_parse(text, tokens)

    def never(*args: Any) -> None:
        raise AssertionError("an expression over the bounds was typed")

    monkeypatch.setattr(expressions, "_parse", counted)
    monkeypatch.setattr(expressions, "_Checker", never)
    checked, diags = check(text, ROW)
    assert checked is None
    assert [d.code for d in diags] == ["E308"]
    assert len(parsed) == parses


def test_expressions_just_inside_the_bounds_check() -> None:
    checked, _ = check("+".join(["amount"] * 100))
    assert checked is not None
    checked, _ = check("(" * 20 + "amount" + ")" * 20)
    assert checked is not None
