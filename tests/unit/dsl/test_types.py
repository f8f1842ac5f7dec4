"""Avro schema parsing, the derived Avro/DDL forms, and type widening."""

from __future__ import annotations

from typing import Any

import pytest

from etlc.dsl.types import AvroSchemaError, DataType, RecordSchema, common_type, parse_avro_schema


def record(*fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "record", "name": "r", "fields": list(fields), **extra}


def test_parses_primitives_unions_enums_and_logical_types() -> None:
    schema = parse_avro_schema(
        record(
            {"name": "id", "type": "long"},
            {"name": "name", "type": ["null", "string"], "default": None},
            {"name": "kind", "type": {"type": "enum", "name": "k", "symbols": ["A", "B"]}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {
                "name": "price",
                "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2},
            },
            {"name": "raw", "type": {"type": "bytes"}},
            {"name": "nothing", "type": "null"},
            namespace="ns",
        )
        | {"etlc.rules": {"positive": "price > 0"}}
    )
    assert schema.full_name == "ns.r"
    assert [f.type.describe() for f in schema] == [
        "long",
        "string?",
        "enum",
        "date",
        "timestamp",
        "decimal(10,2)",
        "bytes",
        "null?",
    ]
    assert schema.rules == (("positive", "price > 0"),)
    assert schema.spark_ddl().startswith("`id` BIGINT, `name` STRING, `kind` STRING, `day` DATE")
    avro = schema.to_avro()
    assert avro["fields"][1] == {"name": "name", "type": ["null", "string"], "default": None}
    assert avro["fields"][2]["type"] == {"type": "enum", "name": "kind_enum", "symbols": ["A", "B"]}
    assert avro["fields"][4]["type"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_dotted_names_split_into_namespace() -> None:
    schema = parse_avro_schema(record({"name": "a", "type": "int"}) | {"name": "com.x.R"})
    assert (schema.namespace, schema.name, schema.full_name) == ("com.x", "R", "com.x.R")


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"type": "enum"}, "$.type"),
        ({"type": "record", "name": "1x", "fields": [{"name": "a", "type": "int"}]}, "$.name"),
        ({"type": "record", "name": "r", "fields": []}, "$.fields"),
        (record({"type": "int"}), "$.fields[0]"),
        (record({"name": "a-b", "type": "int"}), "$.fields[0].name"),
        (record({"name": "a", "type": "int"}, {"name": "a", "type": "int"}), "$.fields[1].name"),
        (record({"name": "a", "type": ["null", "int", "string"]}), "$.fields[0].type"),
        (record({"name": "a", "type": "uuidz"}), "$.fields[0].type"),
        (
            record({"name": "a", "type": {"type": "enum", "name": "e", "symbols": []}}),
            "$.fields[0].type.symbols",
        ),
        (
            record({"name": "a", "type": {"type": "bytes", "logicalType": "decimal"}}),
            "$.fields[0].type.precision",
        ),
        (record({"name": "a", "type": {"type": "array", "items": "int"}}), "$.fields[0].type"),
        (record({"name": "a", "type": 3}), "$.fields[0].type"),
        (record({"name": "a", "type": "int"}, **{"etlc.rules": ["x"]}), "$.etlc.rules"),
    ],
)
def test_unsupported_or_invalid_schemas_name_the_path(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(AvroSchemaError) as err:
        parse_avro_schema(doc)
    assert err.value.path == path


def t(kind: str, nullable: bool = False, **kw: Any) -> DataType:
    return DataType(kind, nullable, **kw)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (t("int"), t("long"), t("long")),
        (t("int"), t("double", True), t("double", True)),
        (t("long"), t("decimal", precision=10, scale=2), t("decimal", precision=22, scale=2)),
        (
            t("decimal", precision=5, scale=4),
            t("decimal", precision=12, scale=2),
            t("decimal", precision=14, scale=4),
        ),
        (t("date"), t("timestamp"), t("timestamp")),
        (t("null", True), t("string"), t("string", True)),
        (t("string"), t("null", True), t("string", True)),
        (t("string"), t("long"), None),
        (t("boolean"), t("date"), None),
    ],
)
def test_common_type_follows_spark_widening(
    a: DataType, b: DataType, expected: DataType | None
) -> None:
    assert common_type(a, b) == expected


def test_record_helpers() -> None:
    schema = RecordSchema("r", ())
    assert schema.field("x") is None and schema.names() == [] and schema.to_avro()["fields"] == []
    assert t("decimal", precision=3, scale=1).avro() == {
        "type": "bytes",
        "logicalType": "decimal",
        "precision": 3,
        "scale": 1,
    }
    assert t("null", True).avro() == "null"
    assert (
        t("date", True).spark_sql() == "DATE"
        and t("decimal", precision=3, scale=1).spark_sql() == "DECIMAL(3,1)"
    )
    assert t("int").is_integral and t("date").is_temporal and not t("int").is_enum


# --- names, symbols and decimals: what the SQL and DDL built from them can rely on -------------


def enum(*symbols: Any, **extra: Any) -> dict[str, Any]:
    return record(
        {"name": "s", "type": {"type": "enum", "name": "e", "symbols": list(symbols), **extra}}
    )


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (enum("A\\", "B"), "$.fields[0].type.symbols[0]"),
        (enum("A", "B'"), "$.fields[0].type.symbols[1]"),
        (enum("A\n"), "$.fields[0].type.symbols[0]"),
        (enum("A", "A"), "$.fields[0].type.symbols[1]"),
        (enum("A", 1), "$.fields[0].type.symbols[1]"),
        (enum("A", default="B"), "$.fields[0].type"),
        (
            record({"name": "s", "type": {"type": "enum", "symbols": ["A"]}}),
            "$.fields[0].type.name",
        ),
        (
            record({"name": "s", "type": {"type": "enum", "name": "e\n", "symbols": ["A"]}}),
            "$.fields[0].type.name",
        ),
        (record({"name": "a\n", "type": "int"}), "$.fields[0].name"),
        (record({"name": "a", "type": "int", "doc": 3}), "$.fields[0].doc"),
        (record({"name": "a", "type": "int"}) | {"name": "r\n"}, "$.name"),
        (record({"name": "a", "type": "int"}) | {"namespace": "a..b"}, "$.namespace"),
        (record({"name": "a", "type": "int"}) | {"namespace": "a.b\n"}, "$.namespace"),
        (record({"name": "a", "type": "int"}) | {"name": "x-y.R"}, "$.namespace"),
        (record({"name": "a", "type": "int"}, **{"etlc.rules": {"a b": "a > 0"}}), "$.etlc.rules"),
    ],
)
def test_names_and_symbols_follow_avros_name_rule(doc: dict[str, Any], path: str) -> None:
    with pytest.raises(AvroSchemaError) as err:
        parse_avro_schema(doc)
    assert err.value.path == path


def decimal(**attrs: Any) -> dict[str, Any]:
    return record({"name": "d", "type": {"type": "bytes", "logicalType": "decimal", **attrs}})


@pytest.mark.parametrize(
    ("attrs", "key"),
    [
        ({"precision": 0}, "precision"),
        ({"precision": 39}, "precision"),
        ({"precision": -1}, "precision"),
        ({"precision": 1.5}, "precision"),
        ({"precision": 10.0}, "precision"),
        ({"precision": True}, "precision"),
        ({"precision": "10"}, "precision"),
        ({"precision": 10, "scale": -1}, "scale"),
        ({"precision": 10, "scale": 11}, "scale"),
        ({"precision": 10, "scale": False}, "scale"),
    ],
)
def test_decimals_spark_cannot_hold_are_refused(attrs: dict[str, Any], key: str) -> None:
    with pytest.raises(AvroSchemaError) as err:
        parse_avro_schema(decimal(**attrs))
    assert err.value.path == f"$.fields[0].type.{key}"


def test_decimal_bounds_themselves_are_accepted() -> None:
    assert parse_avro_schema(decimal(precision=38, scale=38)).fields[0].type.describe() == (
        "decimal(38,38)"
    )
    assert parse_avro_schema(decimal(precision=1)).fields[0].type.scale == 0


def test_fields_differing_only_in_case_are_refused() -> None:
    doc = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "a", "type": "long"}, {"name": "A", "type": "long"}],
    }
    with pytest.raises(AvroSchemaError, match="`A` and `a` differ only in case") as raised:
        parse_avro_schema(doc)
    assert raised.value.path == "$.fields[1].name"


@pytest.mark.parametrize(
    ("field_type", "default", "problem"),
    [
        ("long", "x", "not of type long"),
        ("long", None, "not of type long"),
        ("int", 2**31, "not of type int"),
        ("boolean", 1, "not of type boolean"),
        ("double", True, "not of type double"),
        (["null", "string"], "a", "must be null"),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, "C", "not of type enum"),
        ({"type": "int", "logicalType": "date"}, "2026-01-01", "not of type date"),
    ],
)
def test_a_default_must_be_a_value_of_its_field_type(
    field_type: Any, default: Any, problem: str
) -> None:
    doc = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "a", "type": field_type, "default": default}],
    }
    with pytest.raises(AvroSchemaError, match=problem) as refused:
        parse_avro_schema(doc)
    assert refused.value.path == "$.fields[0].default"
    # The value itself is never repeated: it may be anything a file holds.
    assert repr(default) not in str(refused.value) or default is None


@pytest.mark.parametrize(
    ("field_type", "default"),
    [
        ("long", 5),
        ("double", 1),
        (["null", "string"], None),
        (["string", "null"], "a"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2}, "\u0000"),
        ({"type": "enum", "name": "E", "symbols": ["A", "B"]}, "B"),
        ({"type": "long", "logicalType": "timestamp-micros"}, 0),
    ],
)
def test_a_default_of_the_fields_type_is_accepted(field_type: Any, default: Any) -> None:
    doc = {
        "type": "record",
        "name": "r",
        "fields": [{"name": "a", "type": field_type, "default": default}],
    }
    assert parse_avro_schema(doc).names() == ["a"]
