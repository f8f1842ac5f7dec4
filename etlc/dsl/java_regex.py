"""Whether a regular expression is one Java's ``java.util.regex`` compiles, checked without a JVM.

Spark (rlike, regexp_*, Kafka's ``subscribePattern``) compiles patterns with Java. Lint has
no JVM, so a pattern is accepted when it is in the syntax RE2 and Java share: RE2 compiles it
(in linear time, so a hostile pattern costs nothing here), and it holds none of the
constructs RE2 accepts but Java refuses or reads differently. Java-only constructs
(lookaround, backreferences, possessive quantifiers) are refused too: RE2 cannot vouch for
them, and the runtime would run them with Java's backtracking engine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

__all__ = ["HINT", "JavaRegex", "java_regex"]

MAX_PATTERN_CHARS = 10_000
HINT = (
    "write the regex syntax Java shares with RE2 (no lookaround, backreferences or "
    "possessive quantifiers)"
)

# RE2 syntax Java does not share: Python-style named groups, POSIX classes, the ungreedy
# flag (UNICODE_CHARACTER_CLASS in Java) and \C (any byte).
_RE2_ONLY = (
    (re.compile(r"\(\?P[<=>]"), "`(?P<name>...)` is Python's syntax; Java writes `(?<name>...)`"),
    (
        re.compile(r"\[:\^?[a-z]+:\]"),
        "POSIX classes like `[[:alpha:]]` are not Java's; use \\p{Alpha}",
    ),
    (
        re.compile(r"\(\?[a-zA-Z]*U"),
        "the `U` flag means UNICODE_CHARACTER_CLASS in Java, not ungreedy",
    ),
    (re.compile(r"(?<!\\)(?:\\\\)*\\C"), "`\\C` (any byte) does not exist in Java"),
)


@dataclass(frozen=True)
class JavaRegex:
    groups: int
    """How many capturing groups the pattern has."""


def java_regex(pattern: str) -> JavaRegex | str:
    """The compiled pattern's facts, or why Java would not compile it (one line)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"the pattern is longer than {MAX_PATTERN_CHARS} characters"
    for found, why in _RE2_ONLY:
        if found.search(pattern):
            return why
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        return text
    return JavaRegex(groups=int(compiled.groups))
