"""The checker: every rule it enforces, asserted by code and position, plus the typed plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.diagnostics import Diagnostic
from etlc.dsl.plan import EnvString

ROOT = Path(__file__).resolve().parents[3]
AVRO_DIR = ROOT / "schemas" / "avro"

ORDERS = {
    "id": "orders",
    "type": "files",
    "path": "${data_dir}/orders.csv",
    "format": "csv",
    "schema": "order.avsc",
    "options": {"header": True},
}
CUSTOMERS = {
    "id": "customers",
    "type": "files",
    "path": "/data/c.json",
    "format": "json",
    "schema": "customer.avsc",
}


def definition(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "t",
        "extract": [ORDERS, CUSTOMERS],
        "transform": [],
        "load": [
            {
                "input": "orders",
                "type": "files",
                "path": "/out",
                "format": "parquet",
                "mode": "overwrite",
            }
        ],
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    d = tmp_path / "env"
    d.mkdir()
    (d / "dev.json").write_text(json.dumps({"variables": {"data_dir": "/d"}}))
    return d


def check(
    tmp_path: Path, env_dir: Path, doc: Any, text: str | None = None, name: str = "p.json"
) -> Any:
    path = tmp_path / name
    path.write_text(text if text is not None else json.dumps(doc, indent=2), encoding="utf-8")
    return check_file(path, CheckOptions(schema_dirs=(AVRO_DIR,), env_dir=env_dir))


def codes(result: Any) -> list[str]:
    """Error codes only; warnings (W...) are asserted on their own."""
    return [d.code for d in result.diagnostics if d.is_error]


def only(result: Any, code: str) -> Diagnostic:
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, result.diagnostics
    return found[0]


def transform(*steps: dict[str, Any], load_input: str | None = None) -> dict[str, Any]:
    last = load_input or steps[-1]["id"]
    return definition(
        transform=list(steps),
        load=[
            {"input": last, "type": "files", "path": "/out", "format": "parquet", "mode": "append"}
        ],
    )


def test_a_valid_definition_gives_a_typed_plan(tmp_path: Path, env_dir: Path) -> None:
    result = check(
        tmp_path,
        env_dir,
        transform(
            {"id": "paid", "type": "filter", "input": "orders", "condition": "status = 'PAID'"},
            {
                "id": "j",
                "type": "join",
                "left": "paid",
                "right": "customers",
                "on": ["customer_id"],
                "how": "left",
            },
            {
                "id": "agg",
                "type": "aggregate",
                "input": "j",
                "group_by": ["country"],
                "aggregates": {"revenue": "sum(amount)", "n": "count(*)"},
            },
        ),
    )
    assert result.ok, result.diagnostics
    plan = result.plan
    assert [s.id for s in plan.steps] == ["orders", "customers", "paid", "j", "agg", "load_1_agg"]
    assert plan.variables == ("data_dir",)
    assert dict(plan.step("orders").args)["path"] == EnvString("${data_dir}/orders.csv")
    agg = plan.step("agg").schema
    assert [(f.name, f.type.describe()) for f in agg.fields] == [
        ("country", "string?"),  # a left join makes the right side nullable
        ("revenue", "decimal(22,2)?"),
        ("n", "long"),
    ]
    rules = dict(plan.step("orders").rules)
    # Lowered rules are emitted as the expression checker renders them after re-checking.
    assert (
        rules["enum:status"]
        == "status IS NULL OR status IN ('NEW', 'PAID', 'SHIPPED', 'CANCELLED')"
    )
    assert rules["not_null:order_id"] == "NOT order_id IS NULL"
    assert rules["rule:amount_not_negative"] == "NOT (amount >= 0) IS FALSE"
    assert "not_null:coupon" not in rules
    assert [a.coordinate for a in plan.artifacts] == ["org.apache.spark:spark-avro_2.13:4.2.0"]


def test_three_mistakes_give_three_diagnostics_with_positions(
    tmp_path: Path, env_dir: Path
) -> None:
    text = """{
  "name": "three",
  "extract": [
    {"id": "orders", "type": "filez", "path": "/x", "format": "csv", "schema": "order.avsc"}
  ],
  "transform": [
    {"id": "f", "type": "filter", "input": "orderz", "condition": "amount > 1"}
  ],
  "load": [
    {"input": "f", "type": "files", "path": "/o", "format": "csv", "mode": "upsert", "keys": ["order_id"]}
  ]
}
"""
    result = check(tmp_path, env_dir, None, text=text)
    got = [(d.code, d.span.line, d.span.col) for d in result.diagnostics]
    assert got == [("E105", 4, 30), ("E202", 7, 44), ("E401", 10, 76)]
    assert result.plan is None


def test_an_unknown_key_does_not_hide_errors_further_down(tmp_path: Path, env_dir: Path) -> None:
    doc = transform({"id": "big", "type": "filter", "input": "orders", "condition": "amont > 100"})
    doc["extract"][0] = dict(ORDERS, options={"heder": True})
    doc["load"][0]["mode"] = "upsert"
    assert codes(check(tmp_path, env_dir, doc)) == ["E101", "E302", "E401"]


def test_write_mode_the_sink_does_not_support(tmp_path: Path, env_dir: Path) -> None:
    doc = definition(
        load=[
            {
                "input": "orders",
                "type": "files",
                "path": "/o",
                "format": "csv",
                "mode": "upsert",
                "keys": ["order_id"],
            }
        ]
    )
    d = only(check(tmp_path, env_dir, doc), "E401")
    assert d.param("mode") == "upsert" and "table format" in d.hint


def test_unknown_key_and_wrong_type(tmp_path: Path, env_dir: Path) -> None:
    doc = definition(retry={"max_retries": "3", "delay": 5})
    result = check(tmp_path, env_dir, doc)
    assert sorted(codes(result)) == ["E101", "E102"]


def test_duplicate_and_dangling_ids(tmp_path: Path, env_dir: Path) -> None:
    doc = transform(
        {"id": "orders", "type": "filter", "input": "orders", "condition": "amount > 1"},
        {"id": "g", "type": "filter", "input": "nothing", "condition": "amount > 1"},
    )
    result = check(tmp_path, env_dir, doc)
    assert only(result, "E201").param("id") == "orders"
    assert only(result, "E202").param("ref") == "nothing"


def test_unused_datasets_are_a_warning_not_an_error(tmp_path: Path, env_dir: Path) -> None:
    result = check(tmp_path, env_dir, definition())
    assert result.ok  # customers is extracted but never used
    warning = only(result, "W201")
    assert warning.param("id") == "customers" and not warning.is_error


def test_cycles_are_reported(tmp_path: Path, env_dir: Path) -> None:
    doc = transform(
        {"id": "a", "type": "filter", "input": "b", "condition": "amount > 1"},
        {"id": "b", "type": "filter", "input": "a", "condition": "amount > 1"},
    )
    d = only(check(tmp_path, env_dir, doc), "E203")
    assert d.param("cycle") in ("a,b,a", "b,a,b")


def test_missing_and_invalid_schema_files(tmp_path: Path, env_dir: Path) -> None:
    bad = dict(ORDERS, schema="nope.avsc")
    assert (
        only(check(tmp_path, env_dir, definition(extract=[bad])), "E204").param("schema")
        == "nope.avsc"
    )
    (tmp_path / "broken.avsc").write_text(
        '{"type": "record", "name": "x", "fields": [{"name": "a", "type": "uuidz"}]}'
    )
    result = check_file(
        _write(tmp_path, definition(extract=[dict(ORDERS, schema="broken.avsc")])),
        CheckOptions(schema_dirs=(tmp_path,), env_dir=env_dir),
    )
    assert "E205" in codes(result)


@pytest.mark.parametrize(
    ("schema", "where", "line"),
    [
        # Line 4 is `    {"name": "a", <schema>}`: the value starts at column 46 or 27.
        ('"type": "long", "default": "x"', "$.fields[0].default", (4, 46)),
        ('"type": "uuidz"', "$.fields[0].type", (4, 27)),
    ],
)
def test_an_invalid_schema_is_reported_at_its_place_in_the_schema_file(
    tmp_path: Path, env_dir: Path, schema: str, where: str, line: tuple[int, int]
) -> None:
    text = (
        '{\n  "type": "record", "name": "x",\n  "fields": [\n    {"name": "a", '
        + schema
        + "}\n  ]\n}\n"
    )
    (tmp_path / "broken.avsc").write_text(text)
    result = check_file(
        _write(tmp_path, definition(extract=[dict(ORDERS, schema="broken.avsc")])),
        CheckOptions(schema_dirs=(tmp_path,), env_dir=env_dir),
    )
    d = only(result, "E205")
    assert d.span.file.endswith("broken.avsc") and (d.span.line, d.span.col) == line
    assert f"at {where}: " in d.message and "(used as `broken.avsc`)" in d.message


def test_a_dotted_key_of_a_schema_file_is_found_whole(tmp_path: Path) -> None:
    from etlc.dsl.avro_files import schema_span

    path = tmp_path / "r.avsc"
    path.write_text('{"type": "record",\n "etlc.rules": {"bad name": "x > 1"}}')
    span = schema_span(path, "r.avsc", "$.etlc.rules")
    assert span is not None and (span.line, span.col) == (2, 16)
    assert schema_span(path, "r.avsc", "$.fields[3].type") is None
    assert schema_span(tmp_path / "missing.avsc", "m.avsc", "$.type") is None


def _write(tmp_path: Path, doc: Any) -> Path:
    p = tmp_path / "w.json"
    p.write_text(json.dumps(doc, indent=2))
    return p


@pytest.mark.parametrize(
    ("step", "code"),
    [
        ({"id": "x", "type": "filter", "input": "orders", "condition": "amont > 1"}, "E302"),
        (
            {
                "id": "x",
                "type": "aggregate",
                "input": "orders",
                "group_by": ["status"],
                "aggregates": {"s": "sum(status)"},
            },
            "E304",
        ),
        (
            {
                "id": "x",
                "type": "aggregate",
                "input": "orders",
                "group_by": ["statuz"],
                "aggregates": {"s": "sum(amount)"},
            },
            "E302",
        ),
        (
            {
                "id": "x",
                "type": "aggregate",
                "input": "orders",
                "group_by": ["status"],
                "aggregates": {"status": "count(*)"},
            },
            "E208",
        ),
        ({"id": "x", "type": "select", "input": "orders", "columns": {"a": "sum(amount)"}}, "E305"),
        ({"id": "x", "type": "filter", "input": "orders", "condition": "amount + 1"}, "E304"),
        (
            {
                "id": "x",
                "type": "window",
                "input": "orders",
                "time": {"column": "status", "size": "1 hour"},
                "aggregates": {"n": "count(*)"},
            },
            "E304",
        ),
        (
            {
                "id": "x",
                "type": "window",
                "input": "orders",
                "time": {"column": "ordered_at", "size": "1 hour", "slide": "2 hours"},
                "aggregates": {"n": "count(*)"},
            },
            "E209",
        ),
        ({"id": "x", "type": "window", "input": "orders", "aggregates": {"n": "count(*)"}}, "E210"),
        ({"id": "x", "type": "join", "left": "orders", "right": "customers"}, "E210"),
    ],
)
def test_step_errors(tmp_path: Path, env_dir: Path, step: dict[str, Any], code: str) -> None:
    assert code in codes(check(tmp_path, env_dir, transform(step)))


def test_join_key_type_mismatch(tmp_path: Path, env_dir: Path) -> None:
    doc = transform(
        {
            "id": "names",
            "type": "select",
            "input": "customers",
            "columns": {"customer_id": "name", "country": "country"},
        },
        {"id": "j", "type": "join", "left": "orders", "right": "names", "on": ["customer_id"]},
    )
    d = only(check(tmp_path, env_dir, doc), "E304")
    assert d.param("column") == "customer_id"


def test_condition_join_with_clashing_columns(tmp_path: Path, env_dir: Path) -> None:
    doc = transform(
        {
            "id": "j",
            "type": "join",
            "left": "orders",
            "right": "customers",
            "condition": "left.customer_id = right.customer_id",
        }
    )
    assert only(check(tmp_path, env_dir, doc), "E208").param("column") == "customer_id"


def test_literal_credentials_are_rejected(tmp_path: Path, env_dir: Path) -> None:
    doc = definition()
    doc["extract"][0] = dict(ORDERS, options={"header": True, "password": "hunter2"})
    doc["load"][0]["path"] = "s3a://user:secret@bucket/out"
    result = check(tmp_path, env_dir, doc)
    e501 = [d for d in result.diagnostics if d.code == "E501"]
    assert len(e501) == 2
    assert "E101" not in codes(result)  # the credential diagnostic replaces "unknown key"
    assert all("hunter2" not in d.message and "secret" not in d.message for d in result.diagnostics)


def test_vault_references_must_be_well_formed(tmp_path: Path, env_dir: Path) -> None:
    doc = definition()
    doc["extract"][0] = dict(ORDERS, options={"header": True, "token": "vault://bad ref"})
    assert "E502" in codes(check(tmp_path, env_dir, doc))


def test_lint_accepts_exactly_the_vault_references_a_driver_resolves(
    tmp_path: Path, env_dir: Path
) -> None:
    # The vault refuses a reference over 256 characters; lint must not pass one it refuses.
    longest = "vault://db/" + "p" * (256 - len("vault://db/#k")) + "#k"
    too_long = longest.replace("#k", "p#k")
    for ref, expected in ((longest, []), (too_long, ["E502"])):
        doc = definition()
        doc["extract"][0] = dict(ORDERS, options={"header": True, "token": ref})
        found = [c for c in codes(check(tmp_path, env_dir, doc)) if c.startswith("E5")]
        assert found == expected, ref


def test_undefined_environment_variables(tmp_path: Path, env_dir: Path) -> None:
    doc = definition(extract=[dict(ORDERS, path="${root}/x/${data_dir}"), CUSTOMERS])
    d = only(check(tmp_path, env_dir, doc), "E207")
    assert (d.param("variable"), d.param("env")) == ("root", "dev.json")


def test_variables_without_any_environment_file(tmp_path: Path) -> None:
    path = _write(tmp_path, definition())
    result = check_file(path, CheckOptions(schema_dirs=(AVRO_DIR,), env_dir=None))
    assert codes(result) == ["E207"]


def test_yaml_definitions_are_accepted(tmp_path: Path, env_dir: Path) -> None:
    text = """
name: from_yaml
extract:
  - {id: orders, type: files, path: "${data_dir}/o.csv", format: csv, schema: order.avsc}
load:
  - {input: orders, type: files, path: /out, format: avro, mode: append}
"""
    result = check(tmp_path, env_dir, None, text=text, name="p.yaml")
    assert result.ok, result.diagnostics
    assert result.plan.name == "from_yaml"


def test_a_checker_bug_is_reported_as_a_diagnostic(
    tmp_path: Path, env_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlc.dsl import checker as module

    def boom(*args: Any) -> Any:
        raise RuntimeError("kaput")

    monkeypatch.setattr(module, "run_order", boom)
    result = check(tmp_path, env_dir, definition())
    assert codes(result) == ["E000"] and result.plan is None


def test_malformed_input_is_a_diagnostic(tmp_path: Path, env_dir: Path) -> None:
    assert codes(check(tmp_path, env_dir, None, text='{"name": ')) == ["E002"]
    assert codes(check_file(tmp_path / "missing.json")) == ["E001"]


def test_every_example_lints_clean() -> None:
    # How fast lint is, is the `compiler` benchmark's to measure (bench/), not a unit test's.
    files = sorted((ROOT / "pipelines").glob("*.json"))
    results = [check_file(f) for f in files]
    assert files and [r.diagnostics for r in results] == [[] for _ in files]


def test_only_steps_that_make_records_cross_the_avro_boundary_again(
    tmp_path: Path, env_dir: Path
) -> None:
    transforms = [
        {"id": "live", "type": "filter", "input": "orders", "condition": "amount > 0"},
        {"id": "sized", "type": "derive", "input": "live", "columns": {"big": "amount > 100"}},
        {"id": "known", "type": "join", "how": "semi", "left": "sized", "right": "customers",
         "on": ["customer_id"]},
        {"id": "unknown", "type": "join", "how": "anti", "left": "sized", "right": "customers",
         "on": ["customer_id"]},
        {"id": "named", "type": "join", "left": "orders", "right": "customers",
         "on": ["customer_id"]},
        {"id": "all", "type": "join", "how": "full", "left": "orders", "right": "customers",
         "on": ["customer_id"]},
        {"id": "narrow", "type": "derive", "input": "customers",
         "columns": {"customer_id": "CAST(customer_id AS INT)"}},
        {"id": "widened", "type": "join", "left": "orders", "right": "narrow",
         "on": ["customer_id"]},
        {"id": "per_status", "type": "aggregate", "input": "orders", "group_by": ["status"],
         "aggregates": {"n": "count(*)"}},
    ]  # fmt: skip
    result = check(tmp_path, env_dir, definition(transform=transforms))
    assert codes(result) == []
    rechecked = {s.id: s.recheck for s in result.plan.by_role("transform")}
    assert rechecked == {
        "live": (),
        "sized": ("big",),  # only the derived column: the others are the input's values
        "known": (),
        "unknown": (),
        "named": (),  # every output value is a value of an input column, of its type
        "all": (),  # an outer join's nulls land only in columns it made nullable
        "narrow": ("customer_id",),  # a cast makes a value
        "widened": None,  # the right side's int key widens to long: all of it again
        "per_status": None,
    }


def test_the_plan_is_bounded_by_the_columns_of_all_its_datasets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each dataset's schema is embedded in the driver: past the bound, compile stops at the
    # step that crosses it instead of writing a driver of gigabytes.
    from etlc.dsl import checker

    definition = ROOT / "pipelines" / "orders_by_country.json"
    assert check_file(definition).ok
    monkeypatch.setattr(checker, "MAX_PLAN_COLUMNS", 10)
    result = check_file(definition)
    assert result.plan is None
    [found] = [d for d in result.diagnostics if d.code == "E008"]
    assert "more than 10 columns in all" in found.message


@pytest.mark.parametrize(
    "step",
    [
        {
            "id": "s",
            "type": "select",
            "input": "orders",
            "columns": {"Amount": "amount", "amount": "order_id"},
        },
        {"id": "s", "type": "derive", "input": "orders", "columns": {"ORDER_ID": "order_id + 1"}},
        {
            "id": "s",
            "type": "aggregate",
            "input": "orders",
            "group_by": ["status"],
            "aggregates": {"Status": "count(*)"},
        },
    ],
)
def test_output_columns_differing_only_in_case_are_e208(
    tmp_path: Path, env_dir: Path, step: dict[str, Any]
) -> None:
    # Spark resolves names without regard to case: to it these are one column.
    result = check(tmp_path, env_dir, transform(step))
    found = only(result, "E208")
    assert "differ only in case" in found.message or "defined twice" in found.message


@pytest.mark.parametrize("name", ["json", "typing", "pyspark", "etlc", "select"])
def test_a_pipeline_named_like_a_module_the_driver_imports_is_e216(
    tmp_path: Path, env_dir: Path, name: str
) -> None:
    # generated/<name>.py runs with its folder first on sys.path: it would shadow the module.
    found = only(check(tmp_path, env_dir, definition(name=name)), "E216")
    assert f"`{name}` is the name of a Python module" in found.message


def test_undefined_variables_are_listed_up_to_a_bound_then_counted(
    tmp_path: Path, env_dir: Path
) -> None:
    doc = definition()
    doc["extract"] = [dict(ORDERS, path="".join(f"${{v{i:03d}}}" for i in range(150)))]
    found = [d for d in check(tmp_path, env_dir, doc).diagnostics if d.code == "E207"]
    assert len(found) == 101
    assert found[-1].message == "50 more variables are not defined in dev.json"


def test_the_missing_environment_hint_names_the_projects_environments_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlc.dsl.checker import default_options
    from etlc.project import find_project

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "etlc.toml").write_text('environments = "config/env"\n')
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "schemas" / "avro").mkdir(parents=True)
    (tmp_path / "schemas" / "avro" / "order.avsc").write_text(
        json.dumps({"type": "record", "name": "Order", "fields": [{"name": "id", "type": "long"}]})
    )
    definition = tmp_path / "pipelines" / "x.json"
    definition.write_text(
        json.dumps(
            {
                "name": "x",
                "extract": [
                    {
                        "id": "src",
                        "type": "files",
                        "path": "${data_dir}/x.csv",
                        "format": "csv",
                        "schema": "order.avsc",
                    }
                ],
                "load": [{"input": "src", "type": "files", "path": "/out", "format": "csv"}],
            }
        )
    )
    project = find_project(tmp_path)
    result = check_file(definition, default_options(definition, project))
    [missing] = [d for d in result.diagnostics if d.code == "E207"]
    assert missing.hint == "add config/env/<env>.json with a `variables` object"
