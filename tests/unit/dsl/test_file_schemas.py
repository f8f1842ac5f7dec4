"""The columns Avro and Parquet files declare, read from their bytes: files Spark writes here,
and damaged or hostile ones made by hand."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl import schema_infer
from etlc.dsl.file_schemas import FileSchemaError, avro_file_fields, parquet_file_fields
from etlc.dsl.types import DataType, Field

SQL = """
    SELECT CAST(id AS INT) AS id, CAST(id AS BIGINT) * 10 AS big, id % 2 = 0 AS even,
           CAST(id / 3 AS FLOAT) AS f, CAST(id AS DOUBLE) / 7 AS d,
           CAST(id AS DECIMAL(12, 2)) AS amount, CAST(id AS DECIMAL(30, 4)) AS wide,
           CONCAT('n', id) AS name, CAST(CONCAT('b', id) AS BINARY) AS raw,
           DATE'2026-01-01' + CAST(id AS INT) AS day,
           TIMESTAMP'2026-01-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id) AS at,
           CAST(CAST(id AS TINYINT) AS SMALLINT) AS small,
           IF(id = 1, NULL, 'x') AS maybe
    FROM range(1, 5)
"""

EXPECTED = {
    "id": DataType("int", False),
    "big": DataType("long", False),
    "even": DataType("boolean", False),
    "f": DataType("float", False),
    "d": DataType("double", False),
    "amount": DataType("decimal", False, precision=12, scale=2),
    "wide": DataType("decimal", False, precision=30, scale=4),
    "name": DataType("string", False),
    "raw": DataType("bytes", False),
    "day": DataType("date", False),
    "at": DataType("timestamp", False, logical="timestamp-micros"),
    "small": DataType("int", False),
    "maybe": DataType("string", True),
}


def written(spark: Any, tmp_path: Path, fmt: str, sql: str = SQL) -> Path:
    out = tmp_path / fmt
    spark.sql(sql).coalesce(1).write.format(fmt).save(str(out))
    [part] = [p for p in out.iterdir() if p.name.startswith("part-")]
    return part


def expected(spark: Any, **kinds: DataType) -> dict[str, DataType]:
    """EXPECTED, each nullable as Spark knew its column to be (what it writes in the file)."""
    known = {f.name: f.nullable for f in spark.sql(SQL).schema.fields}
    return {k: v.with_nullable(known[k]) for k, v in {**EXPECTED, **kinds}.items()}


@pytest.mark.parametrize("timestamps", ["INT96", "TIMESTAMP_MICROS", "TIMESTAMP_MILLIS"])
def test_a_parquet_footer_gives_each_columns_type_and_nullability(
    spark: Any, tmp_path: Path, timestamps: str
) -> None:
    spark.conf.set("spark.sql.parquet.outputTimestampType", timestamps)
    try:
        part = written(spark, tmp_path, "parquet")
    finally:
        spark.conf.unset("spark.sql.parquet.outputTimestampType")
    fields = {f.name: f.type for f in parquet_file_fields(part)}
    millis = timestamps == "TIMESTAMP_MILLIS"
    at = DataType("timestamp", False, logical=f"timestamp-{'millis' if millis else 'micros'}")
    assert fields == expected(spark, at=at)
    assert fields["maybe"].nullable and not fields["id"].nullable


def test_an_avro_files_writer_schema_gives_its_fields(spark: Any, tmp_path: Path) -> None:
    part = written(spark, tmp_path, "avro")
    fields = {f.name: f.type for f in avro_file_fields(part)}
    assert fields == expected(spark)


@pytest.mark.parametrize(
    ("sql", "said"),
    [
        ("SELECT named_struct('a', 1) AS nested", "'nested' is a nested group"),
        ("SELECT array(1, 2) AS many", "'many' is a nested group"),
        ("SELECT CAST('2026-01-01 00:00' AS TIMESTAMP_NTZ) AS local", "without a time zone"),
    ],
)
def test_a_parquet_column_without_a_flat_etlc_type_is_named(
    spark: Any, tmp_path: Path, sql: str, said: str
) -> None:
    part = written(spark, tmp_path, "parquet", sql)
    with pytest.raises(FileSchemaError, match=said):
        parquet_file_fields(part)


def footer(body: bytes) -> bytes:
    return b"PAR1" + body + struct.pack("<i", len(body)) + b"PAR1"


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "not a Parquet file"),
        (b"PAR1" + b"\x00" * 20, "no PAR1 at its end"),
        (b"PAR1" + b"\x00" * 8 + struct.pack("<i", 2**30) + b"PAR1", "does not fit the file"),
        (b"PAR1" + b"\x00" * 8 + struct.pack("<i", -5) + b"PAR1", "does not fit the file"),
        # FileMetaData, field 2: a list that claims 2^31 elements in four bytes.
        (footer(b"\x19\xf8\xff\xff\xff\x07\x00"), "runs past the end"),
        # A varint that never ends.
        (footer(b"\x15" + b"\xff" * 12), "longer than 64 bits"),
        (footer(b"\x15"), "ends in the middle"),
        (footer(b"\x1d\x00\x00"), "unknown type 13"),
        (footer(b"\x00"), "holds no schema"),
    ],
)
def test_a_damaged_or_hostile_parquet_footer_is_an_error_naming_the_file(
    tmp_path: Path, data: bytes, said: str
) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(data)
    with pytest.raises(FileSchemaError, match=said) as caught:
        parquet_file_fields(path)
    assert str(caught.value).startswith(f"{path}: ")


def avro_header(*pairs: tuple[bytes, bytes], count: int | None = None) -> bytes:
    def long(n: int) -> bytes:
        z, out = (n << 1) ^ (n >> 63), b""
        while z > 0x7F:
            out, z = out + bytes([(z & 0x7F) | 0x80]), z >> 7
        return out + bytes([z])

    body = b"".join(long(len(k)) + k + long(len(v)) + v for k, v in pairs)
    return b"Obj\x01" + long(len(pairs) if count is None else count) + body + long(0)


def test_an_avro_header_written_by_hand_is_read_as_avro_encodes_it(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "id", "type": "long"}, {"name": "s", "type": ["null", "string"]}],
    }
    path = tmp_path / "r.avro"
    path.write_bytes(
        avro_header((b"avro.codec", b"null"), (b"avro.schema", json.dumps(schema).encode()))
    )
    assert avro_file_fields(path) == (
        Field("id", DataType("long", False)),
        Field("s", DataType("string", True)),
    )


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"PAR1", "not an Avro container file"),
        (avro_header((b"avro.codec", b"null")), "holds no schema"),
        (avro_header((b"avro.schema", b"{not json")), "not one etlc reads"),
        (
            avro_header((b"avro.schema", b'{"type": "array", "items": "long"}')),
            "not one etlc reads",
        ),
        (avro_header(count=1_000_000), "ends in the middle"),
        (b"Obj\x01\x02\xfe\xff\xff\xff\x0f", "runs past the end"),
    ],
)
def test_a_damaged_avro_header_is_an_error_naming_the_file(
    tmp_path: Path, data: bytes, said: str
) -> None:
    path = tmp_path / "bad.avro"
    path.write_bytes(data)
    with pytest.raises(FileSchemaError, match=said) as caught:
        avro_file_fields(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_infer_reads_a_folder_spark_wrote_and_names_the_record(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "orders"
    spark.sql(SQL).repartition(2).write.parquet(str(out))  # two parts, _SUCCESS and .crc files
    assert schema_infer.sample_format(out) == "parquet"
    doc = schema_infer.infer(out, "parquet", "Order", namespace="shop")
    assert (doc["name"], doc["namespace"]) == ("Order", "shop")
    assert [f["name"] for f in doc["fields"]] == list(EXPECTED)
    assert doc["doc"].startswith("Read by etlc schema infer from what 2 file(s) of orders declare")


def test_files_of_one_folder_must_declare_the_same_columns(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    spark.sql("SELECT 1 AS a").write.parquet(str(out))
    spark.sql("SELECT 'x' AS a").write.mode("append").parquet(str(out))
    with pytest.raises(schema_infer.InferError, match="declares other columns than"):
        schema_infer.infer(out, "parquet", "Mixed")


def test_a_folder_of_several_formats_needs_format(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.parquet").write_bytes(b"")
    with pytest.raises(schema_infer.InferError, match="pass --format"):
        schema_infer.sample_format(tmp_path)


# --- footers written by hand: what Spark does not write, and what no writer should ---------


def _varint(n: int) -> bytes:
    out = b""
    while n > 0x7F:
        out, n = out + bytes([(n & 0x7F) | 0x80]), n >> 7
    return out + bytes([n])


def _field(fid: int, last: int, kind: int) -> bytes:
    delta = fid - last
    return bytes([(delta << 4) | kind]) if 0 < delta <= 15 else bytes([kind]) + _varint(fid * 2)


def _struct(fields: dict[int, object]) -> bytes:
    """A compact-protocol struct of booleans, ints, bytes and nested structs (dicts)."""
    out, last = b"", 0
    for fid, value in sorted(fields.items()):
        if isinstance(value, bool):  # the value is in the field's type: 1 true, 2 false
            out += _field(fid, last, 1 if value else 2)
        elif isinstance(value, dict):
            out += _field(fid, last, 12) + _struct(value)
        elif isinstance(value, bytes):
            out += _field(fid, last, 8) + _varint(len(value)) + value
        else:
            assert isinstance(value, int)
            out += _field(fid, last, 5) + _varint((value << 1) ^ (value >> 63))
        last = fid
    return out + b"\x00"


def parquet(tmp_path: Path, *columns: dict[int, object]) -> Path:
    elements = [{4: b"root", 5: len(columns)}, *columns]
    # FileMetaData field 2, a list of SchemaElement structs.
    body = bytes([0x29, (len(elements) << 4) | 12]) + b"".join(_struct(e) for e in elements)
    path = tmp_path / "hand.parquet"
    path.write_bytes(footer(body + b"\x00"))
    return path


def test_a_decimal_given_only_by_its_logical_type_keeps_its_precision(tmp_path: Path) -> None:
    column = {1: 6, 3: 1, 4: b"x", 10: {5: {1: 2, 2: 10}}}  # BYTE_ARRAY, DECIMAL(10, 2)
    [field] = parquet_file_fields(parquet(tmp_path, column))
    assert field == Field("x", DataType("decimal", True, precision=10, scale=2))


@pytest.mark.parametrize(
    ("column", "said"),
    [
        ({1: 2, 4: b"t", 10: {7: {1: 1, 2: {3: {}}}}}, "'t' is a time of day"),
        ({1: 2, 4: b"u", 10: {10: {1: 64, 2: False}}}, "'u' is unsigned"),
        ({1: 1, 4: b"n", 10: {11: {}}}, "'n' is always null"),
        ({1: 1, 3: 2, 4: b"r"}, "'r' is repeated"),
        ({4: b"g", 5: 1}, "'g' is a nested group"),
        ({1: b"not a number", 4: b"x"}, "damaged Parquet footer"),
        ({1: 1, 4: b"x", 10: {5: 7}}, "damaged Parquet footer"),
    ],
)
def test_a_column_etlc_has_no_type_for_or_a_malformed_one_is_named(
    tmp_path: Path, column: dict[int, object], said: str
) -> None:
    with pytest.raises(FileSchemaError, match=said):
        parquet_file_fields(parquet(tmp_path, column))


def test_a_writer_schema_nested_past_any_parsers_depth_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.avro"
    path.write_bytes(avro_header((b"avro.schema", b"[" * 100_000)))
    with pytest.raises(FileSchemaError, match="not one etlc reads"):
        avro_file_fields(path)


def test_infer_names_the_sample_when_declared_columns_break_avros_rules(tmp_path: Path) -> None:
    column = {1: 6, 3: 1, 4: b"x", 10: {5: {1: 2, 2: 60}}}  # DECIMAL(60, 2): beyond Spark's 38
    path = parquet(tmp_path, column)
    with pytest.raises(schema_infer.InferError, match=r"hand.parquet: decimal precision 60"):
        schema_infer.infer(path, "parquet", "R")
