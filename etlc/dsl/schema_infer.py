"""`etlc schema infer`: an Avro schema (``.avsc``) from sample data, without Spark or a JVM.

Reads up to ``max_rows`` records of a CSV file with a header, or of JSON lines (one object per
line), or of every such file in a folder, and gives each column the narrowest type all its
values take, the way a data engineer would write it by hand:

- ``true``/``false`` is a boolean; whole numbers are a long;
- numbers with a fraction that all have the same number of decimals are a decimal with that
  scale (and four digits of headroom over the widest value), others a double;
- ISO-8601 timestamps (``2026-01-02T16:12:55Z``, with fractions, an offset or none: what
  Spark reads as a timestamp by default)
  are a ``timestamp-micros``; ``2026-01-02`` is a date;
- text with few distinct values (at most ``enum_max``, each a valid Avro name, repeating) is an
  enum of them, sorted; other text is a string;
- a column with an empty value (CSV) or a null or missing key (JSON) is nullable.

Avro and Parquet files declare their columns: their writer's schema (Avro) or footer
(Parquet) gives the types and nullability as written, read without a record
(:mod:`etlc.dsl.file_schemas`); every file of a folder must declare the same.

The result is checked with etlc's own Avro parser before it is returned. Nested JSON values
have no flat column type and are refused, naming the column.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etlc.dsl.file_schemas import FileSchemaError, avro_file_fields, parquet_file_fields
from etlc.dsl.types import (
    AvroSchemaError,
    DataType,
    Field,
    RecordSchema,
    is_avro_name,
    parse_avro_schema,
)

FORMATS = ("csv", "json", "avro", "parquet")
_SUFFIXES = {
    "csv": (".csv",),
    "json": (".json", ".jsonl", ".ndjson"),
    "avro": (".avro",),
    "parquet": (".parquet",),
}
_DECLARED = {"avro": avro_file_fields, "parquet": parquet_file_fields}
# Numbers as Spark reads them; a leading zero (a zip code, an account number) keeps text text.
_INTEGER = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FIXED = re.compile(r"[-+]?(0|[1-9][0-9]*)\.([0-9]+)")
_FLOAT = re.compile(r"[-+]?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
    r"(Z|[-+][0-9]{2}:?[0-9]{2})?"
)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_LONG = (-(2**63), 2**63 - 1)
DECIMAL_HEADROOM = 4


class InferError(ValueError):
    """Sample data etlc cannot make a schema of; the message names the file and the column."""


@dataclass
class Column:
    """What the values of one column looked like so far."""

    name: str
    nulls: int = 0
    kinds: set[str] = field(default_factory=set)
    scales: set[int] = field(default_factory=set)
    digits: int = 0  # the most integer digits of a number (whole or fixed-point)
    distinct: set[str] = field(default_factory=set)
    values: int = 0

    def add_text(self, text: str, typed: bool = False) -> None:
        """A value written as text; ``typed`` (JSON) when the format has its own numbers and
        booleans, so text that looks like one stays text (Spark's JSON reader keeps it so)."""
        self.values += 1
        if len(self.distinct) <= 1000:
            self.distinct.add(text)
        self.kinds.add(_temporal_kind(text) if typed else _text_kind(text, self))

    def add_json(self, value: Any, where: str) -> None:
        if value is None:
            self.nulls += 1
        elif isinstance(value, bool):
            self.values += 1
            self.kinds.add("boolean")
        elif isinstance(value, int):
            self.values += 1
            self.kinds.add("long" if _LONG[0] <= value <= _LONG[1] else "double")
        elif isinstance(value, float):
            self.values += 1
            self.kinds.add("double")
        elif isinstance(value, str):
            self.add_text(value, typed=True)
        else:
            raise InferError(
                f"{where}: column `{self.name}` holds a nested value; etlc's records are flat"
            )


def _text_kind(text: str, column: Column) -> str:
    if text.lower() in ("true", "false"):
        return "boolean"
    if _INTEGER.fullmatch(text):
        column.digits = max(column.digits, len(text.lstrip("+-")))
        return "long" if _LONG[0] <= int(text) <= _LONG[1] else "double"
    fixed = _FIXED.fullmatch(text)
    if fixed:
        column.scales.add(len(fixed.group(2)))
        column.digits = max(column.digits, len(fixed.group(1).lstrip("0")) or 1)
        return "fixed"
    if _FLOAT.fullmatch(text):
        return "double"
    return _temporal_kind(text)


def _temporal_kind(text: str) -> str:
    if _TIMESTAMP.fullmatch(text):
        return "timestamp"
    if _DATE.fullmatch(text):
        return "date"
    return "text"


def column_type(c: Column, enum_max: int) -> DataType:
    """The narrowest type every value of ``c`` takes."""
    nullable = c.nulls > 0
    kinds = c.kinds
    if not kinds:
        return DataType("string", nullable=True)
    if kinds == {"boolean"}:
        return DataType("boolean", nullable)
    if kinds == {"long"}:
        return DataType("long", nullable)
    if kinds <= {"long", "fixed"} and len(c.scales) == 1:
        (scale,) = c.scales
        precision = min(38, max(c.digits, 1) + scale + DECIMAL_HEADROOM)
        if c.digits + scale <= 38:
            return DataType("decimal", nullable, precision=precision, scale=scale)
    if kinds <= {"long", "fixed", "double"}:
        return DataType("double", nullable)
    if kinds == {"timestamp"}:
        return DataType("timestamp", nullable, logical="timestamp-micros")
    if kinds == {"date"}:
        return DataType("date", nullable)
    symbols = sorted(c.distinct)
    repeated = len(symbols) * 2 <= c.values
    if (
        kinds == {"text"}
        and len(symbols) <= enum_max
        and repeated
        and all(map(is_avro_name, symbols))
    ):
        return DataType("string", nullable, symbols=tuple(symbols))
    return DataType("string", nullable)


def sample_format(sample: Path) -> str:
    """The format the names of ``sample`` (a file, or a folder's files) say, if one."""
    files = sorted(sample.iterdir()) if sample.is_dir() else [sample]
    kinds = {fmt for f in files for fmt, suffixes in _SUFFIXES.items() if _is_sample(f, suffixes)}
    if len(kinds) != 1:
        raise InferError(
            f"{sample}: cannot tell the format ({', '.join(FORMATS)}) by the file names; "
            "pass --format"
        )
    return kinds.pop()


def _declared(sample: Path, fmt: str) -> tuple[tuple[Field, ...], int]:
    """The columns every file of ``sample`` declares, and how many files there were."""
    files = _files(sample, fmt)
    try:
        first = _DECLARED[fmt](files[0])
        for path in files[1:]:
            if _DECLARED[fmt](path) != first:
                raise InferError(f"{path}: declares other columns than {files[0].name}")
    except FileSchemaError as exc:
        raise InferError(str(exc)) from None
    return first, len(files)


def _is_sample(path: Path, suffixes: tuple[str, ...]) -> bool:
    # Spark's output folders also hold _SUCCESS and .crc files: not samples.
    return path.name.lower().endswith(suffixes) and not path.name.startswith((".", "_"))


def _files(sample: Path, fmt: str) -> list[Path]:
    if sample.is_dir():
        found = sorted(p for p in sample.iterdir() if p.is_file() and _is_sample(p, _SUFFIXES[fmt]))
        if not found:
            raise InferError(f"{sample}: no {fmt} file in the folder ({', '.join(_SUFFIXES[fmt])})")
        return found
    if not sample.is_file():
        raise InferError(f"{sample}: no such file or folder")
    return [sample]


def _csv_rows(path: Path, columns: dict[str, Column]) -> Iterator[None]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InferError(f"{path}: empty file (a CSV sample needs a header)")
        if len(set(header)) != len(header):
            twice = next(name for name in header if header.count(name) > 1)
            raise InferError(f"{path}: column {twice!r} appears twice in the header")
        if not columns:
            columns.update((name, Column(name)) for name in header)
        elif list(columns) != header:
            raise InferError(f"{path}: its header differs from the first file's")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise InferError(f"{path}:{line}: {len(row)} values for {len(header)} columns")
            for column, text in zip(columns.values(), row, strict=True):
                if text == "":
                    column.nulls += 1
                else:
                    column.add_text(text)
            yield None


def _json_rows(path: Path, columns: dict[str, Column]) -> Iterator[None]:
    with path.open(encoding="utf-8-sig") as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InferError(
                    f"{path}:{line}: not JSON ({exc.msg}); one object per line"
                ) from None
            if not isinstance(record, dict):
                raise InferError(f"{path}:{line}: not a JSON object")
            # Every record so far added one value or null to each column, in every file.
            seen = next((c.values + c.nulls for c in columns.values()), 0)
            for key in record:
                if key not in columns:
                    columns[key] = Column(key, nulls=seen)  # absent from the records before
            for name, column in columns.items():
                column.add_json(record.get(name), f"{path}:{line}")
            yield None


def infer(
    sample: Path,
    fmt: str,
    name: str,
    *,
    namespace: str = "",
    max_rows: int = 10_000,
    enum_max: int = 16,
) -> dict[str, Any]:
    """The ``.avsc`` document for ``sample``: a record ``name`` of one field per column."""
    if fmt not in FORMATS:
        raise InferError(f"no sample format {fmt!r} (known: {', '.join(FORMATS)})")
    if not is_avro_name(name):
        raise InferError(f"record name {name!r} is not an Avro name ([A-Za-z_][A-Za-z0-9_]*)")
    if fmt in _DECLARED:
        fields, files = _declared(sample, fmt)
        return _checked(
            RecordSchema(name, fields, namespace),
            f"Read by etlc schema infer from what {files} file(s) of {sample.name} declare; "
            "review it.",
            sample,
        )
    columns: dict[str, Column] = {}
    rows = 0
    reader = _csv_rows if fmt == "csv" else _json_rows
    for path in _files(sample, fmt):
        for _ in reader(path, columns):
            rows += 1
            if rows >= max_rows:
                break
        if rows >= max_rows:
            break
    if rows == 0:
        raise InferError(f"{sample}: no records to infer a schema from")
    fields = tuple(Field(c.name, column_type(c, enum_max)) for c in columns.values())
    return _checked(
        RecordSchema(name, fields, namespace),
        f"Inferred by etlc schema infer from {rows} record(s) of {sample.name}; review it.",
        sample,
    )


def _checked(record: RecordSchema, doc: str, sample: Path) -> dict[str, Any]:
    bad = [f.name for f in record.fields if not is_avro_name(f.name)]
    if bad:
        raise InferError(
            f"{sample}: column {bad[0]!r} is not an Avro name; rename it in the sample"
        )
    out = record.to_avro()
    out["doc"] = doc
    try:
        parse_avro_schema(out)  # what etlc would refuse is never printed
    except AvroSchemaError as exc:
        raise InferError(f"{sample}: {exc}") from None
    return out
