"""Python source for plain values, laid out the way ``ruff format`` leaves it.

Containers with items are always exploded one item per line with a trailing comma (ruff's
"magic trailing comma" keeps them so), which makes the output stable under the formatter and
easy to diff between compiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

INDENT = "    "


def string(value: str) -> str:
    """A string literal quoted as ruff prefers: double quotes unless that needs escapes."""
    body = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if '"' in value and "'" not in value:
        return "'" + body + "'"
    return '"' + body.replace('"', '\\"') + '"'


def literal(value: Any, level: int = 0, custom: Callable[[Any], str | None] | None = None) -> str:
    """Source text for ``value`` (str, bool, int, float, None, tuple, list, dict), at ``level``."""
    if custom is not None:
        special = custom(value)
        if special is not None:
            return special
    if isinstance(value, str):
        return string(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    inner = INDENT * (level + 1)
    close = INDENT * level
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = "".join(
            f"{inner}{string(str(k))}: {literal(v, level + 1, custom)},\n" for k, v in value.items()
        )
        return "{\n" + items + close + "}"
    if isinstance(value, tuple | list):
        if not value:
            return "()" if isinstance(value, tuple) else "[]"
        items = "".join(f"{inner}{literal(v, level + 1, custom)},\n" for v in value)
        opening, closing = ("(", ")") if isinstance(value, tuple) else ("[", "]")
        return opening + "\n" + items + close + closing
    raise TypeError(f"cannot render {type(value).__name__} as a literal")
