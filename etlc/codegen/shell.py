"""Shell text for the generated submit command: every value a whole, quoted word.

A value never goes inside double quotes (where ``$()`` and backticks expand) nor unquoted
unless it is made only of characters no shell treats specially. ``word`` and ``comment`` are
the only ways in; the submit template refuses every other value.
"""

from __future__ import annotations

import re

from etlc.codegen.literals import RenderError
from etlc.printable import printable

# shlex.quote's safe set: no glob, tilde, expansion, quoting or separator character.
_BARE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


class ShellWord(str):
    """One complete bash word whose value is exactly the text it was made from."""

    __slots__ = ()


class ShellComment(str):
    """Text that stays inside the ``#`` comment it is put in: printable, one line."""

    __slots__ = ()


def word(value: str) -> ShellWord:
    """``value`` as one bash word: bare if harmless, else single-quoted (``'`` as ``'\\''``),
    else, when it holds unprintable characters, ANSI-C quoted (``$'...'``) with each of those
    written as the ``\\xHH`` bytes of its UTF-8 form, so no locale can change it."""
    if _BARE.fullmatch(value):
        return ShellWord(value)
    if value.isprintable():
        return ShellWord("'" + value.replace("'", "'\\''") + "'")
    return ShellWord("$'" + "".join(_ansi_c(ch) for ch in value) + "'")


def _ansi_c(ch: str) -> str:
    if ch in "\\'":
        return "\\" + ch
    if ch.isprintable():
        return ch
    if ch == "\0" or "\ud800" <= ch <= "\udfff":
        # bash ends an argument at NUL, and a lone surrogate has no bytes to write.
        raise RenderError(f"no shell word can hold {printable(ch)}")
    return "".join(f"\\x{b:02x}" for b in ch.encode("utf-8"))


def comment(value: str) -> ShellComment:
    """``value`` for a ``#`` comment: line breaks, controls and ``\\`` written as escapes."""
    return ShellComment(printable(value, "\\"))
