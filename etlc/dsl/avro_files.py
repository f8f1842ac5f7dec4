"""A definition's Avro schema files (``.avsc``): found in the schema folders, read confined to
them, parsed once per version of the file."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, Span, diag
from etlc.dsl.parse import parse_text
from etlc.dsl.project_files import ProjectFileError, decode_json, find, read_project_file
from etlc.dsl.steps.contract import CheckOptions
from etlc.dsl.tree import JArray, JObject
from etlc.dsl.types import AvroSchemaError, RecordSchema, parse_avro_schema


def load_avro(ref: ast.Name, options: CheckOptions) -> RecordSchema | Diagnostic:
    """The schema file ``ref`` names, or the one diagnostic saying why it cannot be used."""
    try:
        found = find(ref.value, options.schema_dirs, suffix=".avsc", roots=options.project_roots)
        loaded = None if found is None else _avro_schema(found, f"`{ref.value}`")
    except ProjectFileError as exc:
        # Only what is wrong and where: never the file's text, which may be anyone's.
        return diag(exc.code or "E205", exc.message, ref.span, exc.hint, schema=ref.value)
    if found is None:
        return diag(
            "E204",
            f"schema file `{ref.value}` not found",
            ref.span,
            "looked in " + ", ".join(str(d) for d in options.schema_dirs),
            schema=ref.value,
        )
    if isinstance(loaded, AvroSchemaError):
        # Reported where it is wrong, in the schema file, when that place can be found; named
        # from the folder lint runs in, as CI annotations need.
        shown = found.relative_to(Path.cwd()) if found.is_relative_to(Path.cwd()) else found
        return diag(
            "E205",
            f"invalid Avro schema {shown} at {loaded.path}: {loaded} (used as `{ref.value}`)",
            schema_span(found, str(shown), loaded.path) or ref.span,
            "see the Avro specification; etlc supports flat records",
        )
    assert loaded is not None
    return loaded


_STEP = re.compile(r"\.([^.\[]+)|\[([0-9]+)\]")


def schema_span(path: Path, shown: str, where: str) -> Span | None:
    """Where ``where`` (``$.fields[2].type``, as an :class:`AvroSchemaError` names it) is in
    the schema file ``path`` (named ``shown``): that value's span, or None if not found."""
    try:
        text = read_project_file(path, shown).decode("utf-8-sig")
    except (ProjectFileError, UnicodeDecodeError):
        return None
    tree, _ = parse_text(text, shown, "json")
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2))
        for m in _STEP.finditer(where.removeprefix("$"))
    ]
    node = tree
    while node is not None and steps:
        step = steps.pop(0)
        if isinstance(node, JObject) and isinstance(step, str):
            # A key holding dots (`etlc.rules`) was split by the path's notation.
            key = step
            while node.get(key) is None and steps and isinstance(steps[0], str):
                key = f"{key}.{steps.pop(0)}"
            node = node.get(key)
        elif isinstance(node, JArray) and isinstance(step, int) and step < len(node.items):
            node = node.items[step]
        else:
            node = None
    return None if node is None else node.span


def _avro_schema(path: Path, shown: str) -> RecordSchema | AvroSchemaError:
    """A project's ``.avsc``, parsed once per version of the file (a definition may name it in
    thousands of steps); raises ``ProjectFileError`` if the file is refused."""
    loaded = _parsed_avro(read_project_file(path, shown), shown)
    if isinstance(loaded, ProjectFileError):
        raise loaded
    return loaded


@lru_cache(maxsize=32)
def _parsed_avro(data: bytes, shown: str) -> RecordSchema | AvroSchemaError | ProjectFileError:
    # By the bytes object read_project_file keeps per version: hashed once, then shared.
    try:
        return parse_avro_schema(decode_json(data, shown))
    except (AvroSchemaError, ProjectFileError) as exc:
        return exc
