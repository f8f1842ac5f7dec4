"""JVM steps (`"type": "jvm"`): the class name, the output schema, the options against the
class's options schema (schemas/jvm/<class>.json), streaming, and what is lowered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.diagnostics import Diagnostic
from etlc.dsl.jvm_steps import OptionsSchemaError, schema_file, shipped_classes
from etlc.dsl.plan import EnvString, EnvVariables

ROOT = Path(__file__).resolve().parents[3]
AVRO_DIR = ROOT / "schemas" / "avro"
LATEST = "etlc.jvm.transform.LatestByKey"

ORDERS = {
    "id": "orders",
    "type": "files",
    "path": "/data/orders.csv",
    "format": "csv",
    "schema": "order.avsc",
}
OPTIONS = {"keys": ["order_id"], "order_by": "ordered_at"}


def jvm(**overrides: Any) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": "latest",
        "type": "jvm",
        "input": "orders",
        "class": LATEST,
        "options": OPTIONS,
    }
    step.update(overrides)
    return {k: v for k, v in step.items() if v is not None}


def definition(step: dict[str, Any], mode: str = "batch") -> dict[str, Any]:
    return {
        "name": "j",
        "mode": mode,
        "extract": [ORDERS],
        "transform": [step],
        "load": [
            {
                "input": step["id"],
                "type": "files",
                "path": "/out",
                "format": "parquet",
                "mode": "overwrite",
            }
        ],
    }


def check(tmp_path: Path, doc: dict[str, Any], jvm_dirs: tuple[Path, ...] = ()) -> Any:
    path = tmp_path / "j.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return check_file(path, CheckOptions((AVRO_DIR,), None, jvm_dirs))


def only(result: Any, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1 and len(result.diagnostics) == 1, result.diagnostics
    return found[0]


def test_a_jvm_step_is_lowered_to_its_class_and_configuration(tmp_path: Path) -> None:
    result = check(tmp_path, definition(jvm()))
    assert result.diagnostics == [] and result.plan is not None
    step = result.plan.step("latest")
    assert step.impl == "etlc.transforms.jvm:jvm_transform"
    assert dict(step.args) == {
        "class_name": LATEST,
        "step": {
            "id": "latest",
            "type": "jvm",
            "input": "orders",
            "class": LATEST,
            "options": {"keys": ["order_id"], "order_by": "ordered_at"},
        },
        "variables": EnvVariables(),
    }
    # Without `schema`, the output has the input's columns.
    assert step.schema.names() == result.plan.step("orders").schema.names()
    assert LATEST in shipped_classes()


def test_a_declared_output_schema_is_the_outputs(tmp_path: Path) -> None:
    result = check(tmp_path, definition(jvm(schema="customer.avsc")))
    assert result.diagnostics == []
    assert result.plan.step("latest").schema.names() == [
        "customer_id",
        "name",
        "country",
        "segment",
    ]
    assert dict(result.plan.step("latest").args)["step"]["schema"] == "customer.avsc"
    missing = check(tmp_path, definition(jvm(schema="nope.avsc")))
    assert only(missing, "E204").param("schema") == "nope.avsc"


def test_env_variables_in_options_are_resolved_at_run_time(tmp_path: Path) -> None:
    env = tmp_path / "env"
    env.mkdir()
    (env / "dev.json").write_text('{"variables": {"col": "order_id"}}')
    doc = definition(jvm(**{"class": "com.example.Steps", "options": {"label": "${col}"}}))
    path = tmp_path / "j.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = check_file(path, CheckOptions((AVRO_DIR,), env, (tmp_path,)))
    assert result.plan is not None, result.diagnostics
    options = dict(result.plan.step("latest").args)["step"]["options"]
    assert options == {"label": EnvString("${col}")}
    assert result.plan.variables == ("col",)


def test_a_class_name_without_its_package_is_e212_with_the_known_class(tmp_path: Path) -> None:
    d = only(check(tmp_path, definition(jvm(**{"class": "LatestByKey"}))), "E212")
    assert d.param("class_name") == "LatestByKey"
    assert LATEST in d.hint
    line = (tmp_path / "j.json").read_text().splitlines()[d.span.line - 1]
    assert line[d.span.col - 1 :].startswith('"LatestByKey"')


def test_an_unknown_class_of_etlcs_own_package_is_e212_did_you_mean(tmp_path: Path) -> None:
    d = only(check(tmp_path, definition(jvm(**{"class": "etlc.jvm.transform.LatestByKy"}))), "E212")
    assert d.hint == f"did you mean `{LATEST}`?"


def test_a_class_name_that_is_no_java_name_is_a_shape_error(tmp_path: Path) -> None:
    result = check(tmp_path, definition(jvm(**{"class": "com.example.my-step"})))
    assert [d.code for d in result.diagnostics if d.is_error] == ["E106"]


@pytest.mark.parametrize(
    ("options", "rule", "at"),
    [
        ({"keys": ["order_id"], "order_by": "ordered_at", "kees": 1}, "E101", "kees"),
        ({"keys": "order_id", "order_by": "ordered_at"}, "E102", "keys"),
        ({"keys": [], "order_by": "ordered_at"}, "E106", "keys"),
        ({"keys": ["order_id"]}, "E103", "options"),
    ],
)
def test_options_against_the_classs_schema_are_e213_at_the_option(
    tmp_path: Path, options: dict[str, Any], rule: str, at: str
) -> None:
    result = check(tmp_path, definition(jvm(options=options)))
    d = only(result, "E213")
    assert (d.param("rule"), d.param("class_name")) == (rule, LATEST)
    text = (tmp_path / "j.json").read_text().splitlines()[d.span.line - 1]
    assert f'"{at}"' in text
    assert result.plan is None


def test_missing_options_are_reported_when_the_class_requires_some(tmp_path: Path) -> None:
    found = check(tmp_path, definition(jvm(options=None))).diagnostics
    assert [(d.code, d.param("rule")) for d in found] == [("E213", "E103")] * 2
    assert all("`options`" in d.message for d in found)


def test_options_naming_columns_are_looked_up_in_the_input(tmp_path: Path) -> None:
    result = check(tmp_path, definition(jvm(options={"keys": ["order"], "order_by": "orderd_at"})))
    found = [(d.code, d.param("column"), d.hint) for d in result.diagnostics]
    assert found == [
        ("E302", "order", "did you mean `order_id`?"),
        ("E302", "orderd_at", "did you mean `ordered_at`?"),
    ]


def test_options_of_a_class_without_a_known_schema_are_w204(tmp_path: Path) -> None:
    result = check(tmp_path, definition(jvm(**{"class": "com.example.Dedupe"})))
    assert result.plan is not None
    d = only(result, "W204")
    assert not d.is_error and d.param("class_name") == "com.example.Dedupe"
    # A class given no options has nothing unchecked: no warning.
    quiet = check(tmp_path, definition(jvm(**{"class": "com.example.Dedupe", "options": None})))
    assert quiet.diagnostics == []


def test_a_projects_own_options_schema_is_used(tmp_path: Path) -> None:
    steps = tmp_path / "jvm"
    steps.mkdir()
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    (steps / "com.example.Dedupe.json").write_text(json.dumps(schema))
    ok = check(
        tmp_path, definition(jvm(**{"class": "com.example.Dedupe", "options": {"n": 2}})), (steps,)
    )
    assert ok.diagnostics == []
    bad = definition(jvm(**{"class": "com.example.Dedupe", "options": {"n": "2"}}))
    assert only(check(tmp_path, bad, (steps,)), "E213").param("rule") == "E102"
    (steps / "com.example.Dedupe.json").write_text('{"type": 5}')
    assert only(check(tmp_path, bad, (steps,)), "E205")


def test_a_jvm_step_in_a_streaming_pipeline_is_e402(tmp_path: Path) -> None:
    doc = definition(jvm(), mode="streaming")
    doc["load"][0]["mode"] = "append"
    doc["extract"] = [
        {
            "id": "orders",
            "type": "kafka",
            "connection": "events",
            "topic": "o",
            "schema": "order.avsc",
        }
    ]
    env = tmp_path / "env"
    env.mkdir()
    (env / "dev.json").write_text('{"connections": {"events": {"system": "kafka"}}}')
    path = tmp_path / "j.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    result = check_file(path, CheckOptions((AVRO_DIR,), env))
    errors = [d for d in result.diagnostics if d.is_error]
    assert [(d.code, d.param("type")) for d in errors] == [("E402", "jvm")]
    assert "state" in errors[0].hint


# --- a project's options schema is untrusted input ---------------------------------------------

CUSTOM = "com.example.Dedupe"


def with_schema(tmp_path: Path, schema: Any, options: Any = None) -> Any:
    steps = tmp_path / "jvm"
    steps.mkdir(exist_ok=True)
    text = schema if isinstance(schema, str) else json.dumps(schema)
    (steps / f"{CUSTOM}.json").write_text(text)
    step = jvm(**{"class": CUSTOM, "options": options or {"n": 1}})
    return check(tmp_path, definition(step), (steps,))


@pytest.mark.parametrize(
    "ref", ["file:///etc/passwd", "http://127.0.0.1:9/schema.json", "../x.json", "#/$defs/nope"]
)
def test_a_ref_outside_the_options_schema_is_e205_and_nothing_is_read(
    tmp_path: Path, ref: str
) -> None:
    d = only(with_schema(tmp_path, {"properties": {"n": {"$ref": ref}}}), "E205")
    assert ref in d.message and "root:" not in d.message


@pytest.mark.parametrize("pattern", ["^(a)\\1$", "^(?=a)", "(?<!x)y"])
def test_a_pattern_re2_cannot_run_is_e205_with_the_reason(tmp_path: Path, pattern: str) -> None:
    d = only(with_schema(tmp_path, {"properties": {"n": {"pattern": pattern}}}), "E205")
    assert "cannot be used" in d.message and "RE2" in d.hint


def test_options_patterns_are_anchored_as_json_schema_says(tmp_path: Path) -> None:
    schema = {"properties": {"n": {"type": "string", "pattern": "^[a-z]+$"}}}
    assert with_schema(tmp_path, schema, {"n": "abc"}).diagnostics == []
    d = only(with_schema(tmp_path, schema, {"n": "abc\n"}), "E213")
    assert d.param("rule") == "E106"
    redos = {"properties": {"n": {"type": "string", "pattern": "^(a+)+$"}}}
    assert only(with_schema(tmp_path, redos, {"n": "a" * 60 + "!"}), "E213")


def test_an_exponential_options_schema_stops_with_a_diagnostic(tmp_path: Path) -> None:
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(50)
    }
    defs["d50"] = False
    d = only(with_schema(tmp_path, {"$ref": "#/$defs/d0", "$defs": defs}), "E213")
    assert d.param("rule") == "E106"


def test_an_options_schema_that_is_not_json_never_echoes_its_text(tmp_path: Path) -> None:
    d = only(with_schema(tmp_path, "root:x:0:0:canary-91c2:/root:/bin/bash"), "E205")
    assert "canary-91c2" not in d.message and "line 1" in d.message


def test_an_options_schema_over_the_limit_is_e005(tmp_path: Path) -> None:
    only(with_schema(tmp_path, "{" + " " * (1 << 20) + "}"), "E005")


def test_an_options_schema_symlinked_out_of_its_folder_is_e214(tmp_path: Path) -> None:
    steps = tmp_path / "jvm"
    steps.mkdir()
    (tmp_path / "elsewhere.json").write_text('{"type": "object"}')
    (steps / f"{CUSTOM}.json").symlink_to(tmp_path / "elsewhere.json")
    result = check(tmp_path, definition(jvm(**{"class": CUSTOM})), (steps,))
    assert only(result, "E214")


@pytest.mark.parametrize("name", ["../../etc/passwd", "com/example/X", "com.example.X\n", "a..b"])
def test_a_class_name_never_becomes_a_path(name: str) -> None:
    with pytest.raises(OptionsSchemaError) as raised:
        schema_file(name, [Path("/etc")])
    assert raised.value.code == "E214"


def test_refs_inside_an_options_schema_resolve_in_it_not_in_the_wrapper(tmp_path: Path) -> None:
    schema = {
        "$defs": {"count": {"type": "integer"}},
        "type": "object",
        "properties": {"n": {"$ref": "#/$defs/count"}},
    }
    assert with_schema(tmp_path, schema, {"n": 2}).diagnostics == []
    assert only(with_schema(tmp_path, schema, {"n": "2"}), "E213").param("rule") == "E102"
    # `#` is the options schema itself: a loop that never goes into the document.
    assert only(with_schema(tmp_path, {"$ref": "#"}), "E213").param("rule") == "E106"


@pytest.mark.parametrize(
    ("schema", "why"),
    [
        # A subschema's own `$schema` would be validated by jsonschema's stock validator for
        # that draft: Python's regex engine, no work budget (`^(a|a)*$` backtracks for minutes).
        (
            {
                "properties": {
                    "n": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "pattern": "^(a|a)*$",
                    }
                }
            },
            "`$schema` may name only Draft 2020-12",
        ),
        (
            {"properties": {"n": {"$schema": "http://json-schema.org/draft-03/schema#"}}},
            "`$schema` may name only Draft 2020-12",
        ),
        ({"$schema": "http://json-schema.org/draft-04/schema#"}, "only Draft 2020-12"),
        # Evaluated by walking every subschema they reach, outside the work budget.
        ({"unevaluatedProperties": False}, "`unevaluatedProperties` is not supported"),
        ({"items": {"unevaluatedItems": False}}, "`unevaluatedItems` is not supported"),
    ],
)
def test_options_schemas_etlc_cannot_validate_within_bounds_are_e205(
    tmp_path: Path, schema: dict[str, Any], why: str
) -> None:
    d = only(with_schema(tmp_path, schema, {"n": "a" * 40 + "!"}), "E205")
    assert why in d.message


def test_the_draft_2020_12_schema_keyword_at_the_top_is_accepted(tmp_path: Path) -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    assert not [d for d in with_schema(tmp_path, schema).diagnostics if d.is_error]
