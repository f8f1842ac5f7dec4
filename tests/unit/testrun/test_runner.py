"""The runner in this test session's SparkSession: the examples pass, a changed value fails
with a diff naming the key and the column, a broken count and a bad expected row are named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from etlc.codegen.output import write
from etlc.dsl.pipeline_tests import check_test_file
from etlc.pipeline_test_spec import Outcome
from etlc.pipeline_testing import prepare
from etlc.project import Project
from etlc.runtime.logs import configure
from etlc.testrun import runner
from etlc.testrun.compare import SHOWN, diff_lines

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "tests" / "pipelines"
PROJECT = Project.at(ROOT)


def _run(spark: Any, tmp_path: Path, *files: Path) -> list[Outcome]:
    checks = [check_test_file(f, PROJECT) for f in files]
    assert all(c.ok for c in checks), [c.diagnostics for c in checks]
    prepared = prepare(checks, PROJECT, tmp_path / "work")
    write(prepared.outputs)
    try:
        return runner.run_tests(spark, prepared.run)
    finally:
        configure()  # the runner pointed etlc's log lines at each test's file


def _edited(tmp_path: Path, name: str, edit: Any) -> Path:
    doc = json.loads((EXAMPLES / name).read_text())
    edit(doc)
    shutil.copy(EXAMPLES / "customers.csv", tmp_path / "customers.csv")
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_the_examples_pass_batch_streaming_and_expectations(spark: Any, tmp_path: Path) -> None:
    outcomes = _run(spark, tmp_path, *sorted(EXAMPLES.glob("*.test.json")))
    assert [(o.test, o.passed, o.failures) for o in outcomes] == [
        ("revenue_per_status_and_minute", True, ()),
        ("revenue_per_country", True, ()),
        # The join's output is empty: the observations above it arrive empty, read as 0.
        ("an_order_without_its_customer_is_left_out", True, ()),
        ("rules_drop_warn_and_quarantine", True, ()),
        ("a_paid_order_of_nothing_halts_before_any_load", True, ()),
    ]
    assert all(Path(o.log).is_file() for o in outcomes)


def test_one_value_off_names_the_key_and_the_column(spark: Any, tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        doc["tests"] = doc["tests"][:1]
        rows = doc["tests"][0]["expect"]["by_country"]["rows"]
        rows[0]["revenue_with_vat"] = 120.07
        rows.append({"country": "PL", "revenue": 1, "orders": 1})

    (outcome,) = _run(spark, tmp_path, _edited(tmp_path, "orders_by_country.test.json", edit))
    assert not outcome.passed and not outcome.error
    assert outcome.failures == (
        'by_country: row country="DE" differs in revenue_with_vat: expected 120.07, got 120.06',
        'by_country: missing row {"country": "PL", "revenue": 1.00, "revenue_with_vat": null, '
        '"orders": 1, "customers": null}',
    )


def test_a_wrong_count_a_bad_expected_row_and_a_failed_run(spark: Any, tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        test = doc["tests"][0]
        test["counts"]["orders"]["small_order"] = 2
        test["expect"]["paid"]["rows"][0]["amount"] = "lots"
        broken = json.loads(json.dumps(test))
        broken["name"] = "null_id"
        broken["given"]["orders"]["rows"][0]["order_id"] = None
        halt = doc["tests"][1]
        halt["halt"]["rules"]["positive_amount"] = 2
        no_halt = json.loads(json.dumps(halt))
        no_halt["name"] = "no_halt"
        no_halt["given"]["orders"]["rows"].pop()
        doc["tests"] = [test, broken, halt, no_halt]

    path = _edited(tmp_path, "orders_quality.test.json", edit)
    first, second, third, fourth = _run(spark, tmp_path, path)
    assert first.failures[0].startswith("paid: an expected row does not fit the dataset's types")
    assert first.failures[1:] == ("orders: rule `small_order` broken by 1 record(s), expected 2",)
    assert second.error and not second.passed
    assert second.failures[0].startswith("the pipeline failed: step `orders`: 1 of 4 records")
    assert third.failures == ("paid: rule `positive_amount` broken by 1 record(s), expected 2",)
    assert not third.error
    assert fourth.failures == ("the run did not halt; the test expects a halt at step `paid`",)


def test_the_diff_shows_a_bounded_number_of_rows() -> None:
    from pyspark.sql import Row

    missing = [Row(k=i, v=i) for i in range(SHOWN + 1)]
    lines = diff_lines("d", ["k", "v"], missing, [Row(k=0, v=9)], ["k"])
    assert lines[0] == "d: row k=0 differs in v: expected 0, got 9"
    assert lines[-1] == f"d: more missing rows than the {SHOWN} shown"
    assert len(lines) == SHOWN + 1
    unkeyed = diff_lines("d", ["k"], [Row(k=1)], [Row(k=2)], [])
    assert unkeyed == ['d: missing row {"k": 1}', 'd: extra row {"k": 2}']


def test_a_driver_that_cannot_be_built_under_test_is_that_tests_error(tmp_path: Path) -> None:
    from types import ModuleType

    from etlc.pipeline_test_spec import TestCase, TestFile

    driver = ModuleType("broken_driver")

    def build(env: Any) -> Any:
        return env.connection("crm", object).host  # a profile never opened has no host

    driver.build = build  # type: ignore[attr-defined]
    case = TestCase("t", (), ())
    file = TestFile("x.test.json", "p", "unused.py", (case,))
    outcome = runner.run_case(None, driver, file, case, str(tmp_path))  # type: ignore[arg-type]
    configure()
    assert outcome.error and not outcome.passed
    assert outcome.failures[0].startswith("etlc test could not run it: ")


def test_a_driver_that_cannot_be_imported_makes_its_files_tests_errors(tmp_path: Path) -> None:
    from etlc.pipeline_test_spec import TestCase, TestFile, TestRun

    broken = tmp_path / "broken.py"
    broken.write_text("import etlc_no_such_plugin\n")
    cases = (TestCase("a", (), ()), TestCase("b", (), ()))
    run = TestRun((TestFile("x.test.json", "p", str(broken), cases),), str(tmp_path))
    outcomes = runner.run_tests(None, run)  # type: ignore[arg-type]
    assert [(o.test, o.error, o.passed) for o in outcomes] == [
        ("a", True, False),
        ("b", True, False),
    ]
    assert outcomes[0].failures == (
        "etlc test could not import the compiled driver: No module named 'etlc_no_such_plugin'",
    )
