"""Pipelines: the ``Pipeline`` interface and the batch implementation.

``BatchPipeline.run`` extracts every source into the stage store (validating each record),
builds the transforms lazily on the valid records, and runs one Spark job per load. Counts come
from ``DataFrame.observe`` on the work Spark already does, never from an extra pass.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from etlc.runtime.avro_boundary import through_avro
from etlc.runtime.dead_letter import DeadLetterLog
from etlc.runtime.environment import Environment
from etlc.runtime.errors import EtlcError, ValidationFailedError, classify, summary
from etlc.runtime.expectations import (
    HELD,
    ExpectationCounts,
    enforce,
    quarantine_rules,
    schema_only,
    staged,
)
from etlc.runtime.expectations import metrics as expectation_metrics
from etlc.runtime.graph import DatasetSchema, ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.incremental import IncrementalRun
from etlc.runtime.logs import EventLog
from etlc.runtime.observed import observed_metrics
from etlc.runtime.quarantine import for_load, quarantine_path, remove, write_quarantine
from etlc.runtime.report import RunReport, Status, StepMetrics
from etlc.runtime.stage_store import StageStore
from etlc.runtime.strategies import Gate, GatedLoader, LoadResult, PositionedLoader
from etlc.runtime.validation import Checked, StageResult, check


class Pipeline(ABC):
    @abstractmethod
    def run(self) -> RunReport: ...


Clock = Callable[[], float]


class SparkPipeline(Pipeline):
    """What batch and streaming pipelines share: validated extracts into the stage store,
    transforms crossing the Avro boundary, and the dead-letter log."""

    def __init__(
        self,
        graph: PipelineGraph,
        spark: SparkSession,
        env: Environment,
        log: EventLog,
        clock: Clock = time.monotonic,
    ) -> None:
        self.graph = graph
        self.spark = spark
        self.env = env
        self.log = log
        self.clock = clock
        # Steps whose quarantined records wait in the stage store for the loads to commit.
        self.set_aside: list[tuple[str, DatasetSchema, int]] = []
        # A batch run's incremental extracts (None: every extract reads everything).
        self.incremental: IncrementalRun | None = None

    def _apply(self, step: TransformStep, frames: dict[str, DataFrame]) -> DataFrame:
        try:
            out = step.fn(*(frames[i] for i in step.inputs))
            if self.env.settings.avro_boundary:
                out = through_avro(out, step.schema.avro, step.recheck)
            return out
        except Exception as exc:
            raise classify(exc, step.id) from exc

    def _extract(self, step: ExtractStep, store: StageStore, report: RunReport) -> DataFrame:
        started = self.clock()
        result = self._stage(step, store)
        self._extracted(step, result, started, report)
        self._halt_on_invalid(step.id, "extract", result, store)
        self._quarantine(step.id, step.schema, result, store)
        return store.read_valid(step.id, step.schema.struct())

    def _stage(self, step: ExtractStep, store: StageStore) -> StageResult:
        """The extract's records, checked, written to the stage store; a failure is the
        extract's, explained by its connector."""
        try:
            source = self._source(step)
            return store.write_validated(
                step.id, source, step.rules, step.expectations, step.on_invalid
            )
        except Exception as exc:
            raise classify(step.extractor.explain(exc) or exc, step.id) from exc

    def _source(self, step: ExtractStep) -> DataFrame:
        """What the extract reads in this run: everything, or what is new (incremental)."""
        if self.incremental is None:
            return step.extractor.extract(self.spark)
        return self.incremental.source(step)

    def _extracted(
        self,
        step: ExtractStep,
        result: StageResult,
        started: float,
        report: RunReport,
        **extra: Any,
    ) -> None:
        """An extract's counts, in the report and its ``step_finished`` line."""
        expected = result.expected
        metrics = StepMetrics(
            step.id,
            "extract",
            records_in=result.records,
            records_out=result.records - result.invalid - expected.left_out,
            duration_ms=int((self.clock() - started) * 1000),
            extra={
                "validation": {"invalid": result.invalid, "violations": result.violations},
                **expected.fields(),
                **extra,
            },
        )
        report.steps.append(metrics)
        self.log.info(
            "step_finished",
            stage="extract",
            step=step.id,
            records_in=metrics.records_in,
            records_out=metrics.records_out,
            duration_ms=metrics.duration_ms,
            validation={"passed": result.invalid == 0, "invalid": result.invalid},
            **expected.fields(),
            **extra,
            **step.extractor.describe(),
        )

    def _halt_on_invalid(
        self,
        step: str,
        stage: str,
        result: StageResult,
        store: StageStore,
        *,
        read_again: bool = False,
    ) -> None:
        """Raise the validation failure of a staged step with invalid records, logged with a
        bounded sample of them; they stay in the stage store for inspection. ``read_again``:
        the counts come from a pass that staged nothing, the sample from a second read of the
        source (which may have changed in between)."""
        if not result.invalid:
            return
        sample = store.sample_invalid(step, self.env.settings.sample_size)
        self.log.error(
            "validation_failed",
            stage=stage,
            step=step,
            records=result.records,
            invalid=result.invalid,
            violations=result.violations,
            sample=sample,
            stage_path=store.path(step),
            sample_read_again=read_again or None,
        )
        rules = ", ".join(f"{rule} ({n})" for rule, n in sorted(result.violations.items()))
        broke = "violate the schema" if schema_only(result.violations) else "failed validation"
        error = ValidationFailedError(
            f"{result.invalid} of {result.records} records {broke}: {rules}",
            step,
            result.violations,
            sample,
        )
        error.logged = True
        raise error

    def _staged(
        self, step: TransformStep, out: DataFrame, store: StageStore
    ) -> tuple[DataFrame, StageResult]:
        """A transform's output written to the stage store, its expectations checked and
        counted as it is written, then read back from there: the run halts on a fail rule
        before any load, and a quarantine rule's records are set aside."""
        try:
            result = store.write_validated(step.id, out, (), step.expectations)
        except Exception as exc:
            raise classify(exc, step.id) from exc
        self._halt_on_invalid(step.id, "transform", result, store)
        self._quarantine(step.id, step.schema, result, store)
        return store.read_valid(step.id, step.schema.struct()), result

    def _quarantine(
        self, step: str, schema: DatasetSchema, result: StageResult, store: StageStore
    ) -> None:
        """Note the records a quarantine rule set aside: they stay in the stage store until
        every load has committed (:meth:`_write_quarantine`)."""
        if result.expected.quarantined:
            self.set_aside.append((step, schema, result.expected.quarantined))

    def _write_quarantine(self, store: StageStore) -> None:
        """The records set aside, from the stage to the quarantine folder, once the loads
        committed: a run that fails leaves no quarantine behind, and the next one, reading the
        same records again, sets them aside once."""
        ctx = self.log.context
        root = self.env.settings.quarantine_dir
        loaded = {ld.input for ld in self.graph.loads if ld.quarantined}
        for step, schema, records in self.set_aside:
            if step in loaded:  # a load of the definition writes them instead
                continue
            path = quarantine_path(root, ctx.pipeline, step, ctx.run_id)
            try:
                aside = store.set_aside(step, schema.struct())
                write_quarantine(aside, HELD, path, step, ctx.run_id)
            except Exception as exc:
                raise classify(exc, step) from exc
            self.log.warning("records_quarantined", step=step, records=records, path=path)

    def _held(self, step: str, store: StageStore) -> DataFrame:
        """The records ``step`` set aside this run, from the stage store, as a quarantined
        load reads them (none: an empty dataset of the same columns)."""
        struct = self.graph.made(step).schema.struct()
        if any(held == step for held, _, _ in self.set_aside):
            return self._as_loaded(step, store.set_aside(step, struct))
        empty = self.spark.createDataFrame([], struct)
        return self._as_loaded(step, empty.withColumn(HELD, F.lit(None).cast("string")))

    def _as_loaded(self, step: str, held: DataFrame) -> DataFrame:
        """Records ``step`` set aside (marked ``HELD``) as a quarantined load reads them."""
        made = self.graph.made(step)
        columns = made.schema.struct().fieldNames()
        run_id = self.log.context.run_id
        return for_load(held, HELD, step, run_id, columns=columns, raw_text=made.keeps_raw_text)

    def _quarantines(self, step: str) -> bool:
        """Whether ``step`` has rules that set records aside."""
        made = self.graph.made(step)
        return made.keeps_raw_text or any(e.policy == "quarantine" for e in made.expectations)

    def _dead_letters(self, step: LoadStep, records: list[dict[str, Any]]) -> None:
        ctx = self.log.context
        sink = DeadLetterLog(
            self.env.settings.dead_letter_dir, ctx.pipeline, ctx.run_id, self.spark
        )
        # Logged first: should the file not be written, the records are in the run's lines.
        for record in records:
            self.log.warning("dead_letter", stage="load", step=step.id, **record)
        sink.write(step.id, records)
        self.log.warning(
            "dead_letters_written",
            stage="load",
            step=step.id,
            count=len(records),
            path=sink.location,
        )

    def _cleanup(self, store: StageStore) -> None:
        """The attempt's stage removed; a failure is logged, never raised (this runs in the
        pipelines' finally blocks, where the run's own outcome must stand)."""
        unremoved = store.cleanup()
        if unremoved is not None:
            self.log.warning("stage_cleanup_failed", path=store.base, error=unremoved)


def log_target_changes(log: EventLog, step: LoadStep, result: LoadResult) -> None:
    """``table_created`` (with the statement: names and types only) and ``columns_added``,
    when a load changed its target (``create_table``, ``add_columns``)."""
    if result.created_table:
        log.info(
            "table_created",
            stage="load",
            step=step.id,
            statement=result.created_table,
            **step.loader.describe(),
        )
    if result.added_columns:
        log.info(
            "columns_added",
            stage="load",
            step=step.id,
            columns=list(result.added_columns),
            **step.loader.describe(),
        )


class BatchPipeline(SparkPipeline):
    def __init__(
        self,
        graph: PipelineGraph,
        spark: SparkSession,
        env: Environment,
        log: EventLog,
        clock: Clock = time.monotonic,
        *,
        full_refresh: bool = False,
    ) -> None:
        if full_refresh:
            # Every row of the incremental extracts, written as a rebuild of each target.
            loads = tuple(
                replace(ld, mode=ld.rebuild_mode) if ld.rebuild_mode else ld for ld in graph.loads
            )
            graph = replace(graph, loads=loads)
        super().__init__(graph, spark, env, log, clock)
        self.full_refresh = full_refresh
        # Loads that committed in an earlier attempt of this run: a retry must not write
        # them again (an append would duplicate), so they are skipped.
        self.committed: dict[str, StepMetrics] = {}
        self.committed_before: set[str] = set()  # those, when this attempt's loads began

    def run(self) -> RunReport:
        ctx = self.log.context
        started = self.clock()
        report = RunReport(self.graph.name, ctx.run_id, Status.SUCCESS, attempts=ctx.attempt)
        store = StageStore(self.spark, self.env.settings.stage_dir, ctx.run_id, ctx.attempt)
        self.log.info("attempt_started", max_attempts=ctx.max_attempts)
        self.set_aside = []
        try:
            self.incremental = IncrementalRun(self.graph, self.spark, self.env, self.log)
            self.incremental.plan(full_refresh=self.full_refresh)
            single = self._single_pass()
            frames: dict[str, DataFrame] = {}
            checked: dict[str, Checked] = {}
            for ex in self.graph.extracts:
                if single is None:
                    frames[ex.id] = self._extract(ex, store, report)
                else:
                    frames[ex.id], checked[ex.id] = self._checked(ex)
            observed: dict[str, Observation | StageResult] = {}
            loaded = self._needed()
            # A transform no load depends on is never run; waiting on its metrics would hang.
            for tr in (t for t in self.graph.transforms if t.id in loaded):
                frames[tr.id], observed[tr.id] = self._transform(tr, frames, store)
            dead_lettered = self._load_all(frames, checked, single, store, report)
            self._transform_metrics(observed, report)
            if dead_lettered or report.left_out:
                report.status = Status.PARTIAL
        except Exception as exc:  # every failure becomes one classified error in the report
            report.status = Status.FAILED
            report.error = exc if isinstance(exc, EtlcError) else classify(exc, None)
        finally:
            report.duration_ms = int((self.clock() - started) * 1000)
            # Records that failed validation stay in the stage store for inspection.
            if not (
                self.env.settings.keep_stage or isinstance(report.error, ValidationFailedError)
            ):
                self._cleanup(store)
        return report

    def _needed(self) -> set[str]:
        """The datasets the loads depend on, less those only a load past an incremental
        catch-up reads (it skips the run). A load an earlier attempt committed keeps its:
        their records set aside are written at the attempt's end."""
        assert self.incremental is not None
        skipped = self.incremental.skipped
        return self.graph.upstream(*(ld.input for ld in self.graph.loads if ld.id not in skipped))

    def _written(self) -> set[str]:
        """The datasets a load of this attempt wrote: only theirs are counted (a transform
        only a skipped load reads is never run, and its counts never come)."""
        skipped = set(self.committed_before) | (
            self.incremental.skipped if self.incremental is not None else set()
        )
        return self.graph.upstream(*(ld.input for ld in self.graph.loads if ld.id not in skipped))

    def _load_all(
        self,
        frames: dict[str, DataFrame],
        checked: dict[str, Checked],
        single: LoadStep | None,
        store: StageStore,
        report: RunReport,
    ) -> int:
        """Every load (the dead-lettered count). Records set aside are written once every
        other load has committed: a run that fails leaves none behind, and the next one,
        reading the same records again, sets them aside once. An incremental run's loads
        move its positions, after which no run reads those records again: there they are
        written first, and removed when the run fails before any load commits."""
        assert self.incremental is not None
        self.committed_before = set(self.committed)
        early = bool(self.incremental.reads and self.set_aside)
        dead_lettered = 0
        try:
            if early:
                self._write_quarantine(store)
            for ld in sorted(self.graph.loads, key=lambda ld: ld.quarantined):
                skipped = self._skipped(ld, report)
                if skipped is not None:
                    dead_lettered += skipped
                elif ld.quarantined:
                    dead_lettered += self._load(ld, self._held(ld.input, store), report)
                else:
                    gate = None if single is None else self._gate(ld, checked, store, report)
                    dead_lettered += self._load(ld, frames[ld.input], report, gate)
        except Exception:
            if early:
                self._unquarantine()
            raise
        if not early:
            self._write_quarantine(store)
        return dead_lettered

    def _unquarantine(self) -> None:
        """The records this attempt set aside removed from the quarantine folder where no
        load they feed committed (the next run reads them again); a failure to is logged,
        never raised over the run's own."""
        ctx = self.log.context
        root = self.env.settings.quarantine_dir
        for step, _, _ in self.set_aside:
            fed = [ld.id for ld in self.graph.loads if step in self.graph.upstream(ld.input)]
            if any(load in self.committed for load in fed):
                continue
            path = quarantine_path(root, ctx.pipeline, step, ctx.run_id)
            try:
                remove(self.spark, path)
            except Exception as exc:
                self.log.warning(
                    "quarantine_cleanup_failed", step=step, path=path, error=summary(exc)
                )

    # --- one pass: the extracts validated as the load writes ------------------------------

    def _single_pass(self) -> LoadStep | None:
        """The load that validates the extracts in its own job, reading each source once, when
        nothing needs the stage store between them: one load, which can hold its records back
        until their counts are known (:class:`GatedLoader`); every extract feeding it, each
        dataset read by one step, every transform reading all its records; no rule that sets
        records aside, and no transform rule that halts (those are checked in the stage
        store). Otherwise (None) each extract is staged first."""
        loads, extracts = self.graph.loads, self.graph.extracts
        if self.env.settings.keep_stage or len(loads) != 1 or loads[0].quarantined:
            return None
        load = loads[0]
        transforms = [t for t in self.graph.transforms if t.id in self.graph.loaded()]
        reads = Counter([load.input, *(i for t in transforms for i in t.inputs)])
        if (
            not isinstance(load.loader, GatedLoader)
            or any(reads[ex.id] != 1 for ex in extracts)
            or any(n > 1 for n in reads.values())
            or any(not t.reads_every_record or staged(t.expectations) for t in transforms)
            or any(ex.on_invalid != "fail" or quarantine_rules(ex.expectations) for ex in extracts)
        ):
            return None
        try:
            gates = load.loader.gates(self.spark, load.mode)
        except Exception:  # the staged run reaches the same target and reports its failure
            return None
        return load if gates else None

    def _checked(self, step: ExtractStep) -> tuple[DataFrame, Checked]:
        """An extract's valid records, checked as the load's job reads them. They cross the
        Avro stage boundary inside the plan (``to_avro``/``from_avro`` under the dataset's
        schema, unless ``etlc.avro_boundary`` is off) instead of through stage files."""
        try:
            source = self._source(step)
            crossing = self.env.settings.avro_boundary
            # Without the crossing, which encodes every column, the counts read them all.
            checked = check(
                step.id,
                source,
                step.rules,
                step.expectations,
                step.on_invalid,
                every_column=not crossing,
            )
            valid = checked.valid(step.schema.struct())
            if crossing:
                valid = through_avro(valid, step.schema.avro)
            return valid, checked
        except Exception as exc:
            raise classify(step.extractor.explain(exc) or exc, step.id) from exc

    def _gate(
        self, load: LoadStep, checked: dict[str, Checked], store: StageStore, report: RunReport
    ) -> Gate:
        """What ``load`` calls once its records are written and before they are visible: the
        extracts' counts logged, and the run halted (the records never published) when one
        of them has invalid records."""
        started = self.clock()

        def gate() -> None:
            results = {ex.id: checked[ex.id].result(ex.id) for ex in self.graph.extracts}
            # No record counted: an empty source, or Spark left the check out of the plan (a
            # filter it proved false, a side found empty); staging it tells which.
            restaged = {ex.id for ex in self.graph.extracts if not results[ex.id].records}
            for ex in (ex for ex in self.graph.extracts if ex.id in restaged):
                results[ex.id] = self._stage(ex, store)
            for ex in self.graph.extracts:
                self._extracted(ex, results[ex.id], started, report, validated_with=load.id)
            for ex in (ex for ex in self.graph.extracts if results[ex.id].invalid):
                if ex.id not in restaged:
                    # The invalid records went nowhere: the source is read again, into the
                    # stage store, for the sample and for an engineer to inspect (the failure
                    # path only).
                    try:
                        self._stage(ex, store)
                    except Exception as exc:
                        self.log.warning("validation_sample_failed", step=ex.id, error=summary(exc))
                self._halt_on_invalid(
                    ex.id, "extract", results[ex.id], store, read_again=ex.id not in restaged
                )

        return gate

    # --- stages ---------------------------------------------------------------------------

    def _transform(
        self, step: TransformStep, frames: dict[str, DataFrame], store: StageStore
    ) -> tuple[DataFrame, Observation | StageResult]:
        """The step's output and how its counts are known: observed while a load computes it,
        or, with a fail or quarantine rule, from writing it to the stage store first. A load's
        job cannot stop without harm where a record breaks a fail rule (a plain file overwrite
        has removed the old files when its job starts; Kafka has the records sent before), nor
        write a quarantine rule's records to a second target; so the run halts before any
        load, as it does for an extract's invalid records."""
        out = self._apply(step, frames)
        if staged(step.expectations):
            return self._staged(step, out, store)
        observation = Observation(f"etlc:transform:{step.id}")
        counts = expectation_metrics(step.expectations)
        observed = out.observe(observation, F.count(F.lit(1)).alias("records"), *counts)
        return enforce(observed, step.id, step.expectations), observation

    def _load(
        self, step: LoadStep, df: DataFrame, report: RunReport, gate: Gate | None = None
    ) -> int:
        started = self.clock()
        observation = Observation(f"etlc:load:{step.id}")
        counted = df.observe(observation, F.count(F.lit(1)).alias("records"))
        try:
            result = self._write(step, counted, gate)
            records = int(observed_metrics(observation, step.id).get("records", 0))
        except Exception as exc:
            raise self._failed(step, exc, gate is not None) from exc
        # input = written + dead-lettered + superseded (an upsert writes the last row per key).
        metrics = StepMetrics(
            step.id,
            "load",
            records_in=records,
            records_out=records - result.dead_lettered - result.superseded,
            duration_ms=int((self.clock() - started) * 1000),
            extra={
                k: v
                for k, v in (
                    ("dead_lettered", result.dead_lettered),
                    ("superseded", result.superseded),
                    ("staged_with", result.staged_with),
                    *result.phases_ms.items(),
                )
                if v
            },
        )
        log_target_changes(self.log, step, result)
        if result.dead_lettered:
            self._dead_letters(step, result.details.get("dead_letters", []))
        self.committed[step.id] = metrics
        # A load that could not keep its positions with its rows: they follow, and from here
        # on no retry writes its rows again.
        if self.incremental is not None and not isinstance(step.loader, PositionedLoader):
            self.incremental.commit(step)
        report.steps.append(metrics)
        self.log.info(
            "step_finished",
            stage="load",
            step=step.id,
            mode=step.mode,
            records_in=metrics.records_in,
            records_out=metrics.records_out,
            dead_lettered=result.dead_lettered or None,
            superseded=result.superseded or None,
            duration_ms=metrics.duration_ms,
            staged_with=result.staged_with,
            **result.phases_ms,
            **step.loader.describe(),
        )
        return result.dead_lettered

    def _skipped(self, step: LoadStep, report: RunReport) -> int | None:
        """The dead-lettered count of a load this run does not write (None: it writes):
        one an earlier attempt committed, or one past an incremental catch-up's range."""
        if step.id in self.committed:
            done = self.committed[step.id]
            report.steps.append(done)
            self.log.info("step_skipped", stage="load", step=step.id, reason="committed earlier")
            return int(done.extra.get("dead_lettered", 0))
        if self.incremental is not None and step.id in self.incremental.skipped:
            self.log.info(
                "step_skipped",
                stage="load",
                step=step.id,
                reason="committed this range in an earlier run (catching the other loads up)",
            )
            return 0
        return None

    def _write(self, step: LoadStep, df: DataFrame, gate: Gate | None) -> LoadResult:
        """The load's write, with the positions of the incremental extracts feeding it in
        its transaction when it can hold them (else they follow its commit: ``_load``)."""
        positions = None if self.incremental is None else self.incremental.positions(step)
        if positions is not None and isinstance(step.loader, PositionedLoader):
            assert gate is None  # a database load stages its rows: no pass to share
            return step.loader.load_positioned(df, step.mode, positions)
        if gate is None:
            return step.loader.load(df, step.mode)
        assert isinstance(step.loader, GatedLoader)
        return step.loader.load_gated(df, step.mode, gate)

    def _failed(self, step: LoadStep, exc: Exception, single: bool) -> EtlcError:
        """A load's failure, classified; in a single pass its job also read the extracts, so a
        failure one of them can explain is that extract's."""
        if single and not isinstance(exc, EtlcError):
            for ex in self.graph.extracts:
                explained = ex.extractor.explain(exc)
                if explained is not None:
                    return classify(explained, ex.id)
        return classify(exc, step.id)

    def _transform_metrics(
        self, observed: dict[str, Observation | StageResult], report: RunReport
    ) -> None:
        """Transform counts, observed while the loads ran (transforms are lazy) or staged."""
        produced = {m.step: m.records_out for m in report.steps}
        written = self._written()
        for tr in (t for t in self.graph.transforms if t.id in observed and t.id in written):
            found = observed[tr.id]
            if isinstance(found, StageResult):
                made, counts = found.records, found.expected
            else:
                values = observed_metrics(found, tr.id)
                made = int(values.pop("records", 0))
                counts = ExpectationCounts.taken(tr.expectations, values)
            produced[tr.id] = records_out = made - counts.left_out
            records_in = sum(produced.get(i) or 0 for i in tr.inputs)
            report.steps.append(
                StepMetrics(tr.id, "transform", records_in, records_out, extra=counts.fields())
            )
            self.log.info(
                "step_finished",
                stage="transform",
                step=tr.id,
                records_in=records_in,
                records_out=records_out,
                **counts.fields(),
            )
