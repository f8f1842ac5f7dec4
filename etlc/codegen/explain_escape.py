"""Escaping for `etlc explain`'s formats: each name, path and expression from a definition
becomes text of the format that can never close its quotes or add a node, edge or markup
(after ``printable``, so no output holds a control character)."""

from __future__ import annotations

import html
import re

from etlc.codegen.literals import RenderError
from etlc.printable import printable

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def dot_escape(text: str) -> str:
    # Inside a DOT quoted string: backslash and quote escaped, so nothing ends it early.
    return printable(text).replace("\\", "\\\\").replace('"', '\\"')


def dot_string(text: str) -> str:
    return f'"{dot_escape(text)}"'


def node_id(step_id: str) -> str:
    # Checked identifiers already; checked again because they are pasted into the output.
    if not _IDENTIFIER.fullmatch(step_id):
        raise RenderError(f"not a step id: {printable(step_id)[:60]}")
    return f"s_{step_id}"


def mermaid_text(text: str) -> str:
    # Mermaid's entity codes: `#` first, so the codes themselves are not escaped again; `%`
    # too, because Mermaid reads `%%{...}%%` anywhere in a diagram as its configuration.
    escaped = printable(text).replace("#", "#35;")
    pairs = (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;"), ("%", "#37;"))
    for char, entity in pairs:
        escaped = escaped.replace(char, entity)
    return escaped


def h(text: str) -> str:
    return html.escape(printable(text), quote=True)
