"""The positioned JSON tree: what JSON and YAML definitions parse into.

Both formats become the same small tree so that schema validation, the AST builder and every
later diagnostic can point at a precise span whatever the user wrote the definition in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from etlc.dsl.diagnostics import Span

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class JScalar:
    """A string, number, boolean or null; a string's span includes its quotes."""

    span: Span
    value: Scalar


@dataclass(frozen=True, slots=True)
class JMember:
    key: str
    key_span: Span
    value: JValue


@dataclass(frozen=True, slots=True)
class JObject:
    """An object; its members keep source order and hold no duplicate keys."""

    span: Span
    members: tuple[JMember, ...]

    def member(self, key: str) -> JMember | None:
        # Definitions have a handful of keys per object: a scan beats building an index.
        for m in self.members:
            if m.key == key:
                return m
        return None

    def get(self, key: str) -> JValue | None:
        m = self.member(key)
        return None if m is None else m.value

    def keys(self) -> tuple[str, ...]:
        return tuple(m.key for m in self.members)


@dataclass(frozen=True, slots=True)
class JArray:
    span: Span
    items: tuple[JValue, ...]


JValue = JScalar | JObject | JArray


def to_python(node: JValue) -> Any:
    """Plain dicts, lists and scalars, as ``json.loads`` would return them."""
    if isinstance(node, JObject):
        return {m.key: to_python(m.value) for m in node.members}
    if isinstance(node, JArray):
        return [to_python(item) for item in node.items]
    return node.value


def locate(root: JValue, path: Sequence[str | int]) -> JValue | None:
    """The node at a JSON path (keys and indexes, as in jsonschema's ``absolute_path``)."""
    node: JValue | None = root
    for step in path:
        if isinstance(node, JObject) and isinstance(step, str):
            node = node.get(step)
        elif isinstance(node, JArray) and isinstance(step, int) and 0 <= step < len(node.items):
            node = node.items[step]
        else:
            return None
    return node


def key_span(root: JValue, path: Sequence[str | int], key: str) -> Span | None:
    """The span of ``key`` itself (not its value) in the object at ``path``."""
    node = locate(root, path)
    m = node.member(key) if isinstance(node, JObject) else None
    return None if m is None else m.key_span
