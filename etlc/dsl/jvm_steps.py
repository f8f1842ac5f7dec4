"""JVM step classes as the compiler knows them: the JSON Schemas of their options.

A JVM class cannot be loaded at compile time (``etlc lint`` runs without Java), so what the
compiler knows of one is the schema of its options, ``schemas/jvm/<fully.qualified.Class>.json``.
etlc ships its own classes' schemas, and the jar's build copies the very same files into the
jar, where each class reads the schema it declares: the compiler and the class check one schema.
A project adds its own classes' schemas in its ``schemas/jvm/`` folder.

Besides JSON Schema, a top-level property may say ``"etlc.column": true``: its value (a string,
or an array of strings) names columns of the step's input, which the checker looks up.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from etlc.dsl.resources import jvm_steps_path

ETLC_PACKAGE = "etlc.jvm."
COLUMN_ANNOTATION = "etlc.column"


class OptionsSchemaError(Exception):
    """An options schema file that cannot be used (unreadable, not JSON, not a schema)."""


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


def schema_file(class_name: str, dirs: Iterable[Path]) -> Path | None:
    """Where the options schema of ``class_name`` is: the first of ``dirs`` that has it,
    else etlc's own."""
    for d in (*dirs, jvm_steps_path()):
        candidate = d / f"{class_name}.json"
        if candidate.is_file():
            return candidate
    return None


def load_options_schema(path: Path) -> OptionsSchema:
    try:
        stat = path.stat()
    except OSError as exc:
        raise OptionsSchemaError(f"cannot read {path}: {exc}") from exc
    # Once per version of the file: lint checks many steps of the same class.
    return _load(path, stat.st_mtime_ns, stat.st_size)


@cache
def _load(path: Path, mtime_ns: int, size: int) -> OptionsSchema:
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OptionsSchemaError(f"cannot read {path}: {exc}") from exc
    if not isinstance(schema, dict):
        raise OptionsSchemaError(f"{path} is not a JSON Schema object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise OptionsSchemaError(f"{path} is not a valid JSON Schema: {exc.message}") from exc
    inner = {k: v for k, v in schema.items() if k != "$schema"}
    return OptionsSchema(path, schema, {"type": "object", "properties": {"options": inner}})


@cache
def shipped_classes() -> tuple[str, ...]:
    """The step classes of etlc's own JVM module (each has its options schema here)."""
    return tuple(sorted(p.name.removesuffix(".json") for p in jvm_steps_path().glob("*.json")))
