"""Diagnostics: compiler findings as data, rendered like a real compiler's.

A diagnostic carries a stable code (tests assert the code, never the prose), the span it
points at, a one-line message and a one-line fix hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


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


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


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


def render(diagnostic: Diagnostic, source: str | None) -> str:
    """``file:line:col: error[CODE]: message``, the source line, a caret line and the hint."""
    s = diagnostic.span
    head = f"{s.file}:{s.line}:{s.col}: {diagnostic.severity.value}[{diagnostic.code}]: "
    lines = [head + diagnostic.message]
    text_lines = source.splitlines() if source is not None else []
    if 1 <= s.line <= len(text_lines):
        text = text_lines[s.line - 1].expandtabs(1)
        gutter = f"{s.line:>4} | "
        width = (s.end_col - s.col) if s.end_line == s.line else len(text) - s.col + 1
        width = max(1, min(width, max(1, len(text) - s.col + 1)))
        lines.append(gutter + text)
        lines.append(" " * (len(gutter) + s.col - 1) + "^" * width)
    if diagnostic.hint:
        lines.append(f"     = hint: {diagnostic.hint}")
    return "\n".join(lines)


def sort_key(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.span.file, d.span.line, d.span.col, d.code)
