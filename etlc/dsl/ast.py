"""The definition AST: frozen dataclasses that keep the source span of every value.

Nodes are built from the positioned JSON tree *after* JSON-Schema validation, so the builder
only converts; the schema (``schemas/pipeline.schema.json``) stays the single source of truth
for shape. Each step kind's node is a typed dataclass in the kind's own module
(``etlc.dsl.steps``), built from the tree by its field annotations (:func:`build_node`); this
module holds what every kind shares.
"""

from __future__ import annotations

import keyword
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

from etlc.dsl.diagnostics import Span
from etlc.dsl.tree import JArray, JObject, JScalar, JValue, to_python


@dataclass(frozen=True)
class Name:
    """A string value with its position (ids, references, paths, formats...)."""

    value: str
    span: Span


@dataclass(frozen=True)
class Expr:
    """A Spark SQL expression string as written, with the span of its JSON string token."""

    text: str
    span: Span


@dataclass(frozen=True)
class Number:
    value: int | float
    span: Span


@dataclass(frozen=True)
class Flag:
    value: bool
    span: Span


Scalar = Name | Number | Flag


@dataclass(frozen=True)
class JsonValue:
    """A JSON value kept as written (a JVM step's options): plain data, and its positioned
    tree so that checks against a schema known only later can still point into it."""

    value: Any
    tree: JValue
    span: Span


def json_key(field_name: str) -> str:
    """The definition key of an AST field: a Python keyword is escaped with a trailing
    underscore (`class_` holds `class`), as PEP 8 suggests."""
    bare = field_name[:-1]
    return bare if field_name.endswith("_") and keyword.iskeyword(bare) else field_name


@dataclass(frozen=True, kw_only=True)
class Expectation:
    """One rule of an ``expect`` block: a condition true for a good record, and what a record
    that breaks it does to the run (None: the block's policy)."""

    name: Name
    check: Expr
    policy: Name | None = None
    span: Span


@dataclass(frozen=True, kw_only=True)
class Expectations:
    """A step's ``expect`` block: its rules, in the order written, and their default policy."""

    rules: tuple[Expectation, ...]
    policy: Name | None = None
    span: Span


@dataclass(frozen=True, kw_only=True)
class Step:
    role: ClassVar[str] = ""
    id: Name
    type: Name
    span: Span
    # What every record of the step's output should meet (extracts and transforms).
    expect: Expectations | None = None
    # An extract's policy for records that break its Avro schema (None: fail).
    on_invalid: Name | None = None
    # A load of the records its input's quarantine rules set aside, not of its valid ones.
    quarantined: Flag | None = None

    def inputs(self) -> list[Name]:
        return []


# Keys the framework reads on a third-party step; the rest are the plugin's own options.
PLUGIN_KEYS = frozenset({"id", "type", "input", "inputs", "schema", "mode", "keys"})


@dataclass(frozen=True, kw_only=True)
class PluginStep(Step):
    """A step of a type registered by an installed plugin (``etlc.plugins`` entry point)."""

    role_name: str
    input_refs: tuple[Name, ...] = ()
    schema: Name | None = None
    mode: Name | None = None
    keys: tuple[Name, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    option_spans: Mapping[str, Span] = field(default_factory=dict)

    @property
    def role(self) -> str:  # type: ignore[override]
        return self.role_name

    def inputs(self) -> list[Name]:
        return list(self.input_refs)


def build_plugin_step(role: str, obj: JObject, step_id: Name) -> PluginStep:
    """A plugin step: framework keys typed, everything else kept as the plugin's options."""
    type_node = obj.get("type")
    assert isinstance(type_node, JScalar)
    refs: list[Name] = []
    for key in ("input", "inputs"):
        node = obj.get(key)
        if isinstance(node, JScalar):
            refs.append(Name(str(node.value), node.span))
        elif isinstance(node, JArray):
            refs.extend(Name(str(i.value), i.span) for i in node.items if isinstance(i, JScalar))
    schema, mode = obj.get("schema"), obj.get("mode")
    keys = obj.get("keys")
    return PluginStep(
        id=step_id,
        type=Name(str(type_node.value), type_node.span),
        span=obj.span,
        role_name=role,
        input_refs=tuple(refs),
        schema=Name(str(schema.value), schema.span) if isinstance(schema, JScalar) else None,
        mode=Name(str(mode.value), mode.span) if isinstance(mode, JScalar) else None,
        keys=tuple(_convert(tuple[Name, ...], keys)) if isinstance(keys, JArray) else (),
        options={m.key: to_python(m.value) for m in obj.members if m.key not in PLUGIN_KEYS},
        option_spans={m.key: m.value.span for m in obj.members if m.key not in PLUGIN_KEYS},
    )


@dataclass(frozen=True)
class Retry:
    max_retries: int = 3
    delay_seconds: float = 5.0


@dataclass(frozen=True)
class Pipeline:
    file: str
    name: Name
    mode: str
    extracts: tuple[Step, ...]
    transforms: tuple[Step, ...]
    loads: tuple[Step, ...]
    retry: Retry
    span: Span

    def steps(self) -> tuple[Step, ...]:
        return self.extracts + self.transforms + self.loads


# --- building nodes from the positioned tree ------------------------------------------

N = TypeVar("N")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def build_node(cls: type[N], obj: JObject, **extra: Any) -> N:
    """Convert a schema-valid object into ``cls`` by its field annotations."""
    hints = _hints(cls)
    kwargs: dict[str, Any] = dict(extra)
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in kwargs:
            continue
        if f.name == "span":
            kwargs["span"] = obj.span
            continue
        value = obj.get(json_key(f.name))
        if value is not None:
            kwargs[f.name] = _convert(hints[f.name], value)
    return cls(**kwargs)


def _convert(hint: Any, node: JValue) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        non_none = [a for a in args if a is not type(None)]
        if non_none == [Name, Number, Flag] or set(non_none) == {Name, Number, Flag}:
            return _scalar(node)
        return _convert(non_none[0], node)
    if origin is tuple:
        assert isinstance(node, JArray)
        return tuple(_convert(args[0], item) for item in node.items)
    if origin in (Mapping, dict) or hint is Mapping:
        assert isinstance(node, JObject)
        # Validation reports an unknown key (E101) and keeps the step; in a map of scalars
        # (Spark options) such a key may hold an object or an array, which is left out here.
        scalars = _convert_scalars(args[1])
        return {
            m.key: _convert(args[1], m.value)
            for m in node.members
            if not scalars or isinstance(m.value, JScalar)
        }
    if hint is Name:
        assert isinstance(node, JScalar)
        return Name(str(node.value), node.span)
    if hint is Expr:
        assert isinstance(node, JScalar)
        return Expr(str(node.value), node.span)
    if hint is Flag:
        assert isinstance(node, JScalar)
        return Flag(bool(node.value), node.span)
    if hint is Number:
        assert isinstance(node, JScalar) and isinstance(node.value, int | float)
        return Number(node.value, node.span)
    if hint is JsonValue:
        return JsonValue(to_python(node), node, node.span)
    if isinstance(hint, type) and isinstance(node, JObject):
        return build_node(hint, node)
    raise TypeError(f"no conversion for {hint!r}")  # a schema/AST mismatch: a bug, not input


def _convert_scalars(hint: Any) -> bool:
    return typing.get_origin(hint) in (types.UnionType, typing.Union) and set(
        typing.get_args(hint)
    ) <= {Name, Number, Flag, type(None)}


def _scalar(node: JValue) -> Scalar:
    assert isinstance(node, JScalar)
    if isinstance(node.value, bool):
        return Flag(node.value, node.span)
    if isinstance(node.value, int | float):
        return Number(node.value, node.span)
    return Name(str(node.value), node.span)
