"""StreamingPipeline on a file stream: micro-batches, markers, restarts, halts, stops."""

from __future__ import annotations

import io
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQueryListener

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import (
    ConfigurationError,
    DataLossError,
    EtlcError,
    NoSpaceError,
    TransientError,
    ValidationFailedError,
)
from etlc.runtime.expectations import Expectation, Policy
from etlc.runtime.graph import DatasetSchema, ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.halt import halted
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.progress import ProgressLog, duration_ms, progress_fields
from etlc.runtime.report import EXIT_PARTIAL, RunReport, Status
from etlc.runtime.rules import CORRUPT_COLUMN, EVENT_TIME_COLUMN, POSITION_COLUMN
from etlc.runtime.strategies import (
    BatchMarker,
    ExactlyOnceLoader,
    Loader,
    LoadResult,
    StreamExtractor,
)
from etlc.runtime.streaming import StopSignal, StreamingPipeline, with_java_side
from etlc.transforms.filter import filter_rows
from etlc.transforms.join import join
from tests.unit.runtime.log_lines import events

AVRO = json.dumps(
    {
        "type": "record",
        "name": "item",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "qty", "type": ["null", "int"], "default": None},
        ],
    }
)
SCHEMA = DatasetSchema(json.loads(AVRO), "`id` BIGINT, `qty` INT")
RULES = (("not_null:id", "`id` IS NOT NULL"), ("rule:qty_positive", "(qty > 0) IS NOT FALSE"))
WAIT_S = 90.0


class DirectoryStream(StreamExtractor):
    """JSON files dropped into a directory, each record tagged with its file."""

    def __init__(self, directory: Path, ddl: str = SCHEMA.ddl) -> None:
        self.directory = directory
        self.ddl = ddl

    def stream(self, spark: SparkSession) -> DataFrame:
        raw = (
            spark.readStream.schema(f"{self.ddl}, `{CORRUPT_COLUMN}` STRING")
            .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
            .option("maxFilesPerTrigger", 1)
            .json(str(self.directory))
        )
        # Every record reached "the source" two seconds before its batch began.
        arrived = F.current_timestamp() - F.expr("INTERVAL 2 SECONDS")
        return raw.withColumns({POSITION_COLUMN: F.input_file_name(), EVENT_TIME_COLUMN: arrived})


class Collecting(Loader, ExactlyOnceLoader):
    """Keeps each committed batch by marker, as a transactional sink would."""

    modes = frozenset({"append"})

    def __init__(self, fail_first: int = 0) -> None:
        self.batches: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        self.fail_first = fail_first

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        raise AssertionError("a streaming load goes through load_batch")

    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        if self.fail_first:
            self.fail_first -= 1
            raise ConnectionError("sink unreachable")
        if (marker.epoch, marker.batch_id) in self.batches:
            return None
        self.batches[(marker.epoch, marker.batch_id)] = [tuple(r) for r in df.collect()]
        return LoadResult()

    def rows(self) -> list[tuple[Any, ...]]:
        return sorted(r for batch in self.batches.values() for r in batch)


def drop(directory: Path, name: str, rows: list[dict[str, Any]]) -> None:
    staged = directory.parent / f".{name}"
    staged.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    staged.rename(directory / name)  # whole files only: the stream never sees a partial one


def streaming(
    g: PipelineGraph, spark: Any, tmp: Path, name: str | None = None
) -> StreamingPipeline:
    """``g`` as a stream under ``tmp`` (stage, checkpoints, quarantine), micro-batches every
    200 ms, its log lines under the pipeline ``name`` (``g``'s own by default)."""
    settings = Settings(
        stage_dir=str(tmp / "stage"),
        checkpoint_dir=str(tmp / "checkpoints"),
        quarantine_dir=str(tmp / "quarantine"),
        trigger_interval="200 milliseconds",
    )
    e = Environment("test", "test.json", settings=settings)
    context = RunContext(name or g.name)
    return StreamingPipeline(g, spark, e, EventLog(context), StopSignal(), poll_s=0.1)


def pipeline(
    spark: Any,
    tmp: Path,
    sink: Loader,
    *,
    on_extract: tuple[Expectation, ...] = (),
    on_transform: tuple[Expectation, ...] = (),
    on_invalid: Policy = "fail",
    held: tuple[str, Loader] | None = None,
) -> StreamingPipeline:
    """``held``: a step and the load of the records it sets aside (quarantined)."""
    source = tmp / "in"
    source.mkdir(exist_ok=True)
    condition = filter_rows(condition="qty > 1")
    big = TransformStep("big", ("items",), condition, SCHEMA, expectations=on_transform)
    g = PipelineGraph(
        "items_stream",
        (
            ExtractStep(
                "items",
                DirectoryStream(source),
                SCHEMA,
                RULES,
                expectations=on_extract,
                on_invalid=on_invalid,
            ),
        ),
        (big,),
        (
            LoadStep("sink", "big", sink, "append"),
            *((LoadStep("held", held[0], held[1], "append", quarantined=True),) if held else ()),
        ),
    )
    return streaming(g, spark, tmp)


class Running:
    """A pipeline's ``run`` in a thread, as the driver's main thread would run it."""

    def __init__(self, p: StreamingPipeline) -> None:
        self.pipeline = p
        self.report: RunReport | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        _RUNNING.append(self)
        self.thread.start()

    def _run(self) -> None:
        self.report = self.pipeline.run()

    def until(self, done: Any) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            assert self.thread.is_alive(), self.report
            assert time.monotonic() < deadline, "the stream did not deliver in time"
            time.sleep(0.1)

    def stop(self) -> RunReport:
        self.pipeline.stop.request()
        self.thread.join(WAIT_S)
        assert self.report is not None
        return self.report

    def finished(self) -> RunReport:
        self.thread.join(WAIT_S)
        assert self.report is not None
        return self.report


_RUNNING: list[Running] = []  # the streams the running test started


@pytest.fixture(autouse=True)
def _no_stream_outlives_its_test() -> Iterator[None]:
    """A test that fails while its stream runs would leave the stream's queries active in the
    shared session (their names taken, their lines in the next test's log): they stop here."""
    yield
    while _RUNNING:
        running = _RUNNING.pop()
        if running.thread.is_alive():
            running.pipeline.stop.request()
            running.thread.join(WAIT_S)


def test_micro_batches_flow_through_and_a_restart_resumes_from_the_checkpoint(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting()
    running = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 1}])
    drop(tmp_path / "in", "b.json", [{"id": 3, "qty": 7}])
    # Progress reaches the listener asynchronously, after the batch's commit.
    running.until(lambda: sum(p["input_rows"] for p in events(log_stream, "batch_progress")) == 3)
    report = running.stop()
    assert report.status is Status.SUCCESS, report.error
    assert sink.rows() == [(1, 5), (3, 7)]
    # What the retry policy reads to tell a healthy stream: the batches the load committed.
    assert report.batches == len(sink.batches) > 0
    [attempt] = events(log_stream, "attempt_started")
    assert attempt["shuffle_partitions"] == spark.sparkContext.defaultParallelism
    [started] = events(log_stream, "query_started")
    assert started["checkpoint"] == str(tmp_path / "checkpoints" / "items_stream" / "sink")
    assert started["output_mode"] == "append"
    progress = events(log_stream, "batch_progress")
    assert all(p["query"] == "items_stream.sink" for p in progress)
    timed = [p for p in progress if p["input_rows"]]
    assert timed and all(
        2_000 + p["batch_duration_ms"]
        == p["latency_ms"]["p50"]
        == p["latency_ms"]["p95"]
        == p["latency_ms"]["max"]
        for p in timed
    ), timed
    assert events(log_stream, "stop_requested") and events(log_stream, "queries_stopped")

    # Same checkpoint, a new file: only its rows arrive, under the same epoch.
    again = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "c.json", [{"id": 4, "qty": 9}])
    again.until(lambda: len(sink.rows()) == 3)
    assert again.stop().status is Status.SUCCESS
    assert sink.rows() == [(1, 5), (3, 7), (4, 9)]
    assert len({epoch for epoch, _ in sink.batches}) == 1


class Slow(StreamingQueryListener):
    """Takes a second over each batch's progress, as a busy listener bus would."""

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        time.sleep(1.0)

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        pass


def test_a_stop_returns_once_the_last_batches_progress_is_logged(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    slow = Slow()
    # Spark calls a queue's listeners in the order they were added: this one holds back the
    # pipeline's own, so its batch_progress comes a second or more after the batch commits.
    spark.streams.addListener(slow)
    try:
        sink = Collecting()
        p = pipeline(spark, tmp_path, sink)
        running = Running(p)
        drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 4}])
        running.until(lambda: len(sink.rows()) == 2)
        assert running.stop().status is Status.SUCCESS
    finally:
        spark.streams.removeListener(slow)
    # Read at once, without waiting: the stop has waited for it. (Earlier tests' pipelines
    # keep their listeners on this session: only this run's lines count.)
    ours = [e for e in events(log_stream, "batch_progress") if e["run_id"] == p.log.context.run_id]
    assert sum(e["input_rows"] for e in ours) == 2
    assert not events(log_stream, "progress_events_pending")


def test_a_record_that_breaks_a_rule_halts_the_stream_naming_rule_and_position(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting()
    running = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "bad.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": -3}])
    report = running.finished()
    assert report.status is Status.FAILED
    error = report.error
    assert isinstance(error, ValidationFailedError), error
    assert error.step == "items" and error.violations == {"rule:qty_positive": 1}
    assert "bad.json" in str(error)
    assert sink.rows() == []  # nothing of the failing batch was written
    [logged] = events(log_stream, "validation_failed")
    assert logged["step"] == "items" and "bad.json" in logged["sample"][0]["position"]


def test_expectations_count_per_batch_and_drop_exactly_the_broken_records(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    small = Expectation("small", "NOT (qty < 100) IS FALSE", "drop")
    even = Expectation("even", "NOT (id % 2 = 0) IS FALSE", "warn")
    low = Expectation("low", "NOT (qty < 50) IS FALSE", "drop")
    sink = Collecting()
    p = pipeline(spark, tmp_path, sink, on_extract=(small, even), on_transform=(low,))
    running = Running(p)
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 500}])
    drop(tmp_path / "in", "b.json", [{"id": 3, "qty": 70}, {"id": 4, "qty": 7}, {"id": 5}])
    running.until(lambda: len(sink.rows()) == 2)
    report = running.stop()
    assert report.status is Status.PARTIAL and report.exit_code == EXIT_PARTIAL, report.error
    assert sink.rows() == [(1, 5), (4, 7)]  # 2 too large, 3 too high, 5's null qty filtered
    # (Earlier tests' pipelines left their listeners: only this one's lines count rules.)
    per_batch = [
        p["expectations"] for p in events(log_stream, "batch_progress") if "expectations" in p
    ]
    assert sum(b["items"]["small"]["failed"] for b in per_batch) == 1
    totals = {m.step: m.extra for m in report.steps}
    assert totals["items"] == {
        "expectations": {
            "small": {"policy": "drop", "failed": 1},
            "even": {"policy": "warn", "failed": 3},
        },
        "dropped": 1,
    }
    assert totals["big"] == {"expectations": {"low": {"policy": "drop", "failed": 1}}, "dropped": 1}
    assert report.left_out == 2


def test_quarantined_records_of_a_stream_are_appended_once_each_with_their_rule(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    """The source's quarantine rule and its schema's rules (on_invalid), and a transform's:
    each record set aside lands once in its step's folder, across a restart."""
    modest = Expectation("modest", "NOT (qty >= 1000) IS TRUE", "quarantine")
    under = Expectation("under", "NOT (qty >= 500) IS TRUE", "quarantine")
    small = Expectation("small", "NOT (qty IN (7, 600)) IS TRUE", "drop")
    sink = Collecting()
    folders = tmp_path / "quarantine" / "items_stream"

    def held(step: str) -> list[tuple[Any, ...]]:
        try:
            df = spark.read.format("avro").load(str(folders / step))
        except Exception:  # no batch has committed a file yet
            return []
        # The folder, not its files: Spark's sink log names the committed batches' files.
        if CORRUPT_COLUMN not in df.columns:  # a transform's records were all parsed
            df = df.withColumn(CORRUPT_COLUMN, F.lit(None))
        columns = ["id", "qty", "_etlc_rule", "_etlc_step", CORRUPT_COLUMN]
        return sorted((tuple(r) for r in df.select(*columns).collect()), key=str)

    def run(name: str, text: str, done: Any) -> RunReport:
        p = pipeline(
            spark,
            tmp_path,
            sink,
            on_extract=(modest,),
            on_transform=(under, small),
            on_invalid="quarantine",
        )
        running = Running(p)
        staged = tmp_path / f".{name}"
        staged.write_text(text, encoding="utf-8")
        staged.rename(tmp_path / "in" / name)
        running.until(done)
        return running.stop()

    first = run(
        "a.json",
        '{"id": 1, "qty": 5}\n{"id": 2, "qty": 5000}\nnot json\n{"id": 3, "qty": 700}\n'
        '{"id": 4, "qty": -3}\n{"id": 8, "qty": 600}\n',
        lambda: sink.rows() and len(held("items")) == 3 and len(held("big")) == 2,
    )
    assert first.status is Status.PARTIAL and first.exit_code == EXIT_PARTIAL, first.error
    assert sink.rows() == [(1, 5)]
    assert held("items") == sorted(
        [
            (2, 5000, "modest", "items", None),
            (None, None, "parse", "items", "not json"),
            (4, -3, "rule:qty_positive", "items", None),
        ],
        key=str,
    )
    # 8 breaks the drop rule too: set aside, not dropped.
    assert held("big") == sorted(
        [(3, 700, "under", "big", None), (8, 600, "under", "big", None)], key=str
    )
    totals = {m.step: m.extra for m in first.steps}
    assert totals["items"]["quarantined"] == 3
    assert totals["items"]["expectations"]["modest"] == {"policy": "quarantine", "failed": 1}
    assert (totals["big"]["quarantined"], totals["big"]["dropped"]) == (2, 0)
    [started] = [e for e in events(log_stream, "quarantine_started") if e["step"] == "big"]
    assert started["path"] == str(folders / "big")
    # A folder per micro-batch that set records aside, none for the others.
    batches = list((folders / "big").glob("epoch=*/batch=*"))
    assert batches and all(list(b.glob("*.avro")) for b in batches)

    # A restart resumes each query from its checkpoint: nothing set aside twice.
    second = run(
        "b.json",
        '{"id": 5, "qty": 9000}\n{"id": 6, "qty": 8}\n{"id": 7, "qty": 7}\n',
        lambda: (6, 8) in sink.rows() and len(held("items")) == 4,
    )
    assert second.status is Status.PARTIAL, second.error
    assert sink.rows() == [(1, 5), (6, 8)]
    assert sorted(r[0] for r in held("items") if r[0] is not None) == [2, 4, 5]
    assert len(held("big")) == 2
    totals = {m.step: m.extra for m in second.steps}
    assert (totals["big"]["quarantined"], totals["big"]["dropped"]) == (0, 1)  # 7
    runs = spark.read.format("avro").load(str(folders / "items")).select("_etlc_run_id")
    assert runs.distinct().count() == 2  # each record names the run that set it aside

    # A deleted checkpoint starts a new epoch: the replayed batches are set aside again, in
    # folders of their own (none is taken for a batch written before).
    shutil.rmtree(tmp_path / "checkpoints")
    third = run("c.json", '{"id": 9, "qty": 1}\n', lambda: len(held("items")) == 8)
    assert third.status is Status.PARTIAL, third.error
    by_epoch = spark.read.format("avro").load(str(folders / "items")).groupBy("epoch").count()
    assert sorted(r["count"] for r in by_epoch.collect()) == [4, 4]


def test_a_quarantined_load_takes_a_streamed_steps_records_set_aside_per_micro_batch(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    under = Expectation("under", "NOT (qty >= 500) IS TRUE", "quarantine")
    sink, held = Collecting(), Collecting()
    p = pipeline(spark, tmp_path, sink, on_transform=(under,), held=("big", held))
    running = Running(p)
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 3, "qty": 700}])
    running.until(lambda: sink.rows() and held.rows())
    report = running.stop()
    assert report.status is Status.PARTIAL, report.error
    assert sink.rows() == [(1, 5)]
    run_id = p.log.context.run_id
    assert held.rows() == [(3, 700, "under", "big", run_id)]  # through foreachBatch's marker
    assert not (tmp_path / "quarantine").exists()  # no file sink for `big`
    assert not [e for e in events(log_stream, "quarantine_started") if e["step"] == "big"]
    totals = {m.step: m.extra for m in report.steps}
    assert totals["big"]["quarantined"] == 1


def test_a_record_breaking_a_transforms_fail_rule_halts_the_stream_with_the_record(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting()
    rule = Expectation("modest", "NOT (qty < 1000) IS FALSE", "fail")
    running = Running(pipeline(spark, tmp_path, sink, on_transform=(rule,)))
    drop(tmp_path / "in", "bad.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 5000}])
    report = running.finished()
    error = report.error
    assert isinstance(error, ValidationFailedError), error
    assert error.step == "big" and error.violations == {"expect:modest": 1}
    assert error.sample == [{"_etlc_violation": "expect:modest", "record": "{'id':2,'qty':5000}"}]
    assert sink.rows() == []  # nothing of the failing batch was written
    [logged] = events(log_stream, "validation_failed")
    assert (logged["stage"], logged["step"]) == ("transform", "big")


def test_a_record_breaking_a_sources_fail_rule_halts_with_its_position_and_values(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting()
    rule = Expectation("modest", "NOT (qty < 1000) IS FALSE", "fail")
    running = Running(pipeline(spark, tmp_path, sink, on_extract=(rule,)))
    drop(tmp_path / "in", "big.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 5000}])
    error = running.finished().error
    assert isinstance(error, ValidationFailedError), error
    assert error.step == "items" and error.violations == {"expect:modest": 1}
    [sample] = error.sample
    assert sample["record"] == "{'id':2,'qty':5000}" and "big.json" in sample["position"]
    assert "big.json" in str(error) and "breaks the expectation `modest`" in str(error)
    assert sink.rows() == []


def test_on_invalid_drop_counts_and_leaves_out_what_breaks_the_schema_in_a_stream(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting()
    running = Running(pipeline(spark, tmp_path, sink, on_invalid="drop"))
    staged = tmp_path / ".mixed.json"
    staged.write_text('{"id": 1, "qty": 5}\nnot json\n{"id": 2, "qty": -3}\n', encoding="utf-8")
    staged.rename(tmp_path / "in" / "mixed.json")
    running.until(lambda: sink.rows() == [(1, 5)])
    report = running.stop()
    assert report.status is Status.PARTIAL, report.error
    [items] = [m for m in report.steps if m.step == "items"]
    assert items.extra["dropped"] == 2
    counted = items.extra["expectations"]
    assert counted["parse"] == {"policy": "drop", "failed": 1}
    assert counted["rule:qty_positive"] == {"policy": "drop", "failed": 1}


def test_a_sink_failure_keeps_its_type_for_the_retry_policy(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Collecting(fail_first=1)
    running = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}])
    report = running.finished()
    assert isinstance(report.error, TransientError) and report.error.step == "sink"
    assert report.batches == 0  # it failed before committing anything: not healthy
    # The retry starts from the checkpoint: the batch that failed is delivered then.
    again = Running(pipeline(spark, tmp_path, sink))
    again.until(lambda: sink.rows() == [(1, 5)])
    resumed = again.stop()
    assert resumed.status is Status.SUCCESS and resumed.batches == len(sink.batches)


class LosingStream(DirectoryStream):
    """A source that knows better what a failure of its queries means, and what they skip."""

    def explain(self, exc: BaseException) -> EtlcError | None:
        return DataLossError("records gone") if "unreachable" in str(exc) else None

    def skipped(self, source: Any) -> dict[str, Any] | None:
        return {"skipped": 3} if source.description == "mine" else None


def test_a_source_explains_a_failure_of_its_stream_before_the_generic_classification(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    losing = pipeline(spark, tmp_path, Collecting(fail_first=1))
    [step] = losing.graph.extracts
    losing.graph = replace(
        losing.graph, extracts=(replace(step, extractor=LosingStream(tmp_path / "in")),)
    )
    running = Running(losing)
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}])
    error = running.finished().error
    assert isinstance(error, DataLossError) and error.step == "items", error


def test_a_query_that_died_of_a_full_disk_names_the_checkpoint_directory(
    spark: Any, tmp_path: Path
) -> None:
    p = pipeline(spark, tmp_path, Collecting())
    error = p._explain(RuntimeError("java.io.IOException: No space left on device"), [])
    assert isinstance(error, NoSpaceError) and error.kind == "no_space"
    assert f"checkpoint directory {tmp_path / 'checkpoints'} (etlc.checkpoint_dir)" in str(error)
    other = p._explain(RuntimeError("java.io.IOException: Stream closed"), [])
    assert not isinstance(other, NoSpaceError)


class HeldFailure:
    def __init__(self, java: Any) -> None:
        self.java = java

    def isDefined(self) -> bool:  # noqa: N802 - Scala's Option
        return self.java is not None

    def get(self) -> Any:
        return self.java


def test_a_query_failure_gets_the_jvm_exception_the_query_holds() -> None:
    java = object()
    held = SimpleNamespace(_jsq=SimpleNamespace(exception=lambda: HeldFailure(java)))
    failure = with_java_side(held, RuntimeError("StreamingQueryException: timed out"))  # type: ignore[arg-type]
    assert getattr(failure, "java_exception", None) is java
    empty = SimpleNamespace(_jsq=SimpleNamespace(exception=lambda: HeldFailure(None)))
    assert not hasattr(with_java_side(empty, RuntimeError("x")), "java_exception")  # type: ignore[arg-type]
    connect = SimpleNamespace()  # Spark Connect: no JVM query in the driver
    assert not hasattr(with_java_side(connect, RuntimeError("x")), "java_exception")  # type: ignore[arg-type]


def test_offsets_a_source_skipped_are_logged_per_batch(log_stream: io.StringIO) -> None:
    listener = ProgressLog(
        EventLog(RunContext("p")), None, 1_000, 0.9, [("items", LosingStream(Path("in")))]
    )
    progress = SimpleNamespace(
        name="p.sink",
        batchId=7,
        numInputRows=0,
        inputRowsPerSecond=0.0,
        processedRowsPerSecond=0.0,
        batchDuration=10,
        durationMs={},
        stateOperators=[],
        eventTime={},
        observedMetrics={},
        sources=[SimpleNamespace(description="mine"), SimpleNamespace(description="other")],
    )
    listener.onQueryProgress(SimpleNamespace(progress=progress))
    [skipped] = events(log_stream, "offsets_skipped")
    assert (skipped["query"], skipped["batch_id"], skipped["step"], skipped["skipped"]) == (
        "p.sink",
        7,
        "items",
        3,
    )
    assert skipped["level"] == "warning"


def test_halted_reads_the_failure_back_and_ignores_other_errors() -> None:
    text = (
        'org.apache.spark.SparkRuntimeException: ETLC_INVALID_RECORD {"step": "orders", '
        '"rule": "parse", "at": "partition 0 offset 7", "detail": "15 bytes 6E6F74"}END'
    )
    error = halted(RuntimeError(text))
    assert error is not None and error.step == "orders" and error.violations == {"parse": 1}
    assert error.sample[0]["position"] == "partition 0 offset 7"
    assert halted(RuntimeError("connection refused")) is None


def test_durations_and_progress_fields() -> None:
    assert [duration_ms(t) for t in ("1 second", "250 ms", "2 minutes", "1 hour")] == [
        1_000,
        250,
        120_000,
        3_600_000,
    ]
    with pytest.raises(ConfigurationError, match="not a duration"):
        duration_ms("soon")
    progress = SimpleNamespace(
        name="p.load_1",
        batchId=4,
        numInputRows=1000,
        inputRowsPerSecond=512.04,
        processedRowsPerSecond=800.0,
        batchDuration=1250,
        durationMs={"triggerExecution": 1250, "walCommit": 40, "addBatch": 1100},
        stateOperators=[
            SimpleNamespace(numRowsTotal=10, numRowsDroppedByWatermark=3),
            SimpleNamespace(numRowsTotal=5),
        ],
        eventTime={"watermark": "2026-11-28T10:00:00.000Z"},
        observedMetrics={"etlc_source_lag_orders": {"lag_ms": [40, 900], "lag_max_ms": 1200}},
    )
    assert progress_fields(progress) == {
        "query": "p.load_1",
        "batch_id": 4,
        "input_rows": 1000,
        "input_rows_per_s": 512.0,
        "processed_rows_per_s": 800.0,
        "batch_duration_ms": 1250,
        "trigger_ms": 1250,
        "phases_ms": {"addBatch": 1100, "walCommit": 40},
        "state_rows": 15,
        "late_rows_dropped": 3,
        "watermark": "2026-11-28T10:00:00.000Z",
        "latency_ms": {"p50": 1290, "p95": 2150, "max": 2450},
    }


def test_a_file_sink_is_written_by_spark_once_per_batch_across_restarts(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    out = tmp_path / "out"
    sink = FilesLoader(str(out), "json")

    def landed() -> list[tuple[Any, ...]]:
        if not (out / "_spark_metadata").exists():
            return []
        rows = spark.read.schema(SCHEMA.ddl).json(str(out)).collect()
        return sorted(tuple(r) for r in rows)

    running = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 9}])
    running.until(lambda: len(landed()) == 2)
    assert running.stop().status is Status.SUCCESS
    again = Running(pipeline(spark, tmp_path, sink))
    drop(tmp_path / "in", "b.json", [{"id": 3, "qty": 4}])
    again.until(lambda: len(landed()) == 3)
    assert again.stop().status is Status.SUCCESS
    assert landed() == [(1, 5), (2, 9), (3, 4)]
    assert not events(log_stream, "batch_committed")  # Spark's sink, not foreachBatch


LABELS = DatasetSchema(
    (
        {
            "type": "record",
            "name": "label",
            "fields": [{"name": "id", "type": "long"}, {"name": "label", "type": "string"}],
        }
    ),
    "`id` BIGINT, `label` STRING",
)
LABELLED = DatasetSchema(
    (
        {
            "type": "record",
            "name": "labelled",
            "fields": [
                {"name": "id", "type": "long"},
                {"name": "qty", "type": ["null", "int"], "default": None},
                {"name": "label", "type": "string"},
            ],
        }
    ),
    "`id` BIGINT, `qty` INT, `label` STRING",
)


def test_a_static_side_with_refresh_is_read_again_and_the_stream_resumes(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n1,old\n2,old\n", encoding="utf-8")
    sink = Collecting()
    g = PipelineGraph(
        "labelled_stream",
        (
            ExtractStep("items", DirectoryStream(source), SCHEMA, RULES),
            ExtractStep(
                "labels",
                FilesExtractor(str(labels), "csv", LABELS, {"header": "true"}),
                LABELS,
                refresh="1 second",
            ),
        ),
        (TransformStep("labelled", ("items", "labels"), join(on=["id"]), LABELLED),),
        (LoadStep("sink", "labelled", sink, "append"),),
    )
    p = streaming(g, spark, tmp_path, "labelled")
    running = Running(p)
    drop(source, "a.json", [{"id": 1, "qty": 5}])
    running.until(lambda: sink.rows() == [(1, 5, "old")])
    labels.write_text("id,label\n1,new\n2,new\n", encoding="utf-8")
    running.until(lambda: len(events(log_stream, "static_refresh")) >= 1)
    drop(source, "b.json", [{"id": 2, "qty": 7}])
    running.until(lambda: len(sink.rows()) == 2)
    report = running.stop()
    assert report.status is Status.SUCCESS
    assert sink.rows() == [(1, 5, "old"), (2, 7, "new")]
    assert len({epoch for epoch, _ in sink.batches}) == 1  # restarted from its checkpoint
    # The run reports the snapshot it reads last, once; each read's own line says its counts.
    assert [m.records_in for m in report.steps if m.step == "labels"] == [2]
    assert len([e for e in events(log_stream, "step_finished") if e["step"] == "labels"]) >= 2


def test_a_refreshed_static_side_that_sets_nothing_aside_leaves_no_earlier_records(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n1,old\n2,bad\n", encoding="utf-8")
    sink = Collecting()
    known = Expectation("known", "NOT (label <> 'bad') IS FALSE", "quarantine")
    extractor = FilesExtractor(str(labels), "csv", LABELS, {"header": "true"})
    g = PipelineGraph(
        "labelled_stream",
        (
            ExtractStep("items", DirectoryStream(source), SCHEMA, RULES),
            ExtractStep("labels", extractor, LABELS, expectations=(known,), refresh="1 second"),
        ),
        (TransformStep("labelled", ("items", "labels"), join(on=["id"]), LABELLED),),
        (LoadStep("sink", "labelled", sink, "append"),),
    )
    p = streaming(g, spark, tmp_path)
    context = p.log.context
    folder = tmp_path / "quarantine" / "labelled_stream" / "labels" / context.run_id
    running = Running(p)
    drop(source, "a.json", [{"id": 1, "qty": 5}])
    running.until(lambda: sink.rows() == [(1, 5, "old")])
    assert folder.is_dir()  # the first snapshot's `2,bad`
    labels.write_text("id,label\n1,new\n2,new\n", encoding="utf-8")
    running.until(lambda: len(events(log_stream, "static_refresh")) >= 1)
    drop(source, "b.json", [{"id": 2, "qty": 7}])
    running.until(lambda: len(sink.rows()) == 2)
    report = running.stop()
    assert report.status is Status.SUCCESS, report.error  # the snapshot it reads set none aside
    assert not folder.exists()
    assert sink.rows() == [(1, 5, "old"), (2, 7, "new")]


@pytest.mark.parametrize("policy", ["drop", "quarantine"])
def test_expectations_around_a_stream_static_join_check_only_what_the_join_outputs(
    spark: Any, tmp_path: Path, log_stream: io.StringIO, policy: Policy
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n1,old\n2,bad\n", encoding="utf-8")
    sink = Collecting()
    known = Expectation("known", "NOT (label <> 'bad') IS FALSE", policy)
    modest = Expectation("modest", "NOT (qty < 100) IS FALSE", "fail")
    g = PipelineGraph(
        "labelled_stream",
        (
            ExtractStep("items", DirectoryStream(source), SCHEMA, RULES),
            ExtractStep(
                "labels", FilesExtractor(str(labels), "csv", LABELS, {"header": "true"}), LABELS
            ),
        ),
        (
            TransformStep(
                "good", ("labels",), filter_rows("id > 0"), LABELS, expectations=(known,)
            ),
            # recheck=(): a join's columns crossed the Avro boundary already (as compiled).
            TransformStep(
                "labelled",
                ("items", "good"),
                join(on=["id"]),
                LABELLED,
                recheck=(),
                expectations=(modest,),
            ),
        ),
        (LoadStep("sink", "labelled", sink, "append"),),
    )
    p = streaming(g, spark, tmp_path)
    context = p.log.context
    running = Running(p)
    # 9 has no label: the join leaves it out, so its qty never meets the fail rule; 2's label
    # was left out of the static side.
    drop(source, "a.json", [{"id": 1, "qty": 5}, {"id": 9, "qty": 500}, {"id": 2, "qty": 3}])
    running.until(lambda: sink.rows() == [(1, 5, "old")])
    report = running.stop()
    assert report.status is Status.PARTIAL, report.error
    [good] = [m for m in report.steps if m.step == "good"]
    left_out = "dropped" if policy == "drop" else "quarantined"
    assert (good.records_out, good.extra[left_out]) == (1, 1)
    assert good.extra["expectations"] == {"known": {"policy": policy, "failed": 1}}
    folder = tmp_path / "quarantine" / "labelled_stream" / "good" / context.run_id
    if policy == "quarantine":  # the snapshot's records, written once it was read
        held = spark.read.format("avro").load(str(folder)).select("id", "label", "_etlc_rule")
        assert [tuple(r) for r in held.collect()] == [(2, "bad", "known")]
    else:
        assert not folder.exists()


def record(name: str, fields: list[tuple[str, str]]) -> DatasetSchema:
    types = {"long": "long", "timestamp": {"type": "long", "logicalType": "timestamp-micros"}}
    ddl = {"long": "BIGINT", "timestamp": "TIMESTAMP"}
    avro = {
        "type": "record",
        "name": name,
        "fields": [{"name": n, "type": types[t]} for n, t in fields],
    }
    return DatasetSchema(avro, ", ".join(f"`{n}` {ddl[t]}" for n, t in fields))


def test_two_streams_joined_within_a_time_bound(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    orders_schema = record("order", [("id", "long"), ("ordered_at", "timestamp")])
    paid_schema = record("payment", [("id", "long"), ("paid_at", "timestamp")])
    joined_schema = record(
        "paid_order", [("id", "long"), ("ordered_at", "timestamp"), ("paid_at", "timestamp")]
    )
    orders_dir, paid_dir = tmp_path / "orders", tmp_path / "paid"
    orders_dir.mkdir()
    paid_dir.mkdir()
    within = {
        "left_time": "ordered_at",
        "right_time": "paid_at",
        "after": "1 hour",
        "watermark": "10 minutes",
    }
    sink = Collecting()
    g = PipelineGraph(
        "paid_stream",
        (
            ExtractStep("orders", DirectoryStream(orders_dir, orders_schema.ddl), orders_schema),
            ExtractStep("paid", DirectoryStream(paid_dir, paid_schema.ddl), paid_schema),
        ),
        (
            TransformStep(
                "joined", ("orders", "paid"), join(on=["id"], within=within), joined_schema
            ),
        ),
        (LoadStep("sink", "joined", sink, "append"),),
    )
    p = streaming(g, spark, tmp_path, "paid")
    running = Running(p)
    drop(
        orders_dir,
        "o.json",
        [
            {"id": 1, "ordered_at": "2026-01-01T09:00:00"},
            {"id": 2, "ordered_at": "2026-01-01T09:00:00"},
        ],
    )
    drop(
        paid_dir,
        "p.json",
        [{"id": 1, "paid_at": "2026-01-01T09:10:00"}, {"id": 2, "paid_at": "2026-01-01T12:00:00"}],
    )
    # Both sides keep state (until the watermark passes); progress follows the commit.
    running.until(
        lambda: (
            bool(sink.rows()) and any(p["state_rows"] for p in events(log_stream, "batch_progress"))
        )
    )
    assert running.stop().status is Status.SUCCESS
    [(order_id, ordered_at, paid_at)] = sink.rows()  # order 2 paid too late to match
    assert (order_id, ordered_at.strftime("%H:%M"), paid_at.strftime("%H:%M")) == (
        1,
        "09:00",
        "09:10",
    )


def test_an_aggregate_upserted_from_a_stream_writes_each_changed_group(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    from etlc.transforms.aggregate import aggregate

    totals = record("totals", [("id", "long"), ("total", "long")])
    source = tmp_path / "in"
    source.mkdir()
    sink = Collecting()
    g = PipelineGraph(
        "totals_stream",
        (ExtractStep("items", DirectoryStream(source), SCHEMA, RULES),),
        (
            TransformStep(
                "totals",
                ("items",),
                aggregate(group_by=["id"], aggregates={"total": "CAST(SUM(qty) AS BIGINT)"}),
                totals,
            ),
        ),
        (LoadStep("sink", "totals", sink, "upsert"),),
    )
    p = streaming(g, spark, tmp_path, "totals")
    running = Running(p)
    drop(source, "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 1}])
    running.until(lambda: len(sink.batches) >= 1)
    drop(source, "b.json", [{"id": 1, "qty": 4}])
    running.until(lambda: len(sink.batches) >= 2)
    assert running.stop().status is Status.SUCCESS
    first, second = (sorted(b) for _, b in sorted(sink.batches.items(), key=lambda kv: kv[0][1]))
    assert first == [(1, 5), (2, 1)]
    assert second == [(1, 9)]  # update mode: only the group that changed, with its new total
    [started] = events(log_stream, "query_started")
    assert started["output_mode"] == "update"


class Refusing(Collecting):
    """Refuses the row with id 2 of every batch, as a CHECK constraint would."""

    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        rows = [tuple(r) for r in df.collect()]
        self.batches[(marker.epoch, marker.batch_id)] = [r for r in rows if r[0] != 2]
        letters = [
            {"key": {"id": 2}, "sqlstate": "23514", "constraint": "qty_check"}
            for r in rows
            if r[0] == 2
        ]
        return LoadResult(
            dead_lettered=len(letters),
            details={"dead_letters": letters},
            phases_ms={"staging_ms": 12, "move_ms": 3},
        )


def test_rows_a_streaming_sink_refuses_go_to_the_dead_letter_log(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    sink = Refusing()
    p = pipeline(spark, tmp_path, sink)
    p.env = Environment(
        "test",
        "test.json",
        settings=Settings(
            stage_dir=str(tmp_path / "stage"),
            checkpoint_dir=str(tmp_path / "checkpoints"),
            trigger_interval="200 milliseconds",
            dead_letter_dir=str(tmp_path / "dlq"),
        ),
    )
    running = Running(p)
    drop(tmp_path / "in", "a.json", [{"id": 1, "qty": 5}, {"id": 2, "qty": 9}])
    running.until(lambda: bool(events(log_stream, "dead_letters_written")))
    assert running.stop().status is Status.SUCCESS
    assert sink.rows() == [(1, 5)]
    [letter] = events(log_stream, "dead_letter")
    assert (letter["step"], letter["key"], letter["constraint"]) == ("sink", {"id": 2}, "qty_check")
    [path] = (tmp_path / "dlq" / "items_stream").glob("*.jsonl")
    assert json.loads(path.read_text())["key"] == {"id": 2}
    [committed] = events(log_stream, "batch_committed")
    assert committed["dead_lettered"] == 1
    assert (committed["staging_ms"], committed["move_ms"]) == (12, 3)  # where the write went


def test_spark_3_5_observes_no_lag_since_it_refuses_the_batch_clock_in_an_observation() -> None:
    from etlc.runtime.streaming import observes_batch_time

    assert not observes_batch_time("3.5.7")
    assert observes_batch_time("4.0.0") and observes_batch_time("4.2.0")
