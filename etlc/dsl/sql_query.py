"""Checking a database extract's ``query``: exactly one read-only SELECT, in the source's SQL.

The query runs on the source database with the pipeline's production credentials, inside the
subquery Spark's JDBC reader builds around it. :func:`check_query` parses it with sqlglot in
the target dialect (postgres or mysql) and accepts only one ``SELECT`` (or ``WITH ... SELECT``,
or set operations of them) that reads: no statement of any other kind anywhere (data-modifying
CTEs included), no ``SELECT ... INTO``, no locking clause, no assignment, no second statement,
no comment, and only functions known to have no side effect.

Functions: an allow-list for the names sqlglot does not model (it parses them as anonymous
calls). That is where every side effect lives: administration functions (``pg_sleep``,
``pg_read_file``, ``set_config``, ``dblink``, ``lo_import``, ``sleep``, ``get_lock``,
``load_file``...), sequences (``nextval``) and every user-defined function, which a deny-list
could never enumerate. The functions sqlglot models are the standard SQL and dialect built-ins
it knows the meaning of; the few of those with an effect outside the query (sequences, file
readers) are denied by class.

What the driver receives is sqlglot's rendering of the checked tree (no comments, one
statement), not the text as written: the database then runs exactly what was checked, even
where sqlglot's tokenizer and the database's would disagree about the original text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, ParseError, SqlglotError, TokenError
from sqlglot.tokenizer_core import Token, TokenType

from etlc.dsl.diagnostics import Diagnostic, Span, diag

__all__ = ["MAX_QUERY_CHARS", "MAX_QUERY_DEPTH", "CheckedQuery", "check_query"]

# The dialect sqlglot reads each database extract type's SQL in.
DIALECTS = {"postgres": "postgres", "mysql": "mysql"}
MAX_QUERY_CHARS = 100_000
# Parentheses nested deeper than this are refused before sqlglot's recursive parser sees them.
MAX_QUERY_DEPTH = 40

_CODE = "E215"
_HINT = "write one read-only SELECT (or WITH ... SELECT); use `table` for a plain table"

_STARTS = frozenset((TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN))

# Statement-level nodes that may not appear anywhere in the tree; Into is SELECT ... INTO,
# Lock is FOR UPDATE/FOR SHARE/LOCK IN SHARE MODE, PropertyEQ is MySQL's `@v := x`.
_DENIED_NODES: dict[type[exp.Expr], str] = {
    exp.DML: "a data-modifying statement",
    exp.DDL: "a schema-changing statement",
    exp.Drop: "DROP",
    exp.Alter: "ALTER",
    exp.TruncateTable: "TRUNCATE",
    exp.Command: "a statement sqlglot cannot read",
    exp.Grant: "GRANT",
    exp.Set: "SET",
    exp.Transaction: "a transaction statement",
    exp.Commit: "COMMIT",
    exp.Rollback: "ROLLBACK",
    exp.Use: "USE",
    exp.Kill: "KILL",
    exp.Pragma: "PRAGMA",
    exp.Analyze: "ANALYZE",
    exp.LoadData: "LOAD DATA",
    exp.Into: "SELECT ... INTO",
    exp.Lock: "a locking clause (FOR UPDATE / FOR SHARE)",
    exp.PropertyEQ: "a variable assignment (`:=`)",
}
# Spark binds no values to an extract's query: the database would refuse it at run time.
_UNBOUND: tuple[type[exp.Expr], ...] = (exp.Placeholder, exp.Parameter)
# Functions sqlglot models that reach outside the query: sequences, files, remote services.
_DENIED_FUNCTIONS: tuple[type[exp.Expr], ...] = (
    exp.NextValueFor,
    exp.ReadCSV,
    exp.ReadParquet,
    exp.ToFile,
    exp.Secret,
    exp.Predict,
    exp.MLForecast,
    exp.MLTranslate,
    exp.AIAgg,
    exp.AIClassify,
    exp.AIEmbed,
    exp.AIForecast,
    exp.AIGenerate,
    exp.AISimilarity,
    exp.AISummarizeAgg,
)
_QUERIES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)

# Built-ins sqlglot parses as anonymous calls that compute a value and do nothing else. A
# name that is not here (a user-defined function, an administration function) is refused.
_COMMON_PURE = """
    abs ascii avg ceil ceiling char_length coalesce concat concat_ws cos count degrees exp
    extract floor greatest least left length ln log lower lpad ltrim max md5 min mod nullif
    pi position power radians repeat replace reverse right round rpad rtrim sign sin sqrt
    substr substring sum tan trim upper regexp_replace regexp_like regexp_substr
    row_number rank dense_rank lag lead first_value last_value nth_value ntile cume_dist
    percent_rank stddev variance
"""
_PURE_FUNCTIONS = {
    "postgres": frozenset(
        (
            _COMMON_PURE
            + """
            age array_to_string atan2 bit_length btrim date_bin date_part date_trunc decode
            encode every float4 float8 format generate_series initcap int2 int4 int8
            isfinite json_build_array json_build_object json_extract_path_text jsonb_agg
            jsonb_array_length jsonb_build_array jsonb_build_object jsonb_extract_path_text
            jsonb_typeof make_date make_interval make_time make_timestamp num_nonnulls
            num_nulls numeric octet_length overlay quote_ident quote_literal regexp_count
            regexp_matches regexp_split_to_array split_part starts_with strpos text
            timezone to_char to_date to_json to_jsonb to_number to_timestamp translate
            trunc width_bucket clock_timestamp statement_timestamp transaction_timestamp
            """
        ).split()
    ),
    "mysql": frozenset(
        (
            _COMMON_PURE
            + """
            bin conv convert_tz crc32 curdate curtime date date_add date_format date_sub
            datediff day dayname dayofmonth dayofweek dayofyear elt field find_in_set
            format from_days from_unixtime hex hour if ifnull instr isnull json_array
            json_arrayagg json_extract json_object json_objectagg json_unquote json_value
            last_day lcase locate makedate maketime microsecond mid minute month monthname
            now oct ord pow quarter regexp_instr sec_to_time second str_to_date strcmp
            substring_index sysdate time time_to_sec timestamp timestampadd timestampdiff
            to_days truncate ucase unhex unix_timestamp utc_timestamp week weekday year
            yearweek
            """
        ).split()
    ),
}


@dataclass(frozen=True)
class CheckedQuery:
    sql: str
    """sqlglot's rendering of the checked statement in the target dialect, on one line."""


def check_query(text: str, system: str, span: Span) -> tuple[CheckedQuery | None, list[Diagnostic]]:
    """Check a database extract's ``query`` for ``system`` (postgres or mysql).

    ``span`` is the span of the JSON string token holding ``text`` (opening quote included).
    """
    where = _Where(text, span)
    if len(text) > MAX_QUERY_CHARS:
        return None, [where.error(f"the query is longer than {MAX_QUERY_CHARS} characters")]
    dialect = Dialect.get_or_raise(DIALECTS[system])
    try:
        tokens = dialect.tokenize(text)
    except TokenError as err:
        return None, [where.error(f"the query cannot be read as {system} SQL: {err}")]
    found = _token_problem(tokens, where)
    if found is not None:
        return None, [found]
    try:
        trees = dialect.parser(error_level=ErrorLevel.RAISE).parse(tokens, text)
    except ParseError as err:
        info = err.errors[0] if err.errors else {}
        message = str(info.get("description") or "syntax error")
        at = _token_at(tokens, info.get("line"), info.get("col"))
        return None, [where.error(f"the query is not valid {system} SQL: {message}", at)]
    except (SqlglotError, RecursionError) as err:
        return None, [where.error(f"the query cannot be parsed as {system} SQL: {err}")]
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        return None, [where.error("the query must be exactly one statement")]
    root = statements[0]
    problem = _tree_problem(root, system)
    if problem is not None:
        message, node = problem
        return None, [where.error(message, _extent(node))]
    rendered = dialect.generate(root, comments=False)
    if not _renders_faithfully(root, rendered, dialect, system):
        return None, [
            where.error(
                f"the query does not survive a round trip through sqlglot's {system} SQL",
                hint="simplify the query, or read a view (`table`) that holds it",
            )
        ]
    return CheckedQuery(rendered), []


def _renders_faithfully(root: exp.Expr, rendered: str, dialect: Dialect, system: str) -> bool:
    """Whether the text the driver gets passes the same checks, renders to itself and reads
    as the same tree as the query as written (sqlglot leaves out arguments it does not model:
    `gen_random_uuid('1')` would become `GEN_RANDOM_UUID()`)."""
    try:
        tokens = dialect.tokenize(rendered)
        if _token_problem(tokens, _Where(rendered, Span.point(""))) is not None:
            return False
        trees = dialect.parser(error_level=ErrorLevel.RAISE).parse(tokens, rendered)
    except (SqlglotError, RecursionError):
        return False
    if len(trees) != 1 or trees[0] is None or _tree_problem(trees[0], system) is not None:
        return False
    return trees[0] == root and dialect.generate(trees[0], comments=False) == rendered


class _Where:
    """Offsets in the query text to spans in the file, when the JSON token maps one to one."""

    def __init__(self, text: str, span: Span) -> None:
        self.span = span
        self.exact = span.line == span.end_line and span.end_col - span.col == len(text) + 2

    def error(
        self, message: str, at: tuple[int, int] | None = None, hint: str = _HINT
    ) -> Diagnostic:
        where = self.span
        if at is not None and self.exact:
            where = self.span.shifted(1 + at[0], at[1] - at[0] + 1)
        return diag(_CODE, message, where, hint)


def _token_problem(tokens: list[Token], where: _Where) -> Diagnostic | None:
    """What the tokens alone show: comments, several statements, another statement kind."""
    if not tokens:
        return where.error("the query is empty")
    if tokens[0].token_type not in _STARTS:
        first = tokens[0]
        return where.error(
            f"the query must be a SELECT, not `{first.text[:40]}`", (first.start, first.end)
        )
    depth = 0
    for tok in tokens:
        if tok.comments:
            # sqlglot drops comments from the tree; MySQL runs /*! ... */ as code.
            return where.error(
                "the query holds a comment",
                (tok.start, tok.end),
                "remove comments from the query: text hidden in one is not checked",
            )
        if tok.token_type is TokenType.SEMICOLON:
            return where.error(
                "the query must be exactly one statement, without `;`", (tok.start, tok.end)
            )
        if tok.token_type is TokenType.L_PAREN:
            depth += 1
            if depth > MAX_QUERY_DEPTH:
                return where.error(
                    f"the query nests parentheses deeper than {MAX_QUERY_DEPTH} levels",
                    (tok.start, tok.end),
                    "flatten the query, or read a view (`table`) that holds it",
                )
        elif tok.token_type is TokenType.R_PAREN:
            depth -= 1
    return None


def _tree_problem(root: exp.Expr, system: str) -> tuple[str, exp.Expr] | None:
    if not isinstance(root, (exp.Select, exp.SetOperation)):
        return f"the query must be a SELECT, not {_describe(root)}", root
    for node in _walk(root):
        for kind, what in _DENIED_NODES.items():
            if isinstance(node, kind):
                return f"the query holds {what}; only reading is allowed", node
        if isinstance(node, _UNBOUND):
            return "the query holds a parameter; no values are bound to an extract's query", node
        if isinstance(node, exp.Query) and not isinstance(node, _QUERIES):
            return f"the query holds {_describe(node)}; only SELECTs are allowed", node
        if isinstance(node, exp.CTE) and not isinstance(node.this, _QUERIES):
            return f"a WITH clause holds {_describe(node.this)}; only SELECTs are allowed", node
        if isinstance(node, _DENIED_FUNCTIONS):
            return f"function `{node.key}` has effects outside the query", node
        if isinstance(node, exp.Anonymous):
            name = node.name.lower()
            if name not in _PURE_FUNCTIONS[system]:
                return (
                    f"function `{name}` is not known to be free of side effects in {system}",
                    node,
                )
    return None


def _walk(root: exp.Expr) -> Iterator[exp.Expr]:
    """Every node, without recursion (a deep tree must not exhaust the stack here)."""
    pending = [root]
    while pending:
        node = pending.pop()
        yield node
        pending.extend(node.iter_expressions())


def _describe(node: exp.Expr) -> str:
    return f"`{node.key.upper()}`" if node.key else "another statement"


def _extent(node: exp.Expr) -> tuple[int, int] | None:
    """Text offsets of the first leaf under ``node`` that sqlglot placed."""
    for sub in _walk(node):
        start, end = sub.meta_get("start"), sub.meta_get("end")
        if isinstance(start, int) and isinstance(end, int):
            return start, end
    return None


def _token_at(tokens: list[Token], line: object, col: object) -> tuple[int, int] | None:
    for tok in tokens:
        if tok.line == line and tok.col == col:
            return tok.start, tok.end
    return None
