"""JSON-Schema validation of a positioned tree, one diagnostic per problem, at its source span.

jsonschema reports errors against JSON paths; the tree maps each path back to a span. Every
error is reported (``iter_errors``), not just the first, so one run shows all shape mistakes.
Validators are etlc's dialect (``schema_dialect``): ``$ref`` only inside the schema, RE2
patterns, and a work budget proportional to the document, so a hostile schema or document
ends in a diagnostic rather than a hang.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from jsonschema.exceptions import ValidationError, best_match
from referencing.exceptions import Unresolvable

from etlc.dsl.diagnostics import Diagnostic, Span, diag, did_you_mean, sort_key
from etlc.dsl.schema_dialect import (
    WorkExceededError,
    additional_keys,
    budget,
    size_units,
    validator_for,
    work_for,
)
from etlc.dsl.tree import JValue, key_span, locate, to_python

Path = tuple[str | int, ...]

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CHOICES = 1000
# Far more than anyone reads; stopping there keeps lint of 1 MiB of broken steps fast.
MAX_ERRORS = 1000
_TYPE_NAMES = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
# bool before int: True is an int to Python but not to JSON Schema.
_JSON_TYPES: tuple[tuple[str, type], ...] = (
    ("boolean", bool),
    ("integer", int),
    ("number", float),
    ("string", str),
    ("object", dict),
    ("array", list),
)
_CLOSED = ("additionalProperties", "unevaluatedProperties")  # when `false`: no other keys
_BOUNDS = {
    "minimum": "at least",
    "maximum": "at most",
    "exclusiveMinimum": "greater than",
    "exclusiveMaximum": "less than",
    "multipleOf": "a multiple of",
}
_SIZES = {  # keyword: (at least/at most, unit)
    "minLength": ("at least", "character"),
    "maxLength": ("at most", "character"),
    "minItems": ("at least", "item"),
    "maxItems": ("at most", "item"),
    "minProperties": ("at least", "key"),
    "maxProperties": ("at most", "key"),
}


def validate(root: JValue, schema: Mapping[str, Any], file: str) -> list[Diagnostic]:
    """Every way ``root`` breaks ``schema`` (Draft 2020-12), sorted by position.

    Spans come from the tree; ``file`` only names the file when no node matches a path. When
    validation could not finish (over MAX_ERRORS errors, over its work budget, a schema that
    loops or refers outside itself), the last diagnostic has the parameter ``incomplete``:
    parts of the document were not checked, so nothing may be built from it.
    """
    validator, step_types = _prepared(schema)
    converter = _Converter(root, file, step_types)
    found: dict[tuple[str, Span, str], _Found] = {}
    stopped: Diagnostic | None = None
    allowed = 0
    try:
        document = to_python(root)  # recursive: inside the RecursionError handler
        allowed = work_for(size_units(document))
        with budget(allowed):
            for count, error in enumerate(validator.iter_errors(document)):
                if count == MAX_ERRORS:
                    why = f"more than {MAX_ERRORS} problems; fix these first"
                    stopped = _unusable(root, why, "the rest of the document was not checked")
                    break
                for f in converter.convert(error):
                    # Several subschemas (allOf branches, a $ref and its user) can flag the
                    # same thing.
                    key = (f.diagnostic.code, f.diagnostic.span, f.diagnostic.message)
                    found.setdefault(key, f)
    except WorkExceededError as exc:
        if exc.matching:
            why = f"matching its strings against the schema's patterns costs over {exc.budget}"
            hint = "shorten the long strings, or simplify the patterns they are matched against"
        else:
            why = f"validating it takes more than {allowed} steps"
            hint = "simplify the schema's anyOf/oneOf/$ref nesting"
        stopped = _unusable(root, why, hint)
    except RecursionError:
        # The document is at most MAX_DEPTH deep; a schema whose $ref loops can still recurse.
        why = "the schema refers to itself without end"
        stopped = _unusable(root, why, "make each $ref loop go one level into the document")
    except Unresolvable as exc:
        why = f"the schema's `$ref` `{exc}` points outside it"
        stopped = _unusable(root, why, "refer only inside the schema: `#/$defs/...`")
    # By step path: each finding looks up its own path's prefixes, not every untyped step.
    untyped: dict[Path, list[tuple[Any, ...]]] = {}
    for f in found.values():
        if f.step_schema is not None:
            untyped.setdefault(f.path, []).append(f.step_schema)
    kept = [f.diagnostic for f in found.values() if not _follows_untyped(f, untyped)]
    return sorted(kept, key=sort_key) + ([stopped] if stopped else [])


def _follows_untyped(found: _Found, untyped: Mapping[Path, list[tuple[Any, ...]]]) -> bool:
    for n in range(len(found.path) + 1):
        step = found.path[:n]
        if any(found.follows(step, schema) for schema in untyped.get(step, ())):
            return True
    return False


def _unusable(root: JValue, why: str, hint: str) -> Diagnostic:
    message = f"the document cannot be validated completely: {why}"
    return diag("E106", message, root.span, hint, incomplete=True)


# A validator and the step-type schemas per schema object: `etlc lint` of many files checks
# them all against the one schema, and building both took as long as validating.
_PREPARED: list[tuple[Mapping[str, Any], Any, list[Any]]] = []


def _prepared(schema: Mapping[str, Any]) -> tuple[Any, list[Any]]:
    for known, validator, step_types in _PREPARED:
        if known is schema:
            return validator, step_types
    prepared = (schema, validator_for(schema), _step_type_schemas(schema))
    _PREPARED[:] = [*_PREPARED[-3:], prepared]
    return prepared[1], prepared[2]


@dataclass(frozen=True)
class _Found:
    diagnostic: Diagnostic
    path: Path  # the object's for unknown keys and step types, else the value's
    schema_path: tuple[Any, ...]
    # On an unknown or missing step type: where the step's schema is in the schema.
    step_schema: tuple[Any, ...] | None = None

    def follows(self, step: Path, step_schema: tuple[Any, ...]) -> bool:
        """Whether this only follows from the type of the step at ``step`` being unknown: an
        unknown key, or a complaint from a type's branch (``then``) of the step schema."""
        if self.path[: len(step)] != step:
            return False
        if self.diagnostic.code == "E101":
            return True
        n = len(step_schema)
        return self.schema_path[:n] == step_schema and "then" in self.schema_path[n:]


def json_path(path: Sequence[str | int]) -> str:
    """``transform[1].group_by``; keys that are not identifiers are quoted: ``columns["a b"]``."""
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENTIFIER.match(step):
            out += f".{step}" if out else step
        else:
            out += f"[{json.dumps(step)}]"
    return out


def _subject(path: Sequence[str | int]) -> str:
    return f"`{json_path(path)}`" if path else "the document"


def _where(path: Sequence[str | int]) -> str:
    return f"in `{json_path(path)}`" if path else "at the top level"


def _json_type(value: Any) -> str:
    return next((name for name, kind in _JSON_TYPES if isinstance(value, kind)), "null")


# A property whose value lint never echoes, in its message or the excerpt under it: it may
# hold a credential by mistake (a URL's user and password).
CONCEALED = "x-etlc-conceal"
CONCEALED_PARAM = "concealed"
_CONCEALED_WHY = {
    "pattern": "its value is not shown: it may hold a credential",
}


def _concealed(error: ValidationError) -> bool:
    return isinstance(error.schema, Mapping) and bool(error.schema.get(CONCEALED))


def _show(value: Any) -> str:
    if isinstance(value, dict | list):
        return _TYPE_NAMES[_json_type(value)]
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text[:60]}...`" if len(text) > 60 else f"`{text}`"


def _dig(node: Any, *keys: str) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _step_type_schemas(schema: Mapping[str, Any]) -> list[Any]:
    """The ``type`` property schemas of step objects: objects whose ``allOf`` picks a branch
    with ``if: {properties: {type: {const: ...}}}``."""
    found: list[Any] = []
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            branches = node.get("allOf")
            type_schema = _dig(node, "properties", "type")
            if (
                isinstance(type_schema, Mapping)
                and isinstance(branches, list)
                and any(_dig(b, "if", "properties", "type", "const") is not None for b in branches)
            ):
                found.append(type_schema)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


class _Converter:
    def __init__(self, root: JValue, file: str, step_types: list[Any]) -> None:
        self.root = root
        self.file = file
        self.step_types = step_types

    def at(self, path: Sequence[str | int]) -> Span:
        node = locate(self.root, path)
        return Span.point(self.file) if node is None else node.span

    def at_key(self, path: Sequence[str | int], key: str) -> Span:
        return key_span(self.root, path, key) or self.at(path)

    def convert(self, error: ValidationError) -> Iterator[_Found]:
        if error.context:  # anyOf/oneOf: the branch that came closest says the most
            error = best_match([error])
        for found in self._convert(error):
            if not _concealed(error):
                yield found
                continue
            # The excerpt under the message masks the value.
            d = found.diagnostic
            yield replace(
                found, diagnostic=replace(d, params=(*d.params, (CONCEALED_PARAM, "yes")))
            )

    def _convert(self, error: ValidationError) -> Iterator[_Found]:
        path: Path = tuple(error.absolute_path)
        where: tuple[Any, ...] = tuple(error.absolute_schema_path)
        keyword, expected, value = error.validator, error.validator_value, error.instance
        subject = _subject(path)

        if keyword in _CLOSED and expected is False and isinstance(value, dict):
            allowed = error.schema.get("properties", {})
            for key in _unexpected_keys(error, allowed, value):
                yield _Found(self.unknown_key(path, key, allowed, value), path, where)
        elif keyword == "required" and isinstance(value, dict):
            type_schema = _dig(error.schema, "properties", "type")
            for key in expected:
                if key in value:
                    continue
                if key == "type" and type_schema in self.step_types:
                    kinds = ", ".join(f"`{c}`" for c in type_schema.get("enum", []))
                    d = self.missing_key(path, key, f'add "type": one of {kinds}')
                    yield _Found(d, path, where, step_schema=where[:-1])
                else:
                    yield _Found(self.missing_key(path, key, f'add "{key}"'), path, where)
        elif keyword == "type":
            types = [expected] if isinstance(expected, str) else list(expected)
            wanted = " or ".join(_TYPE_NAMES.get(t, t) for t in types)
            message = f"{subject} must be {wanted}, got {_json_type(value)}"
            yield _Found(diag("E102", message, self.at(path), path=json_path(path)), path, where)
        elif keyword in ("enum", "const"):
            choices = list(expected) if keyword == "enum" else [expected]
            d = self.bad_choice(path, value, choices, error.schema)
            if d.code == "E105":  # where[-3:] is ("properties", "type", "enum")
                yield _Found(d, path[:-1], where, step_schema=where[:-3])
            else:
                yield _Found(d, path, where)
        elif "propertyNames" in where and isinstance(value, str):
            # The key itself is the instance; the path stops at its object.
            message = f"key `{value}` {_where(path)} is not allowed: {self.readable(error)}"
            span = self.at_key(path, value)
            yield _Found(diag("E106", message, span, path=json_path(path)), path, where)
        elif keyword == "uniqueItems" and isinstance(value, list):
            index = _first_repeat(value)
            if index is None:  # jsonschema also equates 1 and 1.0; the JSON texts differ
                message, span = f"{subject} has repeated items", self.at(path)
            else:
                message = f"{subject} lists {_show(value[index])} more than once"
                span = self.at([*path, index])
            d = diag("E106", message, span, "remove the repeat", path=json_path(path))
            yield _Found(d, path, where)
        else:
            message = f"{subject} {self.readable(error)}"
            yield _Found(diag("E106", message, self.at(path), path=json_path(path)), path, where)

    def unknown_key(
        self, path: Path, key: str, allowed: Mapping[str, Any], present: Mapping[str, Any]
    ) -> Diagnostic:
        # Keys already present are valid and wanted; suggesting one would be a bad hint.
        candidates = [k for k in allowed if k not in present]
        return diag(
            "E101",
            f"unknown key `{key}` {_where(path)}",
            self.at_key(path, key),
            did_you_mean(key, candidates) or "remove it",
            key=key,
            path=json_path(path),
        )

    def missing_key(self, path: Path, key: str, hint: str) -> Diagnostic:
        return diag(
            "E103",
            f"missing required key `{key}` {_where(path)}",
            self.at(path),
            hint,
            key=key,
            path=json_path(path),
        )

    def bad_choice(self, path: Path, value: Any, choices: list[Any], schema: Any) -> Diagnostic:
        # A schema may list thousands of choices; a hint and a message need a few.
        words = [c if isinstance(c, str) else json.dumps(c) for c in choices[:_CHOICES]]
        got = value if isinstance(value, str) else json.dumps(value)
        hint = did_you_mean(got, words)
        span = self.at(path)
        if path and path[-1] == "type" and schema in self.step_types:
            message = f"unknown step type {_show(value)}"
            return diag("E105", message, span, hint, type=got, path=json_path(path[:-1]))
        shown = ", ".join(f"`{w}`" for w in words[:12]) + (", ..." if len(choices) > 12 else "")
        wanted = f"one of {shown}" if len(choices) > 1 else shown
        message = f"{_subject(path)} must be {wanted}, got {_show(value)}"
        return diag("E104", message, span, hint, value=got, path=json_path(path))

    def readable(self, error: ValidationError) -> str:
        """The rest of a sentence about the value (after its path), for other keywords."""
        keyword, expected, value = error.validator, error.validator_value, error.instance
        if _concealed(error):
            # A value that may carry a credential (a URL's user and password) is not echoed.
            return f"is not valid here ({_CONCEALED_WHY.get(keyword, 'see its description')})"
        if keyword in _BOUNDS:
            return f"must be {_BOUNDS[keyword]} {expected}, got {_show(value)}"
        if keyword in _SIZES:
            bound, unit = _SIZES[keyword]
            if keyword.startswith("min") and expected == 1:
                return "must not be empty"
            return f"must have {bound} {expected} {unit}{'' if expected == 1 else 's'}"
        if keyword == "pattern":
            return f"must match the pattern `{expected}`, got {_show(value)}"
        if keyword == "oneOf" and not error.context:
            return "matches more than one of the allowed forms"
        if keyword in ("anyOf", "oneOf"):
            return "does not match any of the allowed forms"
        if keyword == "not":
            return f"must not be {_show(value)} here"
        # jsonschema's own message starts with the value's repr, which may be long.
        message = str(error.message)
        return "is invalid: " + (message if len(message) <= 120 else message[:117] + "...")


def _unexpected_keys(
    error: ValidationError, allowed: Mapping[str, Any], obj: Mapping[str, Any]
) -> list[str]:
    if error.validator == "additionalProperties":
        return additional_keys(obj, error.schema)
    # Which keys no subschema evaluated, jsonschema only says in its message: their reprs,
    # sorted, joined by ", ". Reading them back in that order takes one pass over the message.
    message = str(error.message)
    at = message.find("(") + 1
    found: list[str] = []
    for key in sorted(obj, key=str):
        shown = repr(key)
        if (
            message.startswith(shown, at)
            and message[at + len(shown) : at + len(shown) + 1] in ",)" + " "
        ):
            found.append(key)
            at += len(shown) + 2
    return found


def _first_repeat(items: list[Any]) -> int | None:
    seen: set[str] = set()
    for i, item in enumerate(items):
        # A canonical text: equal JSON values get equal keys whatever their key order.
        text = json.dumps(item, sort_keys=True)
        if text in seen:
            return i
        seen.add(text)
    return None
