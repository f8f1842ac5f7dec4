"""BatchPipeline on local files: stage store validation, Avro boundary, metrics, reports."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import SchemaIncompatibleError, ValidationFailedError
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.pipeline import BatchPipeline
from etlc.runtime.report import EXIT_VALIDATION, Status
from etlc.transforms.derive import derive_columns
from etlc.transforms.filter import filter_rows
from tests.unit.runtime.items import SCHEMA
from tests.unit.runtime.log_lines import events

RULES = (
    ("not_null:id", "`id` IS NOT NULL"),
    ("not_null:kind", "`kind` IS NOT NULL"),
    ("enum:kind", "`kind` IS NULL OR `kind` IN ('A', 'B')"),
    ("rule:qty_positive", "(qty > 0) IS NOT FALSE"),
)


def graph(source: Path, out: Path, transforms: tuple[TransformStep, ...] = ()) -> PipelineGraph:
    last = transforms[-1].id if transforms else "items"
    return PipelineGraph(
        name="items",
        extracts=(
            ExtractStep(
                "items",
                FilesExtractor(str(source), "csv", SCHEMA, {"header": "true"}),
                SCHEMA,
                RULES,
            ),
        ),
        transforms=transforms,
        loads=(LoadStep("out", last, FilesLoader(str(out), "parquet"), "overwrite"),),
    )


def env(tmp_path: Path, **settings: Any) -> Environment:
    return Environment(
        "test", "test.json", settings=Settings(stage_dir=str(tmp_path / "stage"), **settings)
    )


def run(spark: Any, g: PipelineGraph, e: Environment) -> Any:
    return BatchPipeline(g, spark, e, EventLog(RunContext("items", run_id="run1"))).run()


def test_valid_records_flow_through_with_observed_counts(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n2,B,\n3,A,7\n", encoding="utf-8")
    big = TransformStep("big", ("items",), filter_rows("qty > 2"), SCHEMA)
    report = run(spark, graph(src, tmp_path / "out", (big,)), env(tmp_path))
    assert report.status is Status.SUCCESS, report.error
    assert sorted(r.id for r in spark.read.parquet(str(tmp_path / "out")).collect()) == [1, 3]
    counts = {(m.stage, m.step): (m.records_in, m.records_out) for m in report.steps}
    assert counts == {
        ("extract", "items"): (3, 3),
        ("load", "out"): (2, 2),
        ("transform", "big"): (3, 2),
    }
    finished = [e for e in events(log_stream) if e["event"] == "step_finished"]
    assert {e["step"] for e in finished} == {"items", "big", "out"}
    assert all(e["run_id"] == "run1" and e["pipeline"] == "items" for e in finished)
    assert not (tmp_path / "stage" / "run1").exists() or not any(
        (tmp_path / "stage" / "run1").iterdir()
    )


def test_invalid_records_halt_before_any_transform(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n,B,1\n3,C,1\n4,A,-5\nx,A,1\n", encoding="utf-8")
    calls: list[int] = []

    def spy(df: Any) -> Any:
        calls.append(1)
        return df

    step = TransformStep("spy", ("items",), spy, SCHEMA)
    report = run(spark, graph(src, tmp_path / "out", (step,)), env(tmp_path))
    assert report.status is Status.FAILED
    assert report.exit_code == EXIT_VALIDATION
    assert isinstance(report.error, ValidationFailedError)
    assert report.error.violations == {
        "parse": 1,
        "not_null:id": 2,
        "enum:kind": 1,
        "rule:qty_positive": 1,
    }
    assert calls == []  # no transform was even built
    assert not (tmp_path / "out").exists()
    failed = next(e for e in events(log_stream) if e["event"] == "validation_failed")
    assert failed["invalid"] == 4 and failed["records"] == 5
    assert sorted(r["_etlc_violation"] for r in failed["sample"]) == [
        "enum:kind",
        "not_null:id",
        "parse",
        "rule:qty_positive",
    ]


def test_sample_is_bounded(spark: Any, tmp_path: Path, log_stream: io.StringIO) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n" + "".join(f"{i},Z,1\n" for i in range(50)), encoding="utf-8")
    report = run(spark, graph(src, tmp_path / "out"), env(tmp_path, sample_size=3))
    assert isinstance(report.error, ValidationFailedError)
    assert report.error.violations == {"enum:kind": 50}
    assert len(report.error.sample) == 3


def test_source_with_unknown_columns_is_an_incompatibility(spark: Any, tmp_path: Path) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty,colour\n1,A,3,red\n", encoding="utf-8")
    report = run(spark, graph(src, tmp_path / "out"), env(tmp_path))
    assert isinstance(report.error, SchemaIncompatibleError)
    assert "colour" in str(report.error) and report.error.step == "items"


def test_avro_boundary_rejects_records_its_schema_does_not_admit(
    spark: Any, tmp_path: Path
) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n", encoding="utf-8")
    bad = TransformStep("bad", ("items",), derive_columns({"kind": "'Q'"}), SCHEMA)
    report = run(spark, graph(src, tmp_path / "out", (bad,)), env(tmp_path))
    assert report.status is Status.FAILED
    assert report.error is not None and report.error.step == "out"
    assert not report.error.transient
    off = run(spark, graph(src, tmp_path / "out2", (bad,)), env(tmp_path, avro_boundary=False))
    assert off.status is Status.SUCCESS


def test_a_step_passing_records_through_skips_the_round_trip(spark: Any, tmp_path: Path) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n", encoding="utf-8")
    # Marked wrongly on purpose: a step that does change values shows the check is skipped.
    bad = TransformStep("bad", ("items",), derive_columns({"kind": "'Q'"}), SCHEMA, ())
    assert run(spark, graph(src, tmp_path / "out", (bad,)), env(tmp_path)).status is Status.SUCCESS
    # Only the columns named cross the boundary: `qty` does, `kind` ('Q') does not.
    bad = TransformStep("bad", ("items",), derive_columns({"kind": "'Q'"}), SCHEMA, ("qty",))
    assert run(spark, graph(src, tmp_path / "out2", (bad,)), env(tmp_path)).status is Status.SUCCESS
    caught = TransformStep("bad", ("items",), derive_columns({"kind": "'Q'"}), SCHEMA, ("kind",))
    failed = run(spark, graph(src, tmp_path / "out3", (caught,)), env(tmp_path))
    assert failed.status is Status.FAILED and failed.error is not None


def test_missing_source_is_a_terminal_error_naming_the_step(spark: Any, tmp_path: Path) -> None:
    report = run(spark, graph(tmp_path / "nope.csv", tmp_path / "out"), env(tmp_path))
    assert report.status is Status.FAILED
    assert report.error is not None and report.error.step == "items" and not report.error.transient


class FailsOnce(FilesLoader):
    """A file sink whose first write finds the target unreachable."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures = 1

    def load(self, df: Any, mode: str) -> Any:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("sink unreachable")
        return super().load(df, mode)


def test_a_retry_does_not_repeat_loads_committed_by_an_earlier_attempt(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n2,B,4\n", encoding="utf-8")

    first, second = tmp_path / "first", tmp_path / "second"
    g = graph(src, first)
    g = PipelineGraph(
        g.name,
        g.extracts,
        (),
        (
            LoadStep("first", "items", FilesLoader(str(first), "json"), "append"),
            LoadStep("second", "items", FailsOnce(str(second), "json"), "append"),
        ),
    )
    pipeline = BatchPipeline(g, spark, env(tmp_path), EventLog(RunContext("items")))
    failed = pipeline.run()
    assert failed.error is not None and failed.error.transient and failed.error.step == "second"
    retried = pipeline.run()
    assert retried.status is Status.SUCCESS
    # `first` appended once, in the first attempt, and was not appended again.
    assert spark.read.json(str(first)).count() == 2
    assert spark.read.json(str(second)).count() == 2
    skipped = [e for e in events(log_stream) if e["event"] == "step_skipped"]
    assert [e["step"] for e in skipped] == ["first"]


def test_rejected_rows_make_the_run_partial_and_land_in_the_dead_letter_log(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    from etlc.runtime.strategies import Loader, LoadResult

    class Rejecting(Loader):
        modes = frozenset({"append"})

        def load(self, df: Any, mode: str) -> LoadResult:
            df.count()
            letters = [{"key": {"id": 2}, "sqlstate": "23505", "constraint": "items_pkey"}]
            return LoadResult(dead_lettered=1, details={"dead_letters": letters})

    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n2,B,4\n", encoding="utf-8")
    g = graph(src, tmp_path / "out")
    g = PipelineGraph(g.name, g.extracts, (), (LoadStep("db", "items", Rejecting(), "append"),))
    e = env(tmp_path, dead_letter_dir=str(tmp_path / "dlq"))
    report = run(spark, g, e)
    assert report.status is Status.PARTIAL and report.exit_code == 3
    load = next(m for m in report.steps if m.step == "db")
    assert (load.records_in, load.records_out) == (2, 1)
    letters = [
        json.loads(x) for x in (tmp_path / "dlq" / "items" / "run1.jsonl").read_text().splitlines()
    ]
    assert letters == [
        {
            "constraint": "items_pkey",
            "key": {"id": 2},
            "pipeline": "items",
            "run_id": "run1",
            "sqlstate": "23505",
            "step": "db",
        }
    ]
    logged = [x for x in events(log_stream) if x["event"] == "dead_letter"]
    assert logged[0]["key"] == {"id": 2} and logged[0]["step"] == "db"


def test_superseded_rows_are_counted_apart_and_a_retry_keeps_earlier_dead_letters(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    from etlc.runtime.strategies import Loader, LoadResult

    class Upserting(Loader):
        modes = frozenset({"upsert"})

        def load(self, df: Any, mode: str) -> LoadResult:
            df.count()
            letters = [{"key": {"id": 3}, "sqlstate": "23514", "constraint": "qty_check"}]
            return LoadResult(dead_lettered=1, superseded=1, details={"dead_letters": letters})

    src = tmp_path / "items.csv"
    src.write_text("id,kind,qty\n1,A,3\n1,B,4\n3,A,5\n", encoding="utf-8")
    g = graph(src, tmp_path / "out")
    g = PipelineGraph(
        g.name,
        g.extracts,
        (),
        (
            LoadStep("db", "items", Upserting(), "upsert"),
            LoadStep("files", "items", FailsOnce(str(tmp_path / "files"), "json"), "append"),
        ),
    )
    e = env(tmp_path, dead_letter_dir=str(tmp_path / "dlq"))
    pipeline = BatchPipeline(g, spark, e, EventLog(RunContext("items")))
    assert pipeline.run().status is Status.FAILED
    report = pipeline.run()
    # The upsert committed in the first attempt with a dead letter: the run stays PARTIAL.
    assert report.status is Status.PARTIAL
    db = next(m for m in report.steps if m.step == "db")
    # input = written + dead-lettered + superseded
    assert (db.records_in, db.records_out) == (3, 1)
    assert db.extra == {"dead_lettered": 1, "superseded": 1}
    finished = [x for x in events(log_stream) if x["event"] == "step_finished"]
    assert [(x["step"], x.get("superseded")) for x in finished if x["stage"] == "load"] == [
        ("db", 1),
        ("files", None),
    ]
