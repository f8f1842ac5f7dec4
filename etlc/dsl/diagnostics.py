"""Diagnostics: compiler findings as data, rendered like a real compiler's.

A diagnostic carries a stable code (tests assert the code, never the prose), the span it
points at, a one-line message and a one-line fix hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from etlc.printable import printable


@dataclass(frozen=True, order=True)
class Span:
    """A source range; lines and columns are 1-based, ``end_col`` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @classmethod
    def point(cls, file: str, line: int = 1, col: int = 1) -> Span:
        return cls(file, line, col, line, col + 1)

    def shifted(self, offset: int, length: int) -> Span:
        """A sub-span of a single-line token: ``offset`` characters in, ``length`` long."""
        col = self.col + offset
        return Span(self.file, self.line, col, self.line, col + max(length, 1))


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"

    # str() and format() give the value, as enum.StrEnum does; that is Python 3.11+ only.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    hint: str = ""
    severity: Severity = Severity.ERROR
    params: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


def diag(
    code: str,
    message: str,
    span: Span,
    hint: str = "",
    severity: Severity = Severity.ERROR,
    **params: object,
) -> Diagnostic:
    """Build a diagnostic; keyword parameters are kept (as strings) for tests and tools."""
    return Diagnostic(
        code,
        message,
        span,
        hint,
        severity,
        tuple(sorted((k, str(v)) for k, v in params.items())),
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the closest known word, or listing the choices when none is close."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    if not options:
        return ""
    shown = ", ".join(f"`{o}`" for o in options[:12])
    more = ", ..." if len(options) > 12 else ""
    return f"expected one of {shown}{more}"


# What one diagnostic may show of a line or a message: a definition can be one 1 MiB line, and
# quoting it whole in each of its diagnostics would print gigabytes.
EXCERPT_BEFORE = 60
EXCERPT_SPAN = 80
EXCERPT_AFTER = 40
MAX_MESSAGE = 300
_CUT = "..."


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """``file:line:col: error[CODE]: message``, the source line, a caret line and the hint.

    File names, messages, hints and source lines are the definition's text, which may hold
    newlines, carriage returns or ESC: each is shown escaped (``printable``), so a rendered
    diagnostic is exactly its own lines and cannot forge others (``::error`` commands in a
    CI log) or drive the terminal. A long line is shown as a window around the span.
    """
    s = diagnostic.span
    head = (
        f"{shown_path(s.file)}:{s.line}:{s.col}: {diagnostic.severity.value}[{diagnostic.code}]: "
    )
    lines = [head + _bounded(printable(diagnostic.message))]
    # The parser counts lines by "\n" alone; str.splitlines would also split at U+2028 & co.
    text_lines = source.split("\n") if source is not None else []
    if 1 <= s.line <= len(text_lines):
        text = text_lines[s.line - 1].removesuffix("\r").expandtabs(1)
        gutter = f"{s.line:>4} | "
        width = (s.end_col - s.col) if s.end_line == s.line else len(text) - s.col + 1
        width = max(1, min(width, max(1, len(text) - s.col + 1), EXCERPT_SPAN))
        start = max(0, s.col - 1 - EXCERPT_BEFORE)
        end = min(len(text), s.col - 1 + width + EXCERPT_AFTER)
        lead = _CUT if start else ""
        # Escapes widen the text: the caret is placed under the escaped span.
        before = lead + printable(text[start : s.col - 1])
        marked = printable(text[s.col - 1 : s.col - 1 + width])
        after = printable(text[s.col - 1 + width : end]) + (_CUT if end < len(text) else "")
        lines.append(gutter + before + marked + after)
        past_end = max(0, s.col - 1 - len(text))  # "unexpected end" points after the text
        lines.append(" " * (len(gutter) + len(before) + past_end) + "^" * max(1, len(marked)))
    if diagnostic.hint:
        lines.append(f"     = hint: {_bounded(printable(diagnostic.hint))}")
    return "\n".join(lines)


# Codes whose span is a credential's text (a literal password, or a malformed reference, which
# may well be the password itself): the source shown under any diagnostic masks it.
SECRET_CODES = frozenset({"E501", "E502"})


def masked(source: str | None, diagnostics: Iterable[Diagnostic]) -> str | None:
    """``source`` with the text of every credential span (:data:`SECRET_CODES`, and a value
    the schema conceals, whatever its error) replaced by
    ``*``, so no excerpt of the file (a CI log, a terminal) repeats a committed secret. Line
    breaks are kept: every line and column stays where it was."""
    spans = [d.span for d in diagnostics if d.code in SECRET_CODES or d.param("concealed")]
    if source is None or not spans:
        return source
    lines = source.split("\n")
    for s in spans:
        for number in range(s.line, min(s.end_line, len(lines)) + 1):
            text = lines[number - 1]
            start = s.col - 1 if number == s.line else 0
            end = s.end_col - 1 if number == s.end_line else len(text)
            if start < end:
                lines[number - 1] = text[:start] + "*" * (end - start) + text[end:]
    return "\n".join(lines)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - len(_CUT)] + _CUT


def shown_path(file: str) -> str:
    """A file name as printed at the start of a line: escaped, and prefixed with ``./`` when
    it would start with something other than a letter, digit, ``.``, ``/`` or ``_`` (a file
    named ``::error ...`` must not read as a CI command)."""
    text = printable(file)
    if text[:1].isalnum() or text[:1] in ("/", ".", "_"):
        return text
    return "./" + text


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.col, d.code)
