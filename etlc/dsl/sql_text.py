"""The one way the compiler writes a value or a name into Spark SQL text.

Every string literal and every identifier the compiler itself puts into SQL (validation rules,
read schemas as DDL) goes through :func:`sql_string` or :func:`sql_identifier`, never an
f-string of its own. Spark's default parser (``spark.sql.parser.escapedStringLiterals`` off)
reads ``\\`` as an escape inside string literals, so both ``\\`` and ``'`` are escaped, and
control characters are written as ``\\uXXXX``: a value can never close its literal.
"""

from __future__ import annotations

import re

__all__ = ["sql_identifier", "sql_string"]

# What a literal may hold as it is: printable and not a quote or a backslash. Everything else
# is escaped; U+2028/U+2029 and other line or format characters included.
_UNSAFE_IN_LITERAL = re.compile(r"[\\'\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    return _NAMED_ESCAPES.get(ch) or f"\\u{ord(ch):04x}"


def sql_string(value: str) -> str:
    """``value`` as a Spark SQL string literal that reads back as exactly ``value``."""
    return "'" + _UNSAFE_IN_LITERAL.sub(_escape, value) + "'"


def sql_identifier(name: str) -> str:
    """``name`` as a Spark SQL quoted identifier: in backticks, a backtick written twice."""
    if not name or "\x00" in name:
        raise ValueError(f"{name!r} cannot be a Spark SQL identifier")
    return "`" + name.replace("`", "``") + "`"
