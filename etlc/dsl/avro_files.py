"""A definition's Avro schema files (``.avsc``): found in the schema folders, read confined to
them, parsed once per version of the file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from etlc.dsl import ast
from etlc.dsl.diagnostics import Diagnostic, diag
from etlc.dsl.project_files import ProjectFileError, decode_json, find, read_project_file
from etlc.dsl.steps.contract import CheckOptions
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
        return diag(
            "E205",
            f"invalid Avro schema {found} at {loaded.path}: {loaded}",
            ref.span,
            "see the Avro specification; etlc supports flat records",
        )
    assert loaded is not None
    return loaded


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
