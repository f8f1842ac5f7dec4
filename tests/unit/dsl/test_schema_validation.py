import copy
from typing import Any

import pytest

from etlc.dsl.diagnostics import Diagnostic, Span, did_you_mean, render
from etlc.dsl.parse import Format, parse_text
from etlc.dsl.schema_validation import json_path, validate
from etlc.dsl.tree import JArray, JValue

# The shape of the pipeline schema: a `type` enum on each step, plus one if/then per type.
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "steps"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z_]+$", "maxLength": 20},
        "mode": {"enum": ["batch", "streaming"]},
        "version": {"const": 1},
        "retry": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "max_retries": {"type": "integer", "minimum": 0, "maximum": 10},
                "delay_seconds": {"type": ["number", "null"], "exclusiveMaximum": 60},
                "backoff": {"type": "number", "multipleOf": 0.5},
            },
        },
        "steps": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/step"}},
        "tags": {"type": "array", "uniqueItems": True, "maxItems": 3},
        "columns": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^[a-z_]+$"},
            "additionalProperties": {"type": "string", "minLength": 1},
        },
        "env": {
            "type": "object",
            "additionalProperties": False,
            "patternProperties": {"^X_": {"type": "string"}},
            "properties": {"home": {"type": "string"}},
        },
        "limit": {"anyOf": [{"type": "integer"}, {"type": "string", "pattern": "^[0-9]+$"}]},
        "owner": {"oneOf": [{"type": "string"}, {"type": "string", "minLength": 2}]},
        "note": {"not": {"type": "null"}},
        "legacy": False,
        "auth": {"type": "object", "dependentRequired": {"user": ["password"]}},
        "extra": {"type": "object", "properties": {"a": {}}, "unevaluatedProperties": False},
    },
    "$defs": {
        "step": {
            "type": "object",
            "required": ["id", "type"],
            "properties": {"type": {"enum": ["postgres", "files"]}},
            "allOf": [
                {
                    "if": {"properties": {"type": {"const": "postgres"}}},
                    "then": {"$ref": "#/$defs/pg"},
                },
                {
                    "if": {"properties": {"type": {"const": "files"}}},
                    "then": {"$ref": "#/$defs/files"},
                },
            ],
        },
        "pg": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type", "table"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "postgres"},
                "table": {"type": "string"},
            },
        },
        "files": {
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type", "format"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "files"},
                "path": {"type": "string"},
                "format": {"enum": ["csv", "json", "parquet"]},
                "group_by": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}

STEPS = '"steps": [{"id": "a", "type": "postgres", "table": "t"}]'


def check(text: str, fmt: Format = "json", schema: dict[str, Any] = SCHEMA) -> list[Diagnostic]:
    root, diagnostics = parse_text(text, f"p.{fmt}", fmt)
    assert diagnostics == []
    assert root is not None
    return validate(root, schema, f"p.{fmt}")


def where(diagnostics: list[Diagnostic]) -> list[tuple[str, int, int]]:
    return [(d.code, d.span.line, d.span.col) for d in diagnostics]


def one(text: str) -> Diagnostic:
    """The single diagnostic for a document that only adds ``text`` to a valid one."""
    found = check('{"name": "p", ' + STEPS + ", " + text + "}")
    assert len(found) == 1, found
    return found[0]


COL = len('{"name": "p", ' + STEPS + ", ") + 1  # where the added text starts


def test_valid_document() -> None:
    assert check('{"name": "p", ' + STEPS + "}") == []


THREE_MISTAKES = """\
{
  "name": "orders",
  "mode": "bacth",
  "steps": [
    {"id": "a", "type": "postgress", "table": "t", "url": "x"},
    {"id": "b", "type": "files", "paht": "/x", "format": "csv"}
  ]
}
"""


def test_three_mistakes_give_three_diagnostics() -> None:
    found = check(THREE_MISTAKES)
    assert where(found) == [("E104", 3, 11), ("E105", 5, 25), ("E101", 6, 34)]
    assert [d.span.end_col for d in found] == [18, 36, 40]
    mode, step_type, key = found
    assert mode.hint == did_you_mean("bacth", ["batch", "streaming"])
    assert step_type.param("type") == "postgress"
    assert step_type.param("path") == "steps[0]"
    assert step_type.hint == did_you_mean("postgress", ["postgres", "files"])
    assert key.param("key") == "paht"
    assert key.param("path") == "steps[1]"
    assert key.hint == did_you_mean("paht", ["path", "group_by"])
    assert render(key, THREE_MISTAKES).splitlines()[1:3] == [
        '   6 |     {"id": "b", "type": "files", "paht": "/x", "format": "csv"}',
        "                                        ^^^^^^",
    ]


def test_three_mistakes_in_yaml() -> None:
    text = """\
name: orders
mode: bacth
steps:
  - id: a
    type: postgress
  - id: b
    type: files
    paht: /x
    format: csv
"""
    assert where(check(text, "yaml")) == [("E104", 2, 7), ("E105", 5, 11), ("E101", 8, 5)]


def test_unknown_keys_one_per_key() -> None:
    found = check(
        '{"name": "p", ' + STEPS + ', "nmae": 1, "retry": {"max_retries": 1, "tries": 2}}'
    )
    assert where(found) == [("E101", 1, COL), ("E101", 1, COL + 39)]
    assert found[0].hint == did_you_mean(
        "nmae", SCHEMA["properties"].keys() - {"name", "steps", "retry"}
    )
    assert [d.param("path") for d in found] == ["", "retry"]
    assert found[0].span.end_col == COL + 6  # the key, quotes included


def test_unknown_key_when_every_allowed_key_is_used() -> None:
    d = one('"retry": {"max_retries": 1, "delay_seconds": 2, "backoff": 1, "x": 1}')
    assert (d.code, d.hint) == ("E101", "remove it")


def test_unknown_keys_with_pattern_properties() -> None:
    found = check('{"name": "p", ' + STEPS + ', "env": {"home": "/", "X_A": "1", "Y": "2"}}')
    assert where(found) == [("E101", 1, COL + 33)]


def test_false_subschema() -> None:
    # jsonschema drops the path of a `false` subschema's error: only the object is known.
    d = one('"legacy": true')
    assert (d.code, d.span.col) == ("E106", 1)


def test_unevaluated_properties_are_unknown_keys() -> None:
    found = check('{"name": "p", ' + STEPS + ', "extra": {"a": 1, "b": 2, "c": 3}}')
    assert where(found) == [("E101", 1, COL + 18), ("E101", 1, COL + 26)]


def test_wrong_type() -> None:
    d = one('"retry": {"max_retries": "3"}')
    assert (d.code, d.span.col, d.span.end_col) == ("E102", COL + 25, COL + 28)
    assert d.param("path") == "retry.max_retries"
    assert one('"retry": {"delay_seconds": "x"}').code == "E102"


@pytest.mark.parametrize("value", ["1.5", "null", "true", "[1]", '{"a": 1}'])
def test_wrong_type_of_any_kind(value: str) -> None:
    d = one('"retry": {"max_retries": ' + value + "}")
    assert (d.code, d.span.col) == ("E102", COL + 25)


def test_wrong_type_at_the_root() -> None:
    assert where(check("[1, 2]")) == [("E102", 1, 1)]
    assert where(check("[1, 2]", "yaml")) == [("E102", 1, 1)]


def test_missing_required_keys() -> None:
    text = '{\n  "steps": [\n    {"id": "a", "type": "postgres"}\n  ]\n}'
    found = check(text)
    assert where(found) == [("E103", 1, 1), ("E103", 3, 5)]
    assert [(d.param("key"), d.param("path")) for d in found] == [
        ("name", ""),
        ("table", "steps[0]"),
    ]
    assert found[1].span == Span("p.json", 3, 5, 3, 36)


def test_several_missing_keys_in_one_object() -> None:
    found = check("{}")
    assert [(d.code, d.param("key")) for d in found] == [("E103", "name"), ("E103", "steps")]


def test_enum_and_const() -> None:
    d = one('"mode": "Batch"')
    assert (d.code, d.span.col, d.param("value")) == ("E104", COL + 8, "Batch")
    assert d.hint == did_you_mean("Batch", ["batch", "streaming"])
    d = one('"version": 2')
    assert (d.code, d.span.col, d.param("value")) == ("E104", COL + 11, "2")


def test_unknown_step_type_hides_the_unknown_keys_it_causes() -> None:
    # A schema that also closes the step object's keys would call every key unknown.
    closed = copy.deepcopy(SCHEMA)
    step = closed["$defs"]["step"]
    step["additionalProperties"] = False
    step["properties"].update({"id": {}, "table": {}, "path": {}, "format": {}, "group_by": {}})
    text = '{"name": "p", "steps": [{"id": "a", "type": "s3", "bucket": "b"}]}'
    assert where(check(text, schema=closed)) == [("E105", 1, 45)]
    # With a known type the same key is reported.
    text = '{"name": "p", "steps": [{"id": "a", "type": "files", "format": "csv", "bucket": "b"}]}'
    assert where(check(text, schema=closed)) == [("E101", 1, 71)]


def test_step_type_of_the_wrong_type() -> None:
    found = check('{"name": "p", "steps": [{"id": "a", "type": 3}]}')
    assert where(found) == [("E105", 1, 45)]
    assert found[0].param("type") == "3"


def test_missing_step_type_reports_only_that() -> None:
    # Without `type`, every `if` holds vacuously: each branch's complaints would follow.
    found = check('{"name": "p", "steps": [{"id": "a", "table": "t", "path": "p"}]}')
    assert [(d.code, d.param("key")) for d in found] == [("E103", "type")]
    assert found[0].span.col == 25
    found = check('{"name": "p", "steps": [{"table": "t"}]}')
    assert [(d.code, d.param("key")) for d in found] == [("E103", "id"), ("E103", "type")]


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        pytest.param('"retry": {"max_retries": -1}', 25, id="minimum"),
        pytest.param('"retry": {"max_retries": 11}', 25, id="maximum"),
        pytest.param('"retry": {"delay_seconds": 60}', 27, id="exclusiveMaximum"),
        pytest.param('"retry": {"backoff": 0.7}', 21, id="multipleOf"),
        pytest.param('"tags": [1, 2, 3, 4]', 8, id="maxItems"),
        pytest.param('"columns": {}', 11, id="minProperties"),
        pytest.param('"columns": {"a": ""}', 17, id="minLength"),
        pytest.param('"limit": "ten"', 9, id="anyOf"),
        pytest.param('"limit": true', 9, id="anyOf-ambiguous"),
        pytest.param('"owner": "bob"', 9, id="oneOf-several"),
        pytest.param('"owner": 1', 9, id="oneOf-none"),
        pytest.param('"note": null', 8, id="not"),
        pytest.param('"auth": {"user": "u"}', 8, id="dependentRequired"),
    ],
)
def test_other_constraints(text: str, offset: int) -> None:
    d = one(text)
    assert (d.code, d.span.line, d.span.col) == ("E106", 1, COL + offset)
    assert d.message


def test_pattern_and_length_on_the_same_value() -> None:
    found = check('{"name": "Orders_Of_The_Last_Quarter", ' + STEPS + "}")
    assert where(found) == [("E106", 1, 10), ("E106", 1, 10)]


def test_repeated_item_points_at_the_repeat() -> None:
    d = one('"tags": ["a", {"x": 1, "y": 2}, {"y": 2, "x": 1}]')
    assert (d.code, d.span.col) == ("E106", COL + 32)


def test_repeated_number_in_two_spellings() -> None:
    d = one('"tags": [1, 1.0]')
    assert (d.code, d.span.col) == ("E106", COL + 8)


def test_bad_key_name_points_at_the_key() -> None:
    d = one('"columns": {"ok": "x", "Bad Name": "y"}')
    assert (d.code, d.span.col, d.span.end_col) == ("E106", COL + 23, COL + 33)
    assert d.param("path") == "columns"


def test_sorted_by_position() -> None:
    text = '{"zz": 1, "steps": [{"id": 1, "type": "files", "format": "xml"}], "aa": 2}'
    found = check(text)
    # jsonschema finds these keyword by keyword, not in document order.
    assert where(found) == [
        ("E103", 1, 1),
        ("E101", 1, 2),
        ("E102", 1, 28),
        ("E104", 1, 58),
        ("E101", 1, 67),
    ]


def test_too_deep_never_raises() -> None:
    node: JValue = JArray(Span.point("p.json"), ())
    for _ in range(5000):
        node = JArray(Span.point("p.json"), (node,))
    assert where(validate(node, {"type": "array"}, "p.json")) == [("E106", 1, 1)]


def test_json_path() -> None:
    assert json_path([]) == ""
    assert json_path(["transform", 1, "group_by"]) == "transform[1].group_by"
    assert json_path(["columns", "a b", 0]) == 'columns["a b"][0]'
    assert json_path([0, "x"]) == "[0].x"


# --- etlc's dialect: RE2 patterns, $ref inside the schema, bounded work ----------------------


def plain(schema: dict[str, Any], text: str) -> list[Diagnostic]:
    root, diagnostics = parse_text(text, "p.json", "json")
    assert root is not None, diagnostics
    return validate(root, schema, "p.json")


def test_patterns_match_like_ecma_262_not_python() -> None:
    schema = {"properties": {"name": {"pattern": "^[a-z]+$"}}}
    assert plain(schema, '{"name": "abc"}') == []
    # Python's re.search takes `$` before a final newline; RE2 and ECMA-262 do not.
    assert [d.code for d in plain(schema, '{"name": "evil\\n"}')] == ["E106"]
    digits = {"properties": {"n": {"pattern": "^\\d+$"}}}
    assert [d.code for d in plain(digits, '{"n": "\\u0661"}')] == ["E106"]  # Arabic-Indic one


def test_pattern_properties_and_additional_properties_use_the_same_engine() -> None:
    schema = {
        "patternProperties": {"^x_[a-z]+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert plain(schema, '{"x_a": 1}') == []
    found = plain(schema, '{"x_a\\n": 1, "x_b": "s"}')
    assert sorted(d.code for d in found) == ["E101", "E102"]


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    # Python's engine takes ~2**40 steps on this; RE2 one pass.
    schema = {"properties": {"s": {"pattern": "^(a+)+$"}}}
    assert [d.code for d in plain(schema, '{"s": "' + "a" * 40 + '!"}')] == ["E106"]


@pytest.mark.parametrize(
    "ref", ["file:///etc/passwd", "http://127.0.0.1:9/schema.json", "other.json", "#/$defs/nope"]
)
def test_a_ref_outside_the_schema_is_never_fetched(ref: str) -> None:
    (d,) = plain({"properties": {"a": {"$ref": ref}}}, '{"a": 1}')
    assert d.code == "E106" and d.param("incomplete") == "True"
    assert "root:" not in d.message


def test_exponential_schemas_stop_at_the_work_budget() -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(40)
    }
    defs["d40"] = False
    (d,) = plain({"$ref": "#/$defs/d0", "$defs": defs}, "{}")
    assert d.code == "E106" and d.param("incomplete") == "True"


def test_a_self_referring_schema_is_a_diagnostic_not_a_recursion_error() -> None:
    (d,) = plain({"$ref": "#"}, "{}")
    assert d.code == "E106" and "itself" in d.message


def test_unique_items_and_enum_in_linear_time_with_json_equality() -> None:
    schema = {"properties": {"a": {"uniqueItems": True}, "e": {"enum": [1, {"k": [True]}]}}}
    assert plain(schema, '{"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]}')[0].code == "E106"
    assert plain(schema, '{"a": [1, true, "1", [1], {"1": 1}]}') == []
    assert plain(schema, '{"a": [1, 1.0]}')[0].code == "E106"
    assert plain(schema, '{"e": 1.0}') == [] and plain(schema, '{"e": {"k": [true]}}') == []
    assert [d.code for d in plain(schema, '{"e": true}')] == ["E104"]
    items = ",".join(f'{{"i": {i}}}' for i in range(9_000))
    assert plain(schema, f'{{"a": [{items}]}}') == []


def test_a_long_enum_gives_a_short_message() -> None:
    (d,) = plain({"properties": {"e": {"enum": [f"v{i}" for i in range(5000)]}}}, '{"e": "x"}')
    assert d.code == "E104" and len(d.message) < 300


def test_validation_stops_after_max_errors() -> None:
    from etlc.dsl.schema_validation import MAX_ERRORS

    text = "[" + ",".join(['"x"'] * (MAX_ERRORS + 50)) + "]"
    found = plain({"items": {"type": "integer"}}, text)
    assert len(found) == MAX_ERRORS + 1
    assert found[-1].param("incomplete") == "True"


def test_the_definition_schemas_patterns_run_in_re2() -> None:
    import json as json_

    from etlc.dsl.resources import schema_path
    from etlc.dsl.schema_dialect import check_schema, compiled

    schema = json_.loads(schema_path().read_text(encoding="utf-8"))
    check_schema(schema)  # every `pattern` is a regex RE2 compiles (format: regex)
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                compiled(node["pattern"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def test_matching_a_long_string_against_a_large_pattern_is_bounded() -> None:
    # RE2 falls back to simulating the NFA for `[ab]*a[ab]{900}c` (program size ~900): over a
    # 500 KB string that is seconds of work, refused before it starts.
    schema = {"properties": {"p": {"type": "string", "pattern": "[ab]*a[ab]{900}c"}}}
    [found] = plain(schema, '{"p": "' + "ab" * 250_000 + '"}')
    assert found.code == "E106" and found.param("incomplete")
    assert "patterns costs over" in found.message
    assert plain(schema, '{"p": "' + "a" * 901 + 'c"}') == []  # short strings still match
