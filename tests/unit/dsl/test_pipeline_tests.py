"""Test files, checked without Spark: against their schema and the plan of the definition
they name, each problem at its line and column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.pipeline_tests import check_test_file, is_test_file
from etlc.project import Project

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "pipelines"
PROJECT = Project.at(ROOT)

ORDER = {
    "order_id": 1,
    "customer_id": 1,
    "amount": 10.0,
    "status": "PAID",
    "ordered_at": "2026-03-01T10:00:00Z",
}


def _write(folder: Path, doc: dict[str, Any], name: str = "t.test.json") -> Path:
    path = folder / name
    # One key per line, so each diagnostic's line says which key it is about.
    path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return path


def _codes(path: Path) -> list[tuple[str, int]]:
    return [(d.code, d.span.line) for d in check_test_file(path, PROJECT).diagnostics]


def _one(test: dict[str, Any], pipeline: str = "orders_by_country.json") -> dict[str, Any]:
    return {"pipeline": pipeline, "tests": [{"name": "t", **test}]}


def test_the_examples_check_clean_with_each_datasets_own_key() -> None:
    files = sorted(EXAMPLES.glob("*.test.json"))
    assert len(files) == 3
    checks = {f.name: check_test_file(f, PROJECT) for f in files}
    for name, check in checks.items():
        assert check.ok, (name, check.diagnostics)
    by_country = checks["orders_by_country.test.json"].tests[0].expected[0]
    assert by_country.key == ("country",)  # the aggregate's group_by
    assert by_country.columns == (
        "country",
        "revenue",
        "revenue_with_vat",
        "orders",
        "customers",
    )
    per_minute = checks["order_revenue_stream.test.json"].tests[0].expected[0]
    assert per_minute.key == ("window_start", "status")  # the window and its group
    quality = checks["orders_quality.test.json"].tests[0]
    assert quality.counts == (
        ("orders", "small_order", 1),
        ("orders", "has_coupon", 1),
        ("paid", "known_coupon", 1),
    )
    assert quality.expected[0].key == ()  # a filter has no key of its own
    # No rows name no column: an empty dataset is compared on every column it has.
    demo = checks["orders_by_country.test.json"]
    assert demo.plan is not None
    enriched = demo.tests[1].expected[0]
    assert enriched.columns == tuple(demo.plan.step("enriched").schema.names())


def test_only_files_named_test_are_test_files() -> None:
    assert is_test_file(Path("a/orders.test.json"))
    assert is_test_file(Path("orders.test.yml"))
    assert not is_test_file(Path("pipelines/orders.json"))


def test_an_unknown_extract_dataset_step_and_rule_are_named_at_their_keys(tmp_path: Path) -> None:
    doc = _one(
        {
            "given": {"order": {"rows": []}},
            "expect": {"by_countryy": {"rows": []}},
            "counts": {"nope": {"x": 1}, "orders": {"small_order": 0}},
        }
    )
    path = _write(tmp_path, doc)
    checked = check_test_file(path, PROJECT)
    found = {(d.code, d.message) for d in checked.diagnostics}
    assert ("E701", "no extract `order` in `orders_by_country`") in found
    assert ("E701", "no dataset `by_countryy` in `orders_by_country`") in found
    assert ("E701", "no step `nope` in `orders_by_country`") in found
    assert ("E704", "step `orders` has no counted rule `small_order`") in found
    hints = {d.hint for d in checked.diagnostics}
    assert "did you mean `orders`?" in hints
    assert "did you mean `by_country`?" in hints
    assert not checked.ok
    text = path.read_text().splitlines()
    for d in checked.diagnostics:  # each at the key it is about
        assert d.span.file == str(path)
        key = d.message.split("`")[-4 if d.code == "E701" else -2]
        assert f'"{key}"' in text[d.span.line - 1]


def test_columns_not_in_the_datasets_schema(tmp_path: Path) -> None:
    doc = _one(
        {
            "given": {"orders": {"rows": [{**ORDER, "amout": 1}]}},
            "expect": {"by_country": {"rows": [{"country": "DE", "revenu": 1}], "key": ["cty"]}},
        }
    )
    checked = check_test_file(_write(tmp_path, doc), PROJECT)
    messages = [(d.code, d.message, d.hint) for d in checked.diagnostics]
    assert ("E702", "extract `orders` has no column `amout`", "did you mean `amount`?") in messages
    assert (
        "E702",
        "dataset `by_country` has no column `revenu`",
        "did you mean `revenue`?",
    ) in messages


def test_a_key_the_rows_do_not_name_and_a_second_test_of_one_name(tmp_path: Path) -> None:
    test = {
        "name": "same",
        "expect": {"by_country": {"rows": [{"country": "DE"}], "key": ["orders"]}},
    }
    doc = {"pipeline": "orders_by_country.json", "tests": [test, {**test, "expect": {}}]}
    codes = [c for c, _ in _codes(_write(tmp_path, doc))]
    assert codes == ["E706", "E705"]


def test_an_unknown_key_is_a_schema_error(tmp_path: Path) -> None:
    doc = _one({"givn": {}})
    assert [c for c, _ in _codes(_write(tmp_path, doc))] == ["E101"]


@pytest.mark.parametrize(
    ("pipeline", "code"),
    [
        ("missing.json", "E701"),
        ("../README.json", "E214"),
        ("/etc/passwd.json", "E214"),
    ],
)
def test_the_pipeline_is_a_definition_of_the_project(
    tmp_path: Path, pipeline: str, code: str
) -> None:
    assert [c for c, _ in _codes(_write(tmp_path, _one({}, pipeline)))] == [code]


def test_a_definition_with_errors_has_its_tests_refused(tmp_path: Path) -> None:
    project = Project.at(tmp_path)
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "bad.json").write_text('{"name": "bad"}')
    path = _write(tmp_path, _one({}, "bad.json"))
    (found,) = check_test_file(path, project).diagnostics
    assert found.code == "E703"
    assert found.hint == "`etlc lint pipelines/bad.json` shows them"


def test_given_files_lie_beside_the_test_file_and_name_known_columns(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "customers.csv", tmp_path / "customers.csv")
    (tmp_path / "wrong.csv").write_text("customer_id,nom\n1,A\n")
    (tmp_path / "order.csv").write_text("name,customer_id,country,segment\n")
    (tmp_path / "bom.csv").write_text("\ufeffcustomer_id,name,country,segment\n1,A,DE,CONSUMER\n")
    (tmp_path / "orders.json").write_text(json.dumps([ORDER]))
    (tmp_path / "broken.jsonl").write_text("{not json\n")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "lone.json").write_text('[{"name": "\\ud800"}]')
    (tmp_path / "folder.csv").mkdir()
    cases = {
        "customers.csv": [],
        "bom.csv": [],  # a byte order mark is not part of the first name
        "wrong.csv": ["E702"],
        "order.csv": ["E702"],  # Spark would refuse the header in another order
        "absent.csv": ["E707"],
        "folder.csv": ["E707"],
        "../customers.csv": ["E214"],
        "broken.jsonl": ["E707"],
        "deep.json": ["E707"],
        "lone.json": ["E006"],
    }
    for name, codes in cases.items():
        doc = _one({"given": {"customers": {"file": name}}})
        assert [c for c, _ in _codes(_write(tmp_path, doc))] == codes, name
    doc = _one({"given": {"orders": {"file": "orders.json"}}})
    checked = check_test_file(_write(tmp_path, doc), PROJECT)
    (given,) = checked.tests[0].given
    # Handed on as written (every digit kept), read by Spark as one JSON document.
    assert (given.format, given.data) == ("json_array", (tmp_path / "orders.json").read_bytes())


def test_a_number_a_float_cannot_hold_is_refused_with_the_string_to_write(tmp_path: Path) -> None:
    (tmp_path / "t.test.json").write_text(
        '{"pipeline": "orders_by_country.json", "tests": [{"name": "t", "expect": {"by_country": '
        '{"rows": [{"country": "DE", "revenue": 12345678901234567.89, "orders": 2.50}]}}}]}'
    )
    (found,) = check_test_file(tmp_path / "t.test.json", PROJECT).diagnostics
    assert (found.code, found.message) == (
        "E709",
        "the number 12345678901234567.89 loses digits as a JSON number",
    )
    assert found.hint.startswith('write it as a string, "12345678901234567.89"')


def test_yaml_test_files_are_read_alike(tmp_path: Path) -> None:
    path = tmp_path / "t.test.yaml"
    path.write_text(
        "pipeline: orders_by_country.json\n"
        "tests:\n"
        "  - name: t\n"
        "    expect:\n"
        "      by_country:\n"
        "        rows:\n"
        "          - {country: DE, orders: 2, revenu: 1}\n"
    )
    (found,) = check_test_file(path, PROJECT).diagnostics
    assert (found.code, found.span.line) == ("E702", 7)


def test_a_halt_names_a_step_with_fail_rules_and_only_those(tmp_path: Path) -> None:
    def halt(doc: dict[str, Any], pipeline: str = "orders_quality.json") -> list[str]:
        return [c for c, _ in _codes(_write(tmp_path, _one(doc, pipeline)))]

    assert halt({"halt": {"step": "paid", "rules": {"positive_amount": 1}}}) == []
    assert halt({"halt": {"step": "orders", "rules": {"not_null:order_id": 1, "parse": 1}}}) == []
    assert halt({"halt": {"step": "paid", "rules": {"known_coupon": 1}}}) == ["E704"]
    assert halt({"halt": {"step": "pad"}}) == ["E701"]
    rows = {"paid": {"rows": []}}
    assert halt({"halt": {"step": "paid"}, "expect": rows}) == ["E708"]
    assert halt({"halt": {"step": "paid"}, "counts": {"paid": {"known_coupon": 1}}}) == ["E708"]
    # A join has no rule of its own that could halt the run.
    assert halt({"halt": {"step": "enriched"}}, "orders_by_country.json") == ["E708"]
    (test,) = check_test_file(
        _write(
            tmp_path,
            _one(
                {"halt": {"step": "paid", "rules": {"positive_amount": 2}}}, "orders_quality.json"
            ),
        ),
        PROJECT,
    ).tests
    assert test.halt == ("paid", (("positive_amount", 2),))
