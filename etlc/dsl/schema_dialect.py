"""The JSON Schema dialect etlc validates with: Draft 2020-12, safe for a schema from anyone.

JVM options schemas come with the project, so a schema is input like a definition. Compared
with jsonschema's own Draft 2020-12 validator:

- ``$ref`` resolves only inside the same document: the registry retrieves nothing, so
  ``file:///etc/passwd`` or ``http://...`` is an error, never a read or a connection;
- ``pattern``, ``patternProperties`` and ``additionalProperties`` match with RE2, which runs in
  linear time (no catastrophic backtracking) and, as ECMA-262 which JSON Schema specifies, takes
  ``$`` for the end of the text only: ``^[a-z]+$`` refuses ``"evil\\n"``, which Python's ``re``
  accepts. ``format: regex`` (checked on schemas) compiles with RE2 too;
- ``uniqueItems`` and ``enum`` take linear time rather than quadratic;
- every keyword evaluation is counted against a budget (``budget``), so a schema whose
  ``anyOf``/``$ref`` nesting needs exponential work stops with ``WorkExceededError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any
from urllib.parse import urljoin

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema_specifications import REGISTRY as METASCHEMAS  # type: ignore[import-untyped]
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

Keyword = Callable[[Any, Any, Any, Mapping[str, Any]], Iterator[ValidationError] | None]


class WorkExceededError(Exception):
    """Validation needed more keyword evaluations (or pattern matching) than its budget."""

    def __init__(self, budget: int, matching: bool = False) -> None:
        super().__init__(f"validation needs more than {budget} steps")
        self.budget = budget
        self.matching = matching


class PatternError(ValueError):
    """A regular expression RE2 cannot run (backreferences, lookaround, too large)."""


def _refuse(uri: str) -> Any:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


# Combined by jsonschema with the metaschemas it ships (in memory); nothing else resolves.
REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]


@lru_cache(maxsize=1024)
def compiled(pattern: str) -> Any:
    """``pattern`` compiled by RE2; raises ``PatternError`` with RE2's reason."""
    options = re2.Options()
    options.log_errors = False  # else RE2 prints every refused pattern on stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not supported by RE2"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(str(reason)) from None


def matches(pattern: str, text: str) -> bool:
    """JSON Schema's match: a search anywhere in ``text``, anchors as ECMA-262 has them."""
    regex = compiled(pattern)
    meter = _METER.get()
    if meter is not None:
        meter.spend_matching(regex.programsize * max(1, len(text)))
    try:
        return regex.search(text) is not None
    except UnicodeEncodeError:  # a lone surrogate; parsing refuses them, so never in a tree
        return False


# --- the budget -----------------------------------------------------------------------------

_NO_LIMIT = -1
# Keyword evaluations allowed per value of the document (the definition schema needs about
# 15 on average, 30 at worst on an object of wrong keys), plus a base for small documents. At
# parse.MAX_VALUES values this bounds validation to seconds whatever the schema.
WORK_PER_VALUE = 60
WORK_BASE = 200_000


def work_for(values: int) -> int:
    """The budget for validating a document of ``values`` values."""
    return WORK_PER_VALUE * values + WORK_BASE


# RE2 runs in time linear in the text, but when a pattern's DFA would be too large it simulates
# the NFA, at a cost of program size times text length: `[ab]*a[ab]{900}c` over a 1 MB option
# took 5 s. Matching in one validation may cost this much of that product (about 2 s).
MATCHING_WORK = 300_000_000


class _Meter:
    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.left = budget
        self.matching_left = MATCHING_WORK

    def spend(self, units: int) -> None:
        if self.budget == _NO_LIMIT:
            return
        self.left -= units
        if self.left < 0:
            raise WorkExceededError(self.budget)

    def spend_matching(self, units: int) -> None:
        """Charged before a match is run, so an over-budget match never starts."""
        if self.budget == _NO_LIMIT:
            return
        self.matching_left -= units
        if self.matching_left < 0:
            raise WorkExceededError(MATCHING_WORK, matching=True)


_METER: ContextVar[_Meter | None] = ContextVar("_METER", default=None)


@contextmanager
def budget(units: int) -> Iterator[None]:
    """Validation inside this block may evaluate keywords for at most ``units`` units: one per
    evaluation, plus one per 8 members of the schema value or the instance it walks over."""
    token = _METER.set(_Meter(units))
    try:
        yield
    finally:
        _METER.reset(token)


_SIZED = (dict, list, str)


def _metered(keyword: Keyword) -> Keyword:
    def metered(validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
        units = 1
        if type(value) in _SIZED:
            units += len(value) >> 3
        if type(instance) in _SIZED:
            units += len(instance) >> 3
        meter = _METER.get()
        if meter is not None:
            meter.spend(units)
        return keyword(validator, value, instance, schema)

    return metered


# --- keywords -------------------------------------------------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Mapping[str, Any]) -> Any:
    if validator.is_type(instance, "string") and not matches(pattern, instance):
        yield ValidationError(f"{_short(instance)} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if matches(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def additional_keys(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The keys of ``instance`` neither ``properties`` nor ``patternProperties`` cover."""
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [
        key
        for key in instance
        if key not in properties and not any(matches(p, key) for p in patterns)
    ]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Any:
    if not validator.is_type(instance, "object"):
        return
    extras = additional_keys(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        # jsonschema's wording, which schema_validation reads the keys back from.
        listed = ", ".join(repr(extra) for extra in sorted(extras))
        verb = "was" if len(extras) == 1 else "were"
        yield ValidationError(f"Additional properties are not allowed ({listed} {verb} unexpected)")


def canonical(value: Any) -> Any:
    """A hashable stand-in equal for values JSON Schema calls equal: 1 and 1.0 alike, true
    and 1 not, objects whatever their key order."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)  # 1 == 1.0 and hash(1) == hash(1.0)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("a", tuple(canonical(v) for v in value))
    if isinstance(value, dict):
        return ("o", frozenset((k, canonical(v)) for k, v in value.items()))
    return ("z", None)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = canonical(item)
        if key in seen:
            yield ValidationError(f"{_short(instance)} has non-unique elements")
            return
        seen.add(key)


def _enum(validator: Any, enums: Any, instance: Any, schema: Mapping[str, Any]) -> Any:
    if canonical(instance) not in _canonical_set(enums):
        yield ValidationError(f"{_short(instance)} is not one of the allowed values")


# By identity of the schema's list (kept alive here, so its id is not reused): a schema's enum
# is looked up once per value it checks.
_ENUM_SETS: dict[int, tuple[Any, frozenset[Any]]] = {}


def _canonical_set(enums: Any) -> frozenset[Any]:
    known = _ENUM_SETS.get(id(enums))
    if known is not None and known[0] is enums:
        return known[1]
    if len(_ENUM_SETS) >= 4096:
        _ENUM_SETS.clear()
    found = frozenset(canonical(v) for v in enums)
    _ENUM_SETS[id(enums)] = (enums, found)
    return found


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_KEYWORDS: dict[str, Keyword] = {
    **Draft202012Validator.VALIDATORS,
    "pattern": _pattern,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "uniqueItems": _unique_items,
    "enum": _enum,
}

Validator: Any = validators.extend(
    Draft202012Validator, {k: _metered(f) for k, f in _KEYWORDS.items()}
)

# `format` is only asserted on schemas (a `pattern` must be a regex RE2 runs), never on
# documents: Draft 2020-12 makes it an annotation.
_SCHEMA_FORMATS = FormatChecker(formats=())


def _is_regex(instance: object) -> bool:
    if isinstance(instance, str):
        compiled(instance)
    return True


_SCHEMA_FORMATS.checks("regex", raises=PatternError)(_is_regex)


def validator_for(schema: Mapping[str, Any]) -> Any:
    """A validator of documents against ``schema`` (assumed valid: see ``check_schema``)."""
    return Validator(schema, registry=REGISTRY)


_META = Validator(
    Draft202012Validator.META_SCHEMA, registry=REGISTRY, format_checker=_SCHEMA_FORMATS
)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise ``SchemaError`` unless ``schema`` is a Draft 2020-12 schema whose patterns RE2
    runs. Checking retrieves nothing: the metaschemas are jsonschema's own copies."""
    with budget(work_for(size_units(schema))):
        error = best_match(_META.iter_errors(schema))
    if error is not None:
        raise SchemaError.create_from(error)


def unresolvable_ref(schema: Mapping[str, Any]) -> str | None:
    """The first ``$ref``/``$dynamicRef`` of ``schema`` that does not resolve inside it (None if
    all do): found when the schema is loaded rather than halfway through validating."""
    given = schema.get("$id")
    root = given if isinstance(given, str) else ""
    registry = METASCHEMAS.combine(REGISTRY).with_resource(
        root, DRAFT202012.create_resource(schema)
    )
    resolver = registry.crawl().resolver(base_uri=root)
    stack: list[tuple[Any, str]] = [(schema, root)]
    while stack:
        node, base = stack.pop()
        if isinstance(node, list):
            stack.extend((item, base) for item in node)
            continue
        if not isinstance(node, dict):
            continue
        if isinstance(node.get("$id"), str):
            base = urljoin(base, node["$id"])
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if isinstance(ref, str):
                try:
                    resolver.lookup(urljoin(base, ref))
                except Unresolvable:
                    return ref
        stack.extend((value, base) for value in node.values())
    return None


def size_units(value: Any) -> int:
    """A document's size in the budget's units: one per value, and one per 8 characters of a
    string or key (a keyword walks a string as it walks that many values)."""
    count, stack = 0, [value]
    while stack:
        node = stack.pop()
        count += 1
        if isinstance(node, dict):
            count += sum(len(k) >> 3 for k in node if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            count += len(node) >> 3
    return count
