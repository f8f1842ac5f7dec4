"""Expectations in a batch run: each policy on an extract and on a transform, their counts in
the logs and the report, the run's status, and no Spark job of their own."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import AuthenticationError, ValidationFailedError
from etlc.runtime.expectations import Expectation, ExpectationCounts, Policy
from etlc.runtime.graph import DatasetSchema, ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.halt import halted
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.pipeline import BatchPipeline
from etlc.runtime.report import EXIT_PARTIAL, EXIT_SUCCESS, EXIT_VALIDATION, RunReport, Status
from etlc.transforms.filter import filter_rows

SCHEMA = DatasetSchema(
    {
        "type": "record",
        "name": "item",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "qty", "type": ["null", "int"], "default": None},
        ],
    },
    "`id` BIGINT, `qty` INT",
)
RULES = (("not_null:id", "`id` IS NOT NULL"),)
# As the compiler lowers them: a null condition meets the rule.
SMALL = Expectation("small", "NOT (qty < 100) IS FALSE", "drop")
EVEN = Expectation("even", "NOT (id % 2 = 0) IS FALSE", "warn")
POSITIVE = Expectation("positive", "NOT (qty > 0) IS FALSE", "fail")
ROWS = "id,qty\n1,5\n2,500\n3,\n4,7\n5,-1\n6,900\n"


def finished(stream: io.StringIO) -> dict[str, dict[str, Any]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return {e["step"]: e for e in found if e["event"] == "step_finished"}


def run(
    spark: Any,
    tmp: Path,
    *,
    on_extract: tuple[Expectation, ...] = (),
    on_transform: tuple[Expectation, ...] = (),
    on_invalid: Policy = "fail",
    rows: str = ROWS,
    held_by: str | None = None,
) -> RunReport:
    """``held_by``: a step whose records set aside a quarantined load writes, as JSON to
    ``tmp/held`` (declared first: it still runs after the other load)."""
    source = tmp / "items.csv"
    source.write_text(rows, encoding="utf-8")
    extractor = FilesExtractor(str(source), "csv", SCHEMA, {"header": "true"})
    keep = TransformStep(
        "kept", ("items",), filter_rows("id > 0"), SCHEMA, expectations=on_transform
    )
    graph = PipelineGraph(
        "items",
        (
            ExtractStep(
                "items", extractor, SCHEMA, RULES, expectations=on_extract, on_invalid=on_invalid
            ),
        ),
        (keep,),
        (
            *(
                (LoadStep("held", held_by, JsonFiles(tmp), "append", quarantined=True),)
                if held_by
                else ()
            ),
            LoadStep("out", "kept", FilesLoader(str(tmp / "out"), "parquet"), "overwrite"),
        ),
    )
    settings = Settings(stage_dir=str(tmp / "stage"), quarantine_dir=str(tmp / "quarantine"))
    env = Environment("test", "test.json", settings=settings)
    return BatchPipeline(graph, spark, env, EventLog(RunContext("items", run_id="r1"))).run()


def ids(spark: Any, tmp: Path) -> list[int]:
    return sorted(r.id for r in spark.read.parquet(str(tmp / "out")).collect())


def test_drop_and_warn_on_an_extract_count_and_leave_out_exactly_the_broken_records(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_extract=(SMALL, EVEN))
    assert report.status is Status.PARTIAL and report.exit_code == EXIT_PARTIAL, report.error
    assert ids(spark, tmp_path) == [1, 3, 4, 5]  # 2 and 6 dropped; 3 (null qty) meets `small`
    step = finished(log_stream)["items"]
    assert (step["records_in"], step["records_out"], step["dropped"]) == (6, 4, 2)
    assert step["expectations"] == {
        "small": {"policy": "drop", "failed": 2},
        "even": {"policy": "warn", "failed": 3},
    }
    assert finished(log_stream)["kept"]["records_in"] == 4
    [extract] = [m for m in report.steps if m.step == "items"]
    assert extract.extra["dropped"] == 2 and report.left_out == 2


def test_warn_alone_keeps_every_record_and_the_run_a_success(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_transform=(EVEN,))
    assert report.status is Status.SUCCESS and report.exit_code == EXIT_SUCCESS, report.error
    assert ids(spark, tmp_path) == [1, 2, 3, 4, 5, 6]
    step = finished(log_stream)["kept"]
    assert step["expectations"] == {"even": {"policy": "warn", "failed": 3}}
    assert "dropped" not in step


def test_drop_on_a_transform_counts_what_it_left_out(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_transform=(SMALL,))
    assert report.status is Status.PARTIAL, report.error
    assert ids(spark, tmp_path) == [1, 3, 4, 5]
    step = finished(log_stream)["kept"]
    assert (step["records_in"], step["records_out"], step["dropped"]) == (6, 4, 2)
    assert finished(log_stream)["out"]["records_in"] == 4


def test_fail_on_an_extract_halts_with_the_schema_rules_counts_and_sample(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_extract=(POSITIVE, SMALL))
    assert report.exit_code == EXIT_VALIDATION
    error = report.error
    assert isinstance(error, ValidationFailedError) and error.step == "items"
    assert error.violations == {"expect:positive": 1}
    assert "1 of 6 records failed validation: expect:positive (1)" in str(error)
    assert [r["id"] for r in error.sample] == [5]
    assert not (tmp_path / "out").exists()


def test_fail_on_a_transform_halts_before_any_load_and_keeps_the_old_output(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    assert run(spark, tmp_path).error is None
    report = run(spark, tmp_path, on_transform=(POSITIVE, SMALL))
    assert report.exit_code == EXIT_VALIDATION
    error = report.error
    assert isinstance(error, ValidationFailedError) and error.step == "kept"
    assert error.violations == {"expect:positive": 1}
    assert "1 of 6 records failed validation: expect:positive (1)" in str(error)
    assert [(r["id"], r["_etlc_violation"]) for r in error.sample] == [(5, "expect:positive")]
    logged = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    [failed] = [e for e in logged if e["event"] == "validation_failed"]
    assert (failed["stage"], failed["step"], failed["invalid"]) == ("transform", "kept", 1)
    # The overwrite never started: the last run's output is all there.
    assert ids(spark, tmp_path) == [1, 2, 3, 4, 5, 6]


def test_a_transform_with_a_fail_rule_counts_its_other_rules_where_it_is_staged(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    lenient = Expectation("positive", "NOT (qty > -10) IS FALSE", "fail")
    report = run(spark, tmp_path, on_transform=(lenient, SMALL, EVEN))
    assert report.status is Status.PARTIAL, report.error
    assert ids(spark, tmp_path) == [1, 3, 4, 5]
    step = finished(log_stream)["kept"]
    assert (step["records_in"], step["records_out"], step["dropped"]) == (6, 4, 2)
    assert step["expectations"]["even"] == {"policy": "warn", "failed": 3}


HELD = Expectation("modest", "NOT (qty < 600) IS FALSE", "quarantine")


def quarantined(spark: Any, tmp: Path, step: str, raw: bool = False) -> list[dict[str, Any]]:
    """The run's quarantined records (an extract's keep the reader's raw text: left out
    unless ``raw``)."""
    rows = spark.read.format("avro").load(str(tmp / "quarantine" / "items" / step / "r1"))
    found = [r.asDict() for r in rows.collect()]
    if not raw:
        found = [{k: v for k, v in r.items() if k != "_etlc_corrupt"} for r in found]
    return sorted(found, key=str)


def record(id_: int, qty: int, rule: str, step: str) -> dict[str, Any]:
    return {"id": id_, "qty": qty, "_etlc_rule": rule, "_etlc_step": step, "_etlc_run_id": "r1"}


@pytest.mark.parametrize("where", ["extract", "transform"])
def test_quarantine_sets_aside_exactly_the_broken_records_with_their_rule(
    spark: Any, tmp_path: Path, log_stream: io.StringIO, where: str
) -> None:
    rules = (HELD, SMALL, EVEN)  # 6 (qty 900) breaks both: set aside, not dropped
    step = "items" if where == "extract" else "kept"
    report = run(spark, tmp_path, **{f"on_{where}": rules})
    assert report.status is Status.PARTIAL and report.exit_code == EXIT_PARTIAL, report.error
    assert ids(spark, tmp_path) == [1, 3, 4, 5]  # 2 (qty 500) dropped, 6 set aside
    assert quarantined(spark, tmp_path, step) == [record(6, 900, "modest", step)]
    line = finished(log_stream)[step]
    assert (line["records_in"], line["records_out"], line["dropped"], line["quarantined"]) == (
        6,
        4,
        1,
        1,
    )
    assert line["expectations"]["modest"] == {"policy": "quarantine", "failed": 1}
    logged = [json.loads(x) for x in log_stream.getvalue().splitlines()]
    [aside] = [e for e in logged if e["event"] == "records_quarantined"]
    assert (aside["step"], aside["records"]) == (step, 1)
    assert aside["path"] == str(tmp_path / "quarantine" / "items" / step / "r1")
    assert report.left_out == 2


def test_a_record_breaking_a_fail_and_a_quarantine_rule_halts_the_run(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_extract=(HELD, POSITIVE))
    error = report.error
    assert isinstance(error, ValidationFailedError)
    assert error.violations == {"expect:positive": 1}
    # The sample holds the invalid record only, not the one set aside (id 6).
    assert [r["id"] for r in error.sample] == [5]
    assert "_etlc_quarantine" not in error.sample[0]
    assert not (tmp_path / "quarantine").exists()


BROKEN_ROWS = "id,qty\n1,5\nx,3\n,4\n2,700\n"  # x cannot be parsed; the third has no id


@pytest.mark.parametrize("policy", ["drop", "quarantine"])
def test_on_invalid_gives_the_schemas_rules_a_policy_of_their_own(
    spark: Any, tmp_path: Path, log_stream: io.StringIO, policy: Policy
) -> None:
    report = run(spark, tmp_path, on_extract=(HELD,), on_invalid=policy, rows=BROKEN_ROWS)
    assert report.status is Status.PARTIAL, report.error
    assert ids(spark, tmp_path) == [1]
    line = finished(log_stream)["items"]
    assert line["expectations"]["parse"] == {"policy": policy, "failed": 1}
    assert line["expectations"]["not_null:id"] == {"policy": policy, "failed": 2}
    assert line["validation"] == {"passed": True, "invalid": 0}
    aside = quarantined(spark, tmp_path, "items")
    if policy == "drop":
        assert line["dropped"] == 2 and aside == [record(2, 700, "modest", "items")]
    else:  # each record with the first rule it broke
        assert line["quarantined"] == 3
        assert {(r["id"], r["_etlc_rule"]) for r in aside} == {
            (None, "not_null:id"),
            (None, "parse"),
            (2, "modest"),
        }
        # The CSV reader keeps a record it cannot parse as text: the quarantine keeps it too.
        raw = quarantined(spark, tmp_path, "items", raw=True)
        texts = {r["_etlc_rule"]: r["_etlc_corrupt"] for r in raw}
        assert texts["parse"] == "x,3" and texts["modest"] is None


class JsonFiles(FilesLoader):
    """JSON files in ``tmp/held``; each write notes whether the main output was there."""

    made: ClassVar[list[JsonFiles]] = []  # each one, for the test to look at

    def __init__(self, tmp: Path) -> None:
        super().__init__(str(tmp / "held"), "json")
        self.tmp = tmp
        self.after_out: list[bool] = []
        self.columns: list[str] = []
        JsonFiles.made.append(self)

    def load(self, df: Any, mode: str) -> Any:
        self.after_out.append((self.tmp / "out").exists())
        self.columns = df.columns
        return super().load(df, mode)


def held_rows(spark: Any, tmp: Path) -> list[dict[str, Any]]:
    return sorted((r.asDict() for r in spark.read.json(str(tmp / "held")).collect()), key=str)


@pytest.mark.parametrize("where", ["extract", "transform"])
def test_a_quarantined_load_writes_the_records_set_aside_after_the_other_loads(
    spark: Any, tmp_path: Path, log_stream: io.StringIO, where: str
) -> None:
    step = "items" if where == "extract" else "kept"
    report = run(spark, tmp_path, held_by=step, **{f"on_{where}": (HELD, SMALL)})
    assert report.status is Status.PARTIAL, report.error
    assert ids(spark, tmp_path) == [1, 3, 4, 5]
    assert held_rows(spark, tmp_path) == [record(6, 900, "modest", step)]
    assert not (tmp_path / "quarantine").exists()  # the load took them, not the folder
    assert finished(log_stream)["held"]["records_out"] == 1
    logged = [json.loads(x) for x in log_stream.getvalue().splitlines()]
    assert not [e for e in logged if e["event"] == "records_quarantined"]


def test_a_quarantined_load_of_an_extract_keeps_the_raw_text_and_runs_when_none_is_held(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    report = run(spark, tmp_path, on_invalid="quarantine", rows=BROKEN_ROWS, held_by="items")
    assert report.status is Status.PARTIAL, report.error
    held = JsonFiles.made[-1]
    assert held.after_out == [True]
    assert held.columns == [
        "id",
        "qty",
        "_etlc_corrupt",
        "_etlc_rule",
        "_etlc_step",
        "_etlc_run_id",
    ]
    texts = {r["_etlc_rule"]: r.get("_etlc_corrupt") for r in held_rows(spark, tmp_path)}
    assert texts == {"parse": "x,3", "not_null:id": None}
    # A run that sets nothing aside still runs the load: an empty dataset of those columns.
    again = tmp_path / "again"
    again.mkdir()
    clean = run(spark, again, on_invalid="quarantine", rows="id,qty\n1,5\n", held_by="items")
    assert clean.status is Status.SUCCESS, clean.error
    assert (
        JsonFiles.made[-1].columns == held.columns
        and finished(log_stream)["held"]["records_out"] == 0
    )


class Unreachable(FilesLoader):
    """A target that refuses every write, as a database that stays down would."""

    def load(self, df: Any, mode: str) -> Any:
        raise AuthenticationError("password authentication failed", "out")


def test_a_run_whose_load_fails_leaves_no_quarantine_behind(spark: Any, tmp_path: Path) -> None:
    source = tmp_path / "items.csv"
    source.write_text(ROWS, encoding="utf-8")
    extractor = FilesExtractor(str(source), "csv", SCHEMA, {"header": "true"})
    graph = PipelineGraph(
        "items",
        (ExtractStep("items", extractor, SCHEMA, RULES, expectations=(HELD,)),),
        (),
        (LoadStep("out", "items", Unreachable(str(tmp_path / "out"), "parquet"), "overwrite"),),
    )
    settings = Settings(stage_dir=str(tmp_path / "stage"), quarantine_dir=str(tmp_path / "q"))
    env = Environment("test", "test.json", settings=settings)
    report = BatchPipeline(graph, spark, env, EventLog(RunContext("items", run_id="r1"))).run()
    assert isinstance(report.error, AuthenticationError)
    assert not (tmp_path / "q").exists()  # the next run reads them again and sets them aside


def test_expectations_add_no_spark_job(spark: Any, tmp_path: Path) -> None:
    def jobs(name: str, **expected: tuple[Expectation, ...]) -> int:
        group = f"expectations-{name}"
        spark.sparkContext.setJobGroup(group, group)
        try:
            report = run(spark, tmp_path / name, **expected)
        finally:
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        assert report.error is None
        return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))

    (tmp_path / "plain").mkdir()
    (tmp_path / "checked").mkdir()
    plain = jobs("plain")
    assert plain > 0
    lenient = Expectation("not_huge", "NOT (qty < 10000) IS FALSE", "fail")
    checked = jobs("checked", on_extract=(SMALL, EVEN, lenient), on_transform=(SMALL, EVEN))
    assert checked == plain


def test_counts_add_up_and_read_back_from_observed_metrics() -> None:
    rules = (SMALL, EVEN, POSITIVE)
    first = ExpectationCounts.of(
        rules, {"etlc_expect_small": 2, "etlc_expect_even": 1, "etlc_dropped": 2}
    )
    second = ExpectationCounts.of(rules, {"etlc_expect_small": 1, "etlc_dropped": 1})
    total = first + second
    assert total.dropped == 3
    assert total.fields() == {
        "expectations": {
            "small": {"policy": "drop", "failed": 3},
            "even": {"policy": "warn", "failed": 1},
        },
        "dropped": 3,
    }
    values: dict[str, Any] = {"records": 9, "etlc_expect_even": 4, "etlc_dropped": 0}
    taken = ExpectationCounts.taken(rules, values)
    assert values == {"records": 9} and taken.broken["even"] == ("warn", 4)
    assert ExpectationCounts.of((POSITIVE,), {}).fields() == {}


def test_halted_reads_an_expectation_back_through_a_wrapping_error() -> None:
    text = (
        'ETLC_INVALID_RECORD {"step": "kept", "rule": "expect:positive", "at": "", '
        "\"detail\": \"{'id':5,'note':'a\nb'}\"}END"
    )
    try:
        try:
            raise RuntimeError(text)
        except RuntimeError as inner:
            raise ConnectionError("the loader's own account") from inner
    except ConnectionError as outer:
        error = halted(outer)
    assert error is not None and error.step == "kept"
    assert str(error).endswith("a record breaks the expectation `positive`")
    assert error.sample[0]["record"] == "{'id':5,'note':'a\nb'}"
