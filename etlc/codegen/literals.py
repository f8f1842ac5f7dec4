"""Python source for plain values, laid out the way ``ruff format`` leaves it.

This is the one way text from a definition reaches a generated driver: as a string literal
(``string``), as docstring text (``docstring_text``) or as a checked name (``identifier``).
Each returns ``Code``, and the driver template refuses anything else, so a value cannot be
pasted into a driver without passing through here.

Containers with items are always exploded one item per line with a trailing comma (ruff's
"magic trailing comma" keeps them so), which makes the output stable under the formatter and
easy to diff between compiles.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from etlc.printable import printable

if TYPE_CHECKING:  # typing has it from Python 3.11 only; mypy alone reads it
    from typing_extensions import LiteralString

INDENT = "    "
LINE_LENGTH = 100

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Code(str):
    """Python source that may stand in a generated driver as it is.

    Made only by this module's functions and by ``code`` from etlc's own fixed text, so its
    type says the text was escaped or checked; the driver template refuses every other value.
    """

    __slots__ = ()


class RenderError(Exception):
    """A value the checker should have refused reached codegen: a bug in etlc, never code."""


def code(template: LiteralString, *parts: Code) -> Code:
    """etlc's own fixed source text with already escaped ``parts`` in its ``{}`` slots."""
    for part in parts:
        if not isinstance(part, Code):
            raise RenderError(f"unescaped text for the driver: {escaped(str(part))[:60]}")
    return Code(template.format(*parts))


def escaped(value: str, quote: str = "") -> str:
    """``value`` with ``\\``, ``quote`` and every unprintable character written as an escape:
    one printable line that reads back as ``value`` inside a literal closed by ``quote``."""
    return printable(value, "\\" + quote)


def string(value: str) -> Code:
    """A string literal quoted as ruff prefers: double quotes unless that needs escapes.

    Only printable characters appear as themselves, so the literal is one line, encodes as
    UTF-8 whatever ``value`` holds (NUL, lone surrogates, U+2028), and parses back to ``value``.
    """
    if '"' in value and "'" not in value:
        return Code("'" + escaped(value, "'") + "'")
    return Code('"' + escaped(value, '"') + '"')


def docstring_text(value: str) -> Code:
    """``value`` as text inside a ``\"\"\"`` docstring: every ``"`` and ``\\`` escaped, so the
    docstring can neither close early nor run on, and reads back as ``value``."""
    return Code(escaped(value, '"'))


def identifier(name: str) -> Code:
    """A Python name: the full ASCII identifier pattern, never a keyword."""
    if not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise RenderError(f"not a Python identifier: {string(name)}")
    return Code(name)


def module_path(name: str) -> Code:
    """A dotted module path whose every part is an ``identifier``."""
    return Code(".".join(identifier(part) for part in name.split(".")))


def literal(
    value: Any,
    level: int = 0,
    custom: Callable[[Any], Code | None] | None = None,
    prefix: int = 0,
) -> Code:
    """Source text for ``value`` (str, bool, int, float, None, tuple, list, dict).

    ``level`` is the indentation level of the line the value starts on and ``prefix`` the
    width of what precedes it there (``key=``). A container that fits on that line is kept
    on it, as the formatter would; a longer one is exploded with a trailing comma.
    """
    if custom is not None:
        special = custom(value)
        if special is not None:
            return special
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool | int | float):
        return _scalar(value)
    if not isinstance(value, Mapping | tuple | list):
        raise TypeError(f"cannot render {type(value).__name__} as a literal")
    flat = _inline(value, custom, LINE_LENGTH - len(INDENT) * level - prefix - 1)
    if flat is not None:
        return Code(flat)
    inner = INDENT * (level + 1)
    close = INDENT * level
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            key = f"{string(str(k))}: "
            items.append(f"{inner}{key}{literal(v, level + 1, custom, len(key))},\n")
        return Code("{\n" + "".join(items) + close + "}")
    body = "".join(f"{inner}{literal(v, level + 1, custom)},\n" for v in value)
    opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
    return Code(opening + "\n" + body + close + closing)


def _scalar(value: bool | int | float | None) -> Code:
    # repr of nan/inf is a bare name (`nan`), which would be code, not a number.
    if isinstance(value, float) and not math.isfinite(value):
        raise RenderError(f"not a finite number: {value!r}")
    return Code(repr(value))


def _inline(value: Any, custom: Callable[[Any], Code | None] | None, budget: int) -> str | None:
    """The one-line form, or None when an item cannot be written on one line or the line
    would be longer than ``budget``: a wide value is given up on as soon as it is too long,
    so a large literal costs its size, not its size times its depth."""
    if budget < 0:
        return None
    special = custom(value) if custom is not None else None
    if special is not None:
        return special if len(special) <= budget else None
    if isinstance(value, str):
        text = string(value)
        return text if len(text) <= budget else None
    if value is None or isinstance(value, bool | int | float):
        text = _scalar(value)
        return text if len(text) <= budget else None
    if isinstance(value, Mapping):
        pairs = [(f"{string(str(k))}: ", v) for k, v in value.items()]
        return _joined(pairs, "{", "}", custom, budget)
    if isinstance(value, tuple | list):
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if isinstance(value, tuple) and len(value) == 1:
            closing = ",)"
        return _joined([("", v) for v in value], opening, closing, custom, budget)
    return None


def _joined(
    pairs: list[tuple[str, Any]],
    opening: str,
    closing: str,
    custom: Callable[[Any], Code | None] | None,
    budget: int,
) -> str | None:
    used = len(opening) + len(closing)
    parts: list[str] = []
    for key, v in pairs:
        separator = 2 if parts else 0  # ", "
        item = _inline(v, custom, budget - used - separator - len(key))
        if item is None:
            return None
        parts.append(key + item)
        used += separator + len(key) + len(item)
        if used > budget:
            return None
    return opening + ", ".join(parts) + closing
