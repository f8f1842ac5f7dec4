"""The positioned JSON tree: what JSON and YAML definitions parse into.

Both formats become the same small tree so that schema validation, the AST builder and every
later diagnostic can point at a precise span whatever the user wrote the definition in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from etlc.dsl.diagnostics import Span

Scalar = str | int | float | bool | None

# Far beyond any real definition, and low enough that every recursive walk over a tree or a
# project's JSON file (parse, jsonschema, the checker) stays inside Python's recursion limit.
MAX_DEPTH = 100

# Characters no target takes: NUL ends a C string (JVM arguments, PostgreSQL text), a lone
# surrogate cannot be encoded as UTF-8 (the driver could not even be written), and U+FFFE/U+FFFF
# are noncharacters. Other control characters stay allowed: U+0001 is Hive's field delimiter.
_REFUSED_CHARACTER = re.compile("[\x00\ud800-\udfff\ufffe\uffff]")
# Spark's LongType, Avro's long and a JDBC BIGINT all stop at 64 bits.
_INT_RANGE = range(-(2**63), 2**63)


def refused_scalar(value: Scalar) -> tuple[str, str] | None:
    """``(code, why)`` when no target could take ``value``: E006 for a string holding a
    character none takes, E007 for a number that is not finite or beyond 64 bits."""
    if isinstance(value, str):
        bad = _REFUSED_CHARACTER.search(value)
        if bad is None:
            return None
        return "E006", f"the string holds U+{ord(bad.group()):04X}, which no target can take"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return "E007", f"the number is {value}, which no target can take"
    if isinstance(value, int) and value not in _INT_RANGE:
        return "E007", "the integer does not fit in 64 bits"
    return None


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


# Up to this many members a scan beats building an index; a hostile object with 100,000 keys
# must not make every lookup (one per diagnostic) a scan.
_SCAN_MEMBERS = 16


@dataclass(frozen=True, slots=True)
class JObject:
    """An object; its members keep source order and hold no duplicate keys."""

    span: Span
    members: tuple[JMember, ...]
    _index: dict[str, JMember] | None = field(default=None, init=False, repr=False, compare=False)

    def member(self, key: str) -> JMember | None:
        if len(self.members) <= _SCAN_MEMBERS:
            for m in self.members:
                if m.key == key:
                    return m
            return None
        index = self._index
        if index is None:
            index = {m.key: m for m in self.members}
            object.__setattr__(self, "_index", index)
        return index.get(key)

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
