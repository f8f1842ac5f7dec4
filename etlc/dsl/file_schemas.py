"""The columns an Avro or Parquet data file declares, read from its header or footer: no
Spark, no JVM, no record read.

An Avro container file starts with its writer's schema; a Parquet file ends with a footer
(Thrift's compact protocol) whose schema lists each column's physical type, its logical
annotation and whether it may be null. Either becomes etlc's flat columns; what etlc has no
column type for (nested groups, repeated fields, time of day, unsigned 64-bit, nanoseconds)
is refused, naming the file and the column.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etlc.dsl.thrift_compact import CompactReader, ThriftError
from etlc.dsl.types import AvroSchemaError, DataType, Field, parse_avro_schema

AVRO_MAGIC = b"Obj\x01"
PARQUET_MAGIC = b"PAR1"
# A footer or header larger than this is not one etlc reads whole.
_MAX_METADATA = 64 * 1024 * 1024


class FileSchemaError(ValueError):
    """A file whose declared columns etlc cannot read or type."""


def avro_file_fields(path: Path) -> tuple[Field, ...]:
    """The fields of an Avro container file's writer schema."""
    with path.open("rb") as fh:
        head = fh.read(_MAX_METADATA)
    if head[:4] != AVRO_MAGIC:
        raise FileSchemaError(f"{path}: not an Avro container file")
    try:
        metadata = _avro_metadata(head)
    except ThriftError as exc:
        raise FileSchemaError(f"{path}: a damaged Avro header ({exc})") from None
    if "avro.schema" not in metadata:
        raise FileSchemaError(f"{path}: its Avro header holds no schema")
    try:
        doc = json.loads(metadata["avro.schema"])
        return parse_avro_schema(doc).fields
    except (ValueError, RecursionError, AvroSchemaError) as exc:
        raise FileSchemaError(f"{path}: its writer schema is not one etlc reads: {exc}") from None


def _avro_metadata(head: bytes) -> dict[str, bytes]:
    """The header's map of metadata: blocks of (string, bytes) pairs, as Avro encodes them
    (zigzag varint lengths, the same varints as Thrift's compact protocol)."""
    reader = CompactReader(head)
    reader.at = len(AVRO_MAGIC)

    def chunk() -> bytes:
        return reader.take(reader.zigzag())

    metadata: dict[str, bytes] = {}
    while count := reader.zigzag():
        if count < 0:  # a block with its size in bytes after its count
            count = -count
            reader.zigzag()
        for _ in range(count):
            key = chunk().decode("utf-8", "replace")
            metadata[key] = chunk()
    return metadata


def parquet_file_fields(path: Path) -> tuple[Field, ...]:
    """The columns of a Parquet file's footer schema, in order."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        if size < 12:
            raise FileSchemaError(f"{path}: not a Parquet file")
        fh.seek(size - 8)
        length, magic = struct.unpack("<i4s", fh.read(8))
        if magic != PARQUET_MAGIC:
            raise FileSchemaError(f"{path}: not a Parquet file (no PAR1 at its end)")
        if not 0 < length <= min(size - 12, _MAX_METADATA):
            raise FileSchemaError(f"{path}: a footer of {length} bytes does not fit the file")
        fh.seek(size - 8 - length)
        footer = fh.read(length)
    try:
        raw = CompactReader(footer).struct(until=2).get(2)
    except ThriftError as exc:
        raise FileSchemaError(f"{path}: a damaged Parquet footer ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise FileSchemaError(f"{path}: its Parquet footer holds no schema")
    root, *columns = (_Element.read(e, path) for e in raw)
    if not columns:
        raise FileSchemaError(f"{path}: its Parquet schema has no column")
    nested = next((c for c in columns if c.children), None)
    if nested is not None or root.children != len(columns):
        name = nested.name if nested is not None else root.name
        raise FileSchemaError(
            f"{path}: column {name!r} is a nested group; etlc reads flat columns only"
        )
    return tuple(Field(c.name, _column_type(c, f"{path}: column {c.name!r}")) for c in columns)


@dataclass(frozen=True)
class _Element:
    """A SchemaElement of parquet.thrift, its fields checked for their Thrift types."""

    name: str
    physical: int | None  # 1: type
    repetition: int  # 3
    children: int  # 5: num_children
    converted: int | None  # 6: converted_type
    scale: int  # 7
    precision: int  # 8
    logical: dict[int, dict[int, Any]]  # 10: the LogicalType union, its one member by id

    @classmethod
    def read(cls, raw: Any, path: Path) -> _Element:
        if not isinstance(raw, dict):
            raise FileSchemaError(f"{path}: a damaged Parquet footer (a column is not a struct)")

        def number(field_id: int, default: int | None) -> Any:
            value = raw.get(field_id, default)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise FileSchemaError(f"{path}: a damaged Parquet footer (field {field_id})")
            return value

        name = raw.get(4, b"")
        logical = raw.get(10) or {}
        if not isinstance(name, bytes) or not isinstance(logical, dict):
            raise FileSchemaError(f"{path}: a damaged Parquet footer (a column's name or type)")
        if not all(isinstance(v, dict) for v in logical.values()):
            raise FileSchemaError(f"{path}: a damaged Parquet footer (a logical type)")
        return cls(
            name.decode("utf-8", "replace"),
            number(1, None),
            number(3, _REQUIRED),
            number(5, 0),
            number(6, None),
            number(7, 0),
            number(8, 0),
            logical,
        )


# parquet.thrift's numbers: physical Type, FieldRepetitionType, ConvertedType (the older
# annotation, which Spark still writes) and the members of the LogicalType union.
_BOOLEAN, _INT32, _INT64, _INT96, _FLOAT, _DOUBLE, _BYTE_ARRAY, _FIXED = range(8)
_REQUIRED, _OPTIONAL = 0, 1
_UTF8, _ENUM, _DECIMAL, _DATE, _TIME_MILLIS, _TIME_MICROS = 0, 4, 5, 6, 7, 8
_TIMESTAMP_MILLIS, _TIMESTAMP_MICROS, _UINT_32, _UINT_64, _JSON = 9, 10, 13, 14, 19
_L_STRING, _L_ENUM, _L_DECIMAL, _L_DATE, _L_TIME, _L_TIMESTAMP = 1, 4, 5, 6, 7, 8
_L_INTEGER, _L_UNKNOWN, _L_JSON = 10, 11, 12
_TEXT = frozenset({_L_STRING, _L_ENUM, _L_JSON})
_LOGICAL_NAMES = {2: "a map", 3: "a list", 7: "a time of day", 11: "always null (no type)"}


def _column_type(c: _Element, where: str) -> DataType:
    if c.repetition not in (_REQUIRED, _OPTIONAL):
        raise FileSchemaError(f"{where} is repeated (an array); etlc reads flat columns only")
    nullable = c.repetition == _OPTIONAL
    unknown = set(c.logical) - {*_TEXT, _L_DECIMAL, _L_DATE, _L_TIMESTAMP, _L_INTEGER}
    if unknown or c.converted in (_TIME_MILLIS, _TIME_MICROS, _UINT_64):
        what = _LOGICAL_NAMES.get(min(unknown), "of a logical type") if unknown else "unsigned"
        raise FileSchemaError(f"{where} is {what}; etlc has no column type for it")
    decimal_based = c.physical in (_INT32, _INT64, _BYTE_ARRAY, _FIXED)
    if decimal_based and (_L_DECIMAL in c.logical or c.converted == _DECIMAL):
        decimal = c.logical.get(_L_DECIMAL, {})
        precision, scale = decimal.get(2, c.precision), decimal.get(1, c.scale)
        return DataType("decimal", nullable, precision=precision, scale=scale)
    kind, logical = _typed(c, where)
    return DataType(kind, nullable, logical=logical)


def _typed(c: _Element, where: str) -> tuple[str, str]:
    """(etlc kind, Avro logical type) of a column that is not a decimal."""
    if _L_TIMESTAMP in c.logical and c.physical == _INT64:
        stamp = c.logical[_L_TIMESTAMP]
        unit = stamp.get(2)
        if not stamp.get(1, True):
            raise FileSchemaError(f"{where} is a timestamp without a time zone; etlc has none")
        if not isinstance(unit, dict) or 3 in unit:
            raise FileSchemaError(f"{where} has nanoseconds; etlc's timestamps stop at micros")
        return "timestamp", "timestamp-millis" if 1 in unit else "timestamp-micros"
    if c.physical == _INT96 or (c.physical == _INT64 and c.converted == _TIMESTAMP_MICROS):
        return "timestamp", "timestamp-micros"  # INT96: Spark's and Hive's older timestamps
    if c.physical == _INT64 and c.converted == _TIMESTAMP_MILLIS:
        return "timestamp", "timestamp-millis"
    if c.physical == _INT32 and (c.converted == _DATE or _L_DATE in c.logical):
        return "date", ""
    integer = c.logical.get(_L_INTEGER, {})
    unsigned = integer.get(2) is False or c.converted in (_UINT_32, _UINT_64)
    simple = {_BOOLEAN: "boolean", _INT32: "long" if unsigned else "int", _FLOAT: "float"}
    simple.update({_DOUBLE: "double", _INT64: "long"})
    if c.physical == _INT64 and unsigned:
        raise FileSchemaError(f"{where} is unsigned; etlc has no column type for it")
    if c.physical in simple and not set(c.logical) - {_L_INTEGER}:
        return simple[c.physical], ""
    if c.physical == _BYTE_ARRAY:
        text = c.converted in (_UTF8, _ENUM, _JSON) or bool(_TEXT & set(c.logical))
        return ("string" if text else "bytes"), ""
    if c.physical == _FIXED and not c.logical and c.converted is None:
        return "bytes", ""
    raise FileSchemaError(
        f"{where} has a Parquet type etlc has no column type for "
        f"(physical {c.physical}, converted {c.converted})"
    )
