"""Python source for plain values, laid out the way ``ruff format`` leaves it.

Containers with items are always exploded one item per line with a trailing comma (ruff's
"magic trailing comma" keeps them so), which makes the output stable under the formatter and
easy to diff between compiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

INDENT = "    "
LINE_LENGTH = 100


def string(value: str) -> str:
    """A string literal quoted as ruff prefers: double quotes unless that needs escapes."""
    body = (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    if '"' in value and "'" not in value:
        return "'" + body + "'"
    return '"' + body.replace('"', '\\"') + '"'


def literal(
    value: Any,
    level: int = 0,
    custom: Callable[[Any], str | None] | None = None,
    prefix: int = 0,
) -> str:
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
        return repr(value)
    if not isinstance(value, Mapping | tuple | list):
        raise TypeError(f"cannot render {type(value).__name__} as a literal")
    flat = _inline(value, custom)
    if flat is not None and len(INDENT) * level + prefix + len(flat) + 1 <= LINE_LENGTH:
        return flat
    inner = INDENT * (level + 1)
    close = INDENT * level
    if isinstance(value, Mapping):
        items = []
        for k, v in value.items():
            key = f"{string(str(k))}: "
            items.append(f"{inner}{key}{literal(v, level + 1, custom, len(key))},\n")
        return "{\n" + "".join(items) + close + "}"
    body = "".join(f"{inner}{literal(v, level + 1, custom)},\n" for v in value)
    opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
    return opening + "\n" + body + close + closing


def _inline(value: Any, custom: Callable[[Any], str | None] | None) -> str | None:
    """The one-line form, or None when an item cannot be written on one line."""
    if custom is not None and custom(value) is not None:
        return custom(value)
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, Mapping):
        parts = []
        for k, v in value.items():
            item = _inline(v, custom)
            if item is None:
                return None
            parts.append(f"{string(str(k))}: {item}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, tuple | list):
        items = [_inline(v, custom) for v in value]
        if any(i is None for i in items):
            return None
        body = ", ".join(i for i in items if i is not None)
        if isinstance(value, list):
            return "[" + body + "]"
        return "(" + body + ("," if len(items) == 1 else "") + ")"
    return None
