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
    except (ValueError, AvroSchemaError) as exc:
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
        elements = CompactReader(footer).struct(until=2).get(2)
    except ThriftError as exc:
        raise FileSchemaError(f"{path}: a damaged Parquet footer ({exc})") from None
    if not isinstance(elements, list) or not elements:
        raise FileSchemaError(f"{path}: its Parquet footer holds no schema")
    root, columns = elements[0], elements[1:]
    if root.get(5) != len(columns):
        group = next(_name(c) for c in columns if c.get(5))
        raise FileSchemaError(
            f"{path}: column {group!r} is a nested group; etlc reads flat columns only"
        )
    return tuple(Field(_name(c), _column_type(c, f"{path}: column {_name(c)!r}")) for c in columns)


def _name(element: dict[int, Any]) -> str:
    raw = element.get(4, b"")
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


# Parquet's ConvertedType numbers (parquet.thrift), the annotation Spark and most writers set.
_UTF8, _ENUM, _DECIMAL, _DATE = 0, 4, 5, 6
_TIMESTAMP_MILLIS, _TIMESTAMP_MICROS = 9, 10
_UINT_8, _UINT_16, _UINT_32, _INT_8, _INT_16, _INT_32, _INT_64, _JSON = (
    11,
    12,
    13,
    15,
    16,
    17,
    18,
    19,
)
_BOOLEAN, _INT32, _INT64, _INT96, _FLOAT, _DOUBLE, _BYTE_ARRAY, _FIXED = range(8)
_REQUIRED, _OPTIONAL = 0, 1


def _column_type(c: dict[int, Any], where: str) -> DataType:
    repetition = c.get(3, _REQUIRED)
    if repetition not in (_REQUIRED, _OPTIONAL):
        raise FileSchemaError(f"{where} is repeated (an array); etlc reads flat columns only")
    nullable = repetition == _OPTIONAL
    physical, converted, logical = c.get(1), c.get(6), c.get(10) or {}
    if converted == _DECIMAL or 5 in logical:
        return DataType("decimal", nullable, precision=c.get(8, 0), scale=c.get(7, 0))
    kind = _typed(physical, converted, logical, where)
    return DataType(kind[0], nullable, logical=kind[1])


def _typed(physical: Any, converted: Any, logical: dict[int, Any], where: str) -> tuple[str, str]:
    """(etlc kind, Avro logical type) of a column that is not a decimal."""
    if 8 in logical:  # TIMESTAMP(isAdjustedToUTC, unit)
        adjusted, unit = logical[8].get(1, True), logical[8].get(2) or {}
        if not adjusted:
            raise FileSchemaError(f"{where} is a timestamp without a time zone; etlc has none")
        if 3 in unit:
            raise FileSchemaError(f"{where} has nanoseconds; etlc's timestamps stop at micros")
        return "timestamp", "timestamp-millis" if 1 in unit else "timestamp-micros"
    if physical == _INT96 or converted == _TIMESTAMP_MICROS:
        return "timestamp", "timestamp-micros"  # INT96: Spark's and Hive's older timestamps
    if converted == _TIMESTAMP_MILLIS:
        return "timestamp", "timestamp-millis"
    if converted == _DATE or 6 in logical:
        return "date", ""
    if physical == _BOOLEAN:
        return "boolean", ""
    if physical == _INT32:
        if converted in (_UINT_32,):
            return "long", ""
        if converted in (None, _INT_8, _INT_16, _INT_32, _UINT_8, _UINT_16):
            return "int", ""
    if physical == _INT64 and converted in (None, _INT_64):
        return "long", ""
    if physical in (_FLOAT, _DOUBLE):
        return ("float" if physical == _FLOAT else "double"), ""
    if physical == _BYTE_ARRAY:
        text = converted in (_UTF8, _ENUM, _JSON) or bool({1, 4, 12} & set(logical))
        return ("string" if text else "bytes"), ""
    if physical == _FIXED and not logical and converted is None:
        return "bytes", ""
    raise FileSchemaError(
        f"{where} has a Parquet type etlc has no column type for "
        f"(physical {physical}, converted {converted})"
    )
