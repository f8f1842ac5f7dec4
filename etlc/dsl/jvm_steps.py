"""JVM step classes as the compiler knows them: the JSON Schemas of their options.

A JVM class cannot be loaded at compile time (``etlc lint`` runs without Java), so what the
compiler knows of one is the schema of its options, ``schemas/jvm/<fully.qualified.Class>.json``.
etlc ships its own classes' schemas, and the jar's build copies the very same files into the
jar, where each class reads the schema it declares: the compiler and the class check one schema.
A project adds its own classes' schemas in its ``schemas/jvm/`` folder.

Besides JSON Schema, a top-level property may say ``"etlc.column": true``: its value (a string,
or an array of strings) names columns of the step's input, which the checker looks up.

A project's schema is input like its definitions: it is read through ``project_files`` (only a
Java class name becomes a file name, inside the schema folders, at most 1 MiB) and must be
usable by etlc's dialect (``schema_dialect``): ``$ref`` only inside itself, patterns RE2 runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema.exceptions import SchemaError

from etlc.dsl.project_files import ProjectFileError, decode_json, find, read_project_file
from etlc.dsl.resources import jvm_steps_path
from etlc.dsl.schema_dialect import (
    PatternError,
    WorkExceededError,
    check_schema,
    unresolvable_ref,
)

ETLC_PACKAGE = "etlc.jvm."
_DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
COLUMN_ANNOTATION = "etlc.column"

# What the JVM can load: dot-separated Java identifiers (ASCII, as the definition schema has
# it). Only such a name becomes a file name: `../../x` or `a/b` never does.
_JAVA_CLASS = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*\Z")
_HINT = "fix or remove the file"
_OWN_ID = "urn:etlc:options-schema"


class OptionsSchemaError(Exception):
    """An options schema that cannot be used: E205 (unreadable, not JSON, not a schema etlc can
    use), E214 (outside the schema folders), E005 (too large), E006/E007 (refused values)."""

    def __init__(self, message: str, code: str = "E205", hint: str = _HINT) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint

    @classmethod
    def of(cls, exc: ProjectFileError) -> OptionsSchemaError:
        return cls(exc.message, exc.code or "E205", exc.hint or _HINT)


@dataclass(frozen=True)
class OptionsSchema:
    path: Path
    schema: Mapping[str, Any]
    # A schema whose one property, `options`, is this one: validating the options as a
    # property makes messages say `options.keys`, not `keys`. One object per schema, so the
    # validator built for it is reused (schema_validation caches by identity).
    wrapper: Mapping[str, Any]

    def column_options(self) -> list[str]:
        """The top-level options whose values name columns of the input."""
        props = self.schema.get("properties", {})
        return [k for k, v in props.items() if isinstance(v, Mapping) and v.get(COLUMN_ANNOTATION)]


def schema_file(class_name: str, dirs: Iterable[Path], roots: Sequence[Path] = ()) -> Path | None:
    """Where the options schema of ``class_name`` is: the first of ``dirs`` that has it,
    else etlc's own. Raises ``OptionsSchemaError`` (E214) for a name that is no Java class
    name, or a file that is a symlink leaving its folder."""
    if not _JAVA_CLASS.match(class_name):
        raise OptionsSchemaError(
            "the class name is not a Java class name, so it names no options schema",
            "E214",
            "write a fully qualified class name, e.g. `com.example.steps.Dedupe`",
        )
    try:
        return find(f"{class_name}.json", (*dirs, jvm_steps_path()), roots=roots)
    except ProjectFileError as exc:
        raise OptionsSchemaError.of(exc) from None


def load_options_schema(path: Path) -> OptionsSchema:
    try:
        data = read_project_file(path, str(path))
    except ProjectFileError as exc:
        raise OptionsSchemaError.of(exc) from None
    # Once per content of the file: lint checks many steps of the same class.
    return _load(path, data)


@lru_cache(maxsize=32)
def _load(path: Path, data: bytes) -> OptionsSchema:
    try:
        schema = decode_json(data, str(path))
    except ProjectFileError as exc:
        raise OptionsSchemaError.of(exc) from None
    if not isinstance(schema, dict):
        raise OptionsSchemaError(f"{path} is not a JSON Schema object")
    _check(path, schema)
    # Its own `$id`, so that its `#...` references resolve in it, not in the wrapper.
    inner = {"$id": _OWN_ID, **{k: v for k, v in schema.items() if k != "$schema"}}
    return OptionsSchema(path, schema, {"type": "object", "properties": {"options": inner}})


def _check(path: Path, schema: dict[str, Any]) -> None:
    """Refuse a schema etlc's dialect cannot use safely, saying why in one line."""
    # jsonschema validates a subschema that names its own `$schema` with that draft's stock
    # validator: Python's regex engine, no work budget. The whole file is Draft 2020-12.
    draft = schema.get("$schema")
    nested = _uses({k: v for k, v in schema.items() if k != "$schema"}, "$schema")
    if nested or (draft is not None and str(draft).rstrip("#") != _DRAFT_2020_12):
        raise OptionsSchemaError(
            f"{path}: `$schema` may name only Draft 2020-12, and only at the top",
            hint="remove `$schema` from subschemas: etlc reads the whole file as Draft 2020-12",
        )
    for keyword in ("unevaluatedProperties", "unevaluatedItems"):
        # Evaluated by walking every subschema they can reach, outside the work budget.
        if _uses(schema, keyword):
            raise OptionsSchemaError(
                f"{path}: `{keyword}` is not supported in options schemas",
                hint="use `additionalProperties` or `items`",
            )
    try:
        check_schema(schema)
    except SchemaError as exc:
        if exc.validator == "format" and isinstance(exc.cause, PatternError):
            raise OptionsSchemaError(
                f"{path}: the pattern `{exc.instance}` cannot be used ({exc.cause})",
                hint="etlc matches patterns with RE2: no backreferences or lookaround",
            ) from None
        raise OptionsSchemaError(f"{path} is not a valid JSON Schema: {exc.message}") from None
    except (WorkExceededError, RecursionError):
        raise OptionsSchemaError(f"{path} is too large or too deeply nested to check") from None
    ref = unresolvable_ref(schema)
    if ref is not None:
        raise OptionsSchemaError(
            f"{path}: `$ref` `{ref}` does not point inside the schema",
            hint="an options schema refers only to its own parts, e.g. `#/$defs/key`",
        )


@cache
def shipped_classes() -> tuple[str, ...]:
    """The step classes of etlc's own JVM module (each has its options schema here)."""
    return tuple(sorted(p.name.removesuffix(".json") for p in jvm_steps_path().glob("*.json")))


def _uses(schema: Any, keyword: str) -> bool:
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if keyword in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False
