"""Streaming pipelines on Structured Streaming: one query per load, until stopped.

A stream source (Kafka) is decoded and validated in the plan: the first record that breaks a
rule fails its micro-batch through ``raise_error`` with the step, the rule and the record's
partition and offset, so the query halts before anything of that batch is written, and the
error names what to look at. Static sides (databases, files) are extracted and validated once,
as in batch. Each load is a query with its own checkpoint under
``<checkpoint_dir>/<pipeline>/<load id>``; it writes every micro-batch through
``foreachBatch``. A sink that can commit a batch together with a marker (PostgreSQL, MySQL)
does so, and skips a batch whose marker is already there, so a replay after a crash or a
restart writes nothing twice; the marker's epoch is the query id, which a checkpoint keeps
and a fresh checkpoint renews. Other sinks write at least once.

``run`` returns when a stop is requested (SIGTERM: the current batch finishes first) or a
query fails; a failed query is restarted from its checkpoint by the retry wrapper when its
error is transient.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pyspark
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming.query import StreamingQuery

from etlc.runtime.environment import Environment
from etlc.runtime.errors import (
    EtlcError,
    NoSpaceError,
    TerminalError,
    ValidationFailedError,
    classify,
    no_space_left,
)
from etlc.runtime.expectations import (
    HELD,
    Expectations,
    counted,
    halting,
    in_force,
    observed_expectations,
)
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.halt import halt_where, halted, record_text
from etlc.runtime.logs import EventLog
from etlc.runtime.pipeline import Clock, SparkPipeline, log_target_changes
from etlc.runtime.progress import LAG_METRIC, ProgressLog, duration_ms
from etlc.runtime.quarantine import (
    QuarantineFolder,
    quarantine_path,
    quarantined,
    remove,
    stream_quarantine_path,
)
from etlc.runtime.report import RunReport, Status, StepMetrics
from etlc.runtime.rules import CORRUPT_COLUMN, EVENT_TIME_COLUMN, POSITION_COLUMN
from etlc.runtime.stage_store import StageStore
from etlc.runtime.strategies import BatchMarker, ExactlyOnceLoader, StreamExtractor, StreamSink
from etlc.spark_targets import line_of

STOP_WAIT_S = 120.0  # how long a stop waits for the running micro-batch to finish
LISTENER_WAIT_MS = 10_000  # how long a stop waits for Spark to hand the last events to listeners
EPOCH_WAIT_S = 60.0


class StopSignal:
    """Set from a signal handler; the pipeline polls it between micro-batches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()


def halt_on_invalid(df: DataFrame, step: str, broken: list[tuple[str, Column]]) -> DataFrame:
    """``df`` that fails its micro-batch at the first record breaking one of ``broken``."""
    record = record_text(df)
    detail = F.coalesce(F.col(CORRUPT_COLUMN), record) if CORRUPT_COLUMN in df.columns else record
    return halt_where(df, step, broken, F.col(POSITION_COLUMN), detail)


def observes_batch_time(version: str | None = None) -> bool:
    """Whether an observed aggregate may read the batch's clock: Spark 3.5 refuses it
    (INVALID_OBSERVED_METRICS.NON_AGGREGATE_FUNC_ARG_IS_NON_DETERMINISTIC), so a stream there
    reports no latency."""
    return line_of(version or pyspark.__version__) != "3.5"


def with_source_lag(df: DataFrame, step: str) -> DataFrame:
    """``df`` observing, per micro-batch, how long its records waited before the batch began.

    Spark's ``current_timestamp()`` is the batch's start; a record's wait plus the batch's
    duration is its end-to-end latency at the sink's commit. Percentiles are aggregated in the
    plan (``observe``) and read from the batch's progress, never from collected records.
    """
    if EVENT_TIME_COLUMN not in df.columns or not observes_batch_time():
        return df
    lag = F.unix_millis(F.current_timestamp()) - F.unix_millis(F.col(EVENT_TIME_COLUMN))
    return df.observe(
        f"{LAG_METRIC}{step}",
        F.percentile_approx(lag, [0.5, 0.95], 1000).alias("lag_ms"),
        F.max(lag).alias("lag_max_ms"),
    )


def with_java_side(query: StreamingQuery, failure: Exception) -> Exception:
    """``failure`` with the JVM's own exception attached (as py4j attaches it, in
    ``java_exception``). ``StreamingQuery.exception()`` keeps only the text of a cause PySpark
    has no class for (a Kafka client's TimeoutException, say), and retries are decided by the
    Java types along the cause chain."""
    try:
        held = query._jsq.exception()  # Spark classic's JVM query; not there on Spark Connect
        if held.isDefined():
            setattr(failure, "java_exception", held.get())  # noqa: B010 - a foreign class
    except Exception:  # no JVM side to be had: the text is all there is
        pass
    return failure


class _Epoch:
    """The query id, known once ``start`` returns; the first batch may ask for it sooner."""

    def __init__(self) -> None:
        self._value = ""
        self._known = threading.Event()

    def set(self, value: str) -> None:
        self._value = value
        self._known.set()

    def get(self) -> str:
        if not self._known.wait(EPOCH_WAIT_S):
            raise TerminalError("the streaming query did not start")
        return self._value


class BatchWriter:
    """The ``foreachBatch`` function of one load."""

    def __init__(
        self,
        pipeline: str,
        step: LoadStep,
        log: EventLog,
        dead_letters: Callable[[LoadStep, list[dict[str, Any]]], None],
    ) -> None:
        self.pipeline = pipeline
        self.step = step
        self.log = log
        self.dead_letters = dead_letters
        self.epoch = _Epoch()
        # The error a batch failed with: the query only reports it as Python text.
        self.failure: EtlcError | None = None
        self.batches = 0  # committed by this query

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        loader, mode = self.step.loader, self.step.mode
        try:
            if isinstance(loader, ExactlyOnceLoader):
                marker = BatchMarker(self.pipeline, self.epoch.get(), batch_id)
                result = loader.load_batch(batch, mode, marker)
                if result is None:
                    self.log.info(
                        "batch_skipped",
                        step=self.step.id,
                        batch_id=batch_id,
                        reason="committed before (replayed after a restart)",
                    )
                    return
            else:
                result = loader.load(batch, mode)
            log_target_changes(self.log, self.step, result)
            if result.dead_lettered:
                # Rows the target refused go to the dead-letter log, as in batch; if it cannot
                # be written, the run fails.
                self.dead_letters(self.step, result.details.get("dead_letters", []))
        except Exception as exc:
            # The batch's rows are computed here, so a record that breaks a rule fails here.
            self.failure = halted(exc) or classify(exc, self.step.id)
            raise
        self.batches += 1
        self.log.info(
            "batch_committed",
            stage="load",
            step=self.step.id,
            batch_id=batch_id,
            mode=mode,
            dead_lettered=result.dead_lettered or None,
            superseded=result.superseded or None,
            **result.phases_ms,
            **loader.describe(),
        )


# The running queries, each with its micro-batches' writer (idle under Spark's own file sink).
Queries = list[tuple[StreamingQuery, BatchWriter]]


def _forget(report: RunReport, step: str) -> None:
    """A static side's counts of an earlier snapshot, out of the report: the run reports the
    snapshot it reads now (each refresh's own counts are in its `step_finished` line), as its
    quarantine folder holds that snapshot's records set aside."""
    report.steps[:] = [m for m in report.steps if m.step != step]


def _fewest_committed(loads: Sequence[LoadStep], writers: Sequence[BatchWriter]) -> int:
    """The micro-batches committed by the load that committed fewest, over all its queries."""
    committed = dict.fromkeys((ld.id for ld in loads), 0)
    for writer in writers:
        committed[writer.step.id] += writer.batches
    return min(committed.values(), default=0)


class StreamingPipeline(SparkPipeline):
    def __init__(
        self,
        graph: PipelineGraph,
        spark: SparkSession,
        env: Environment,
        log: EventLog,
        stop: StopSignal,
        *,
        clock: Clock = time.monotonic,
        poll_s: float = 0.5,
        tick: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(graph, spark, env, log, clock)
        self.stop = stop
        self.poll_s = poll_s
        # Called while the queries run, every poll (the run's RUNNING lineage events).
        self.tick = tick or (lambda: None)
        self.listener: ProgressLog | None = None

    def run(self) -> RunReport:
        ctx = self.log.context
        started = self.clock()
        report = RunReport(self.graph.name, ctx.run_id, Status.SUCCESS, attempts=ctx.attempt)
        store = StageStore(self.spark, self.env.settings.stage_dir, ctx.run_id, ctx.attempt)
        self.log.info(
            "attempt_started",
            max_attempts=ctx.max_attempts,
            mode="streaming",
            shuffle_partitions=self._size_shuffle(),
        )
        self._listen()
        self.set_aside = []  # an earlier attempt's snapshot is not this one's
        queries: Queries = []
        # Every load query's writer in this attempt: a static refresh restarts the queries.
        writers: list[BatchWriter] = []
        static: dict[str, DataFrame] = {}
        read_at: dict[str, float] = {}
        try:
            while True:
                before = dict(read_at)
                frames, aside = self._frames(static, read_at, store, report)
                queries = []  # filled as each starts: one failing to start stops the others
                self._start_queries(frames, aside, queries, writers)
                # A snapshot's interval runs from the restart of the queries that read it:
                # where restarting takes longer than the interval (a busy cluster, a short
                # `refresh`), the queries would otherwise be restarted again at once, for good.
                started = self.clock()
                read_at.update((k, started) for k, at in read_at.items() if before.get(k) != at)
                if not self._await(queries, self._next_refresh(read_at)):
                    break
                self.log.info("static_refresh", due=[e.id for e in self._refreshed()])
        except Exception as exc:
            self._failed(report, self._explain(exc, queries))
        finally:
            for query, _ in queries:
                if query.isActive:
                    query.stop()
            report.duration_ms = int((self.clock() - started) * 1000)
            report.batches = _fewest_committed(self.graph.loads, writers)
            self._expectation_report(report)
            if not self.env.settings.keep_stage:
                self._cleanup(store)
        return report

    def _frames(
        self,
        static: dict[str, DataFrame],
        read_at: dict[str, float],
        store: StageStore,
        report: RunReport,
    ) -> tuple[dict[str, DataFrame], dict[str, DataFrame]]:
        """Every dataset a load reads, and each streamed step's records its quarantine rules
        set aside. A static side is a validated snapshot, taken at start and again whenever
        its `refresh` interval has passed (``static``, ``read_at``)."""
        frames: dict[str, DataFrame] = {}
        aside: dict[str, DataFrame] = {}
        snapshots: list[str] = []  # static steps read (again) in this pass
        for ex in self.graph.extracts:
            if isinstance(ex.extractor, StreamExtractor):
                frames[ex.id], held = self._stream(ex)
                if held is not None:
                    aside[ex.id] = held
                continue
            if ex.id not in static or self._due(ex, read_at):
                _forget(report, ex.id)
                static[ex.id] = self._extract(ex, store, report)
                read_at[ex.id] = self.clock()
                snapshots.append(ex.id)
            frames[ex.id] = static[ex.id]
        loaded = self.graph.loaded()
        for tr in (t for t in self.graph.transforms if t.id in loaded):
            made = self._apply(tr, frames)
            frames[tr.id], held = self._expected(tr, made, store, report)
            if held is not None:
                aside[tr.id] = held
            elif not made.isStreaming:
                snapshots.append(tr.id)
        # A snapshot's records set aside go now: the stream's loads never end. A snapshot that
        # sets none aside leaves no folder of an earlier one's.
        self._write_quarantine(store)
        written = {step for step, _, _ in self.set_aside}
        ctx = self.log.context
        for step in (s for s in snapshots if s not in written and self._quarantines(s)):
            root = self.env.settings.quarantine_dir
            remove(self.spark, quarantine_path(root, ctx.pipeline, step, ctx.run_id))
        self.set_aside = []
        return frames, aside

    def _start_queries(
        self,
        frames: dict[str, DataFrame],
        aside: dict[str, DataFrame],
        queries: Queries,
        writers: list[BatchWriter],
    ) -> None:
        """Each load's query, then each quarantine query, added to ``queries`` as it starts.
        A step's records set aside go to its quarantined loads, else to its folder."""
        for ld in self.graph.loads:
            df = self._as_loaded(ld.input, aside[ld.input]) if ld.quarantined else frames[ld.input]
            query, writer = self._start(ld, df)
            queries.append((query, writer))
            writers.append(writer)
        loaded = {ld.input for ld in self.graph.loads if ld.quarantined}
        for step_id, held in sorted(aside.items()):
            if step_id not in loaded:
                queries.append(self._set_aside(step_id, held))

    def _failed(self, report: RunReport, error: EtlcError) -> None:
        report.status = Status.FAILED
        report.error = error
        if isinstance(error, ValidationFailedError) and not error.logged:
            transforms = {t.id for t in self.graph.transforms}
            self.log.error(
                "validation_failed",
                stage="transform" if error.step in transforms else "extract",
                step=error.step,
                violations=error.violations,
                sample=error.sample,
            )

    def _size_shuffle(self) -> int:
        """Spark's default of 200 shuffle partitions makes every stateful micro-batch run 200
        tasks; unless the environment says otherwise, use one per core. (A checkpoint keeps
        the number its state was written with; this only sizes a fresh one.)"""
        key = "spark.sql.shuffle.partitions"
        if key not in self.env.spark_conf:
            cores = max(1, int(self.spark.sparkContext.defaultParallelism))
            self.spark.conf.set(key, str(cores))
        return int(self.spark.conf.get(key) or 0)

    def _listen(self) -> None:
        if self.listener is None:  # once per session, not per attempt
            interval = duration_ms(self.env.settings.trigger_interval)
            self.listener = ProgressLog(
                self.log,
                self.spark,
                interval,
                self.env.settings.memory_warning_fraction,
                self._stream_sources(),
                expected=self._counted_steps(),
            )
            self.spark.streams.addListener(self.listener)

    def _expected(
        self, step: TransformStep, made: DataFrame, store: StageStore, report: RunReport
    ) -> tuple[DataFrame, DataFrame | None]:
        """A transform's output with its expectations, and on a stream the records its
        quarantine rules set aside: counted per micro-batch on a stream; a static side's
        snapshot is staged, checked and counted as it is written, like a static extract (a
        filter on it would be run, uncounted, in every micro-batch)."""
        if made.isStreaming:
            return observed_expectations(made, step.id, step.expectations)
        if not step.expectations:
            return made, None
        snapshot, result = self._staged(step, made, store)
        _forget(report, step.id)
        counts = result.expected
        metrics = StepMetrics(
            step.id, "transform", None, result.records - counts.left_out, extra=counts.fields()
        )
        report.steps.append(metrics)
        self.log.info(
            "step_finished",
            stage="transform",
            step=step.id,
            records_out=metrics.records_out,
            **counts.fields(),
        )
        return snapshot, None

    def _counted_steps(self) -> dict[str, tuple[Expectations, str]]:
        """Each step with warn or drop rules, and the query whose micro-batches count them for
        the run: the first load made from it (every load's query checks its records)."""
        steps: list[ExtractStep | TransformStep] = [*self.graph.extracts, *self.graph.transforms]
        checked = {s.id: s.expectations for s in steps}
        for ex in self.graph.extracts:  # a rule whose metric never comes counts nothing
            checked[ex.id] = in_force([CORRUPT_COLUMN], ex.rules, ex.expectations, ex.on_invalid)
        rules = {step: e for step, e in checked.items() if counted(e)}
        owners: dict[str, tuple[Expectations, str]] = {}
        for ld in self.graph.loads:
            for step in sorted(self.graph.upstream(ld.input) & rules.keys()):
                owners.setdefault(step, (rules[step], f"{self.graph.name}.{ld.id}"))
        return owners

    def _expectation_report(self, report: RunReport) -> None:
        """The streamed steps' expectation counts in the report; PARTIAL if any were dropped."""
        if self.listener is not None and self.listener.expected:
            self._deliver_pending_events()  # a failed run's last committed batches too
            stages = {e.id: "extract" for e in self.graph.extracts}
            for step, counts in sorted(self.listener.expectation_totals().items()):
                stage = stages.get(step, "transform")
                report.steps.append(StepMetrics(step, stage, extra=counts.fields()))
        if report.status is Status.SUCCESS and report.left_out:
            report.status = Status.PARTIAL

    def _deliver_pending_events(self) -> None:
        """Spark hands a micro-batch's progress to listeners on its own thread, after the batch
        has committed: a driver that ends right after a stop would lose the last batches'
        ``batch_progress`` and ``offsets_skipped`` lines. Wait (bounded) until they are out."""
        try:
            # Spark classic's listener bus; no public API waits for it.
            bus = self.spark.sparkContext._jsc.sc().listenerBus()
            bus.waitUntilEmpty(LISTENER_WAIT_MS)
        except Exception as exc:  # a stop must not fail over a log line
            self.log.warning("progress_events_pending", reason=str(exc).splitlines()[0][:200])

    def _stream(self, step: ExtractStep) -> tuple[DataFrame, DataFrame | None]:
        """The stream's valid records, and those its quarantine rules set aside (with the
        text and position of a record the reader could not parse)."""
        assert isinstance(step.extractor, StreamExtractor)
        try:
            trigger_ms = duration_ms(self.env.settings.trigger_interval)
            intake = step.extractor.pace(trigger_ms, self._cores())
            raw = step.extractor.stream(self.spark)
            expected = in_force(raw.columns, step.rules, step.expectations, step.on_invalid)
            broken = halting(raw.columns, step.rules, expected, step.on_invalid)
            checked = with_source_lag(halt_on_invalid(raw, step.id, broken), step.id)
            checked, held = observed_expectations(checked, step.id, expected, halt=False)
            columns = [F.col(f"`{f.name}`") for f in step.schema.struct().fields]
            self.log.info(
                "stream_opened",
                stage="extract",
                step=step.id,
                **step.extractor.describe(),
                **intake,
            )
            if held is None:
                return checked.select(*columns), None
            kept = [F.col(c) for c in (CORRUPT_COLUMN, POSITION_COLUMN) if c in raw.columns]
            return checked.select(*columns), held.select(*columns, *kept, F.col(HELD))
        except Exception as exc:
            raise classify(exc, step.id) from exc

    def _cores(self) -> int:
        """The cores the stream's batches will run on: what the application asked for when it
        says (executors x cores; dynamic allocation's maximum), else those registered now (on
        a cluster, right after start, maybe fewer than will come). 0: dynamic allocation
        with no maximum, no number to size by."""
        conf = self.spark.sparkContext.getConf()
        per = int(conf.get("spark.executor.cores") or 1)
        if (conf.get("spark.dynamicAllocation.enabled") or "").lower() == "true":
            most = conf.get("spark.dynamicAllocation.maxExecutors")
            return int(most) * per if most else 0
        registered = int(self.spark.sparkContext.defaultParallelism)
        instances = conf.get("spark.executor.instances")
        return max(registered, int(instances) * per) if instances else registered

    def _set_aside(self, step: str, held: DataFrame) -> tuple[StreamingQuery, BatchWriter]:
        """The query that writes a step's quarantined records to its folder, per micro-batch
        and exactly once (its checkpoint: ``quarantine.<step>``); it reads the step's sources
        again, at its own pace."""
        folder = stream_quarantine_path(self.env.settings.quarantine_dir, self.graph.name, step)
        aside = LoadStep(f"quarantine.{step}", step, QuarantineFolder(folder), "append")
        started = self._start(aside, quarantined(held, HELD, step, self.log.context.run_id))
        self.log.info("quarantine_started", stage="quarantine", step=step, path=folder)
        return started

    def _start(self, step: LoadStep, df: DataFrame) -> tuple[StreamingQuery, BatchWriter]:
        settings = self.env.settings
        checkpoint = f"{settings.checkpoint_dir.rstrip('/')}/{self.graph.name}/{step.id}"
        writer = BatchWriter(self.graph.name, step, self.log, self._dead_letters)
        # An upsert sink takes every changed row (update mode: an aggregate's row may change
        # in several batches); an append sink only rows that are final.
        output = "update" if step.mode == "upsert" else "append"
        try:
            stream = (
                df.writeStream.queryName(f"{self.graph.name}.{step.id}")
                .option("checkpointLocation", checkpoint)
                .trigger(processingTime=settings.trigger_interval)
                .outputMode(output)
            )
            if isinstance(step.loader, StreamSink) and step.mode == "append":
                stream = step.loader.sink(self.spark, stream)  # Spark's own exactly-once sink
            else:
                stream = stream.foreachBatch(writer)
            query = stream.start()
        except Exception as exc:
            raise classify(exc, step.id) from exc
        writer.epoch.set(str(query.id))
        self.log.info(
            "query_started",
            stage="load",
            step=step.id,
            query=query.name,
            epoch=str(query.id),
            checkpoint=checkpoint,
            output_mode=output,
            trigger=settings.trigger_interval,
        )
        return query, writer

    def _refreshed(self) -> list[ExtractStep]:
        return [e for e in self.graph.extracts if e.refresh is not None]

    def _due(self, step: ExtractStep, read_at: dict[str, float]) -> bool:
        if step.refresh is None:
            return False
        return self.clock() - read_at[step.id] >= duration_ms(step.refresh) / 1000

    def _next_refresh(self, read_at: dict[str, float]) -> float | None:
        due = [
            read_at[e.id] + duration_ms(e.refresh) / 1000 for e in self._refreshed() if e.refresh
        ]
        return min(due) if due else None

    def _await(self, queries: Queries, refresh_at: float | None) -> bool:
        """Wait until a stop is requested (False) or a static side is due (True); either way
        the queries stop after their running micro-batch."""
        refresh = False
        while not self.stop.requested:
            for query, _ in queries:
                if not query.isActive:
                    failure = query.exception()
                    if failure is not None:
                        raise with_java_side(query, failure)
                    raise TerminalError(f"query {query.name} stopped by itself")
            if refresh_at is not None and self.clock() >= refresh_at:
                refresh = True
                break
            self.tick()
            time.sleep(self.poll_s)
        if not refresh:
            self.log.info("stop_requested", queries=len(queries))
        for query, _ in queries:
            deadline = self.clock() + STOP_WAIT_S
            # Let the running micro-batch commit; the next one never starts.
            while query.isActive and query.status["isTriggerActive"] and self.clock() < deadline:
                time.sleep(0.05)
            query.stop()
        self._deliver_pending_events()
        self.log.info("queries_stopped", queries=len(queries), restart=refresh or None)
        return refresh

    def _explain(self, exc: Exception, queries: Queries) -> EtlcError:
        """The error a query died of, as precisely as it can be known: a source's own account
        of it first (the batch's rows are read from the sources inside the load's write)."""
        for _, writer in queries:
            if writer.failure is not None:
                return self._sources_explain(writer.failure.__cause__) or writer.failure
        invalid = halted(exc)
        if invalid is not None:
            return invalid
        explained = self._sources_explain(exc)
        if explained is not None:
            return explained
        if no_space_left(exc):
            return NoSpaceError(
                "no space left on a filesystem the stream writes to: its checkpoint directory "
                f"{self.env.settings.checkpoint_dir} (etlc.checkpoint_dir) or Spark's local "
                "directories (spark.local.dir). Free space there and start it again: it resumes "
                "from its checkpoint"
            )
        return exc if isinstance(exc, EtlcError) else classify(exc, None)

    def _sources_explain(self, exc: BaseException | None) -> EtlcError | None:
        if exc is None:
            return None
        for step_id, source in self._stream_sources():
            explained = source.explain(exc)
            if explained is not None:
                return explained.at(step_id)
        return None

    def _stream_sources(self) -> list[tuple[str, StreamExtractor]]:
        """Each stream extract's step id and extractor."""
        return [
            (e.id, e.extractor)
            for e in self.graph.extracts
            if isinstance(e.extractor, StreamExtractor)
        ]
