"""Streaming progress as log lines: one JSON line per micro-batch, from Spark's own progress.

Rates, durations, state size and the watermark come from ``StreamingQueryProgress``, which
Spark computes anyway; nothing here touches the data. A batch that takes longer than its
trigger interval, or that leaves more of the driver's heap in use than the configured
fraction, also logs a ``resource_warning``: intake stays bounded (``maxOffsetsPerTrigger``),
so falling behind shows as longer batches, not as unbounded memory. A batch whose source
passed over offsets it could not read (a stream told to go on past lost data) logs
``offsets_skipped``, with what the source says was skipped.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming.listener import StreamingQueryListener

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.expectations import (
    NO_COUNTS,
    STREAM_METRIC,
    ExpectationCounts,
    Expectations,
)
from etlc.runtime.logs import EventLog
from etlc.runtime.strategies import StreamExtractor

_DURATION = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|seconds?|min|minutes?|h|hours?)\s*$", re.I
)


def duration_ms(text: str) -> int:
    """``"1 second"``, ``"500 ms"``, ``"2 minutes"`` in milliseconds."""
    match = _DURATION.match(text)
    if match is None:
        raise ConfigurationError(
            f'`{text}` is not a duration: write e.g. "1 second", "500 milliseconds"'
        )
    unit = match.group(2).lower()
    if unit.startswith("mi") and not unit.startswith("mil"):
        scale = 60_000
    elif unit.startswith("m"):
        scale = 1
    elif unit.startswith("s"):
        scale = 1_000
    else:
        scale = 3_600_000
    return int(float(match.group(1)) * scale)


LAG_METRIC = "etlc_source_lag_"  # + the extract step's id: observed per micro-batch


def latency_ms(progress: Any) -> dict[str, int] | None:
    """End-to-end latency over the batch's records: each record's wait before the batch
    began (observed in the plan) plus the batch's duration, the time to the sink's commit."""
    observed = dict(progress.observedMetrics or {})
    lags = [row for name, row in observed.items() if name.startswith(LAG_METRIC)]
    rows = [r for r in lags if r is not None and r["lag_max_ms"] is not None]
    if not rows:
        return None  # a batch without new records
    batch = int(progress.batchDuration or 0)
    p50 = max(int(r["lag_ms"][0]) for r in rows)
    p95 = max(int(r["lag_ms"][1]) for r in rows)
    top = max(int(r["lag_max_ms"]) for r in rows)
    return {"p50": p50 + batch, "p95": p95 + batch, "max": top + batch}


def progress_fields(progress: Any) -> dict[str, Any]:
    """The log fields of one ``StreamingQueryProgress``."""
    durations = dict(progress.durationMs or {})
    event_time = dict(progress.eventTime or {})
    operators = progress.stateOperators or []
    state_rows = sum(int(op.numRowsTotal) for op in operators)
    # Rows a stateful operator ignored as later than the watermark: counted, never written.
    late = sum(int(getattr(op, "numRowsDroppedByWatermark", 0) or 0) for op in operators)
    return {
        "query": progress.name,
        "batch_id": progress.batchId,
        "input_rows": progress.numInputRows,
        "input_rows_per_s": round(float(progress.inputRowsPerSecond or 0.0), 1),
        "processed_rows_per_s": round(float(progress.processedRowsPerSecond or 0.0), 1),
        "batch_duration_ms": progress.batchDuration,
        "trigger_ms": durations.get("triggerExecution"),
        # Where the trigger's time went, in Spark's own names (addBatch: the sink's write;
        # walCommit and commitOffsets: the checkpoint; queryPlanning, latestOffset, ...).
        "phases_ms": {k: v for k, v in sorted(durations.items()) if k != "triggerExecution"},
        "state_rows": state_rows,
        "late_rows_dropped": late,
        "watermark": event_time.get("watermark"),
        "latency_ms": latency_ms(progress),
    }


class ProgressLog(StreamingQueryListener):
    def __init__(
        self,
        log: EventLog,
        spark: SparkSession,
        trigger_ms: int,
        memory_warning_fraction: float,
        sources: Sequence[tuple[str, StreamExtractor]] = (),
        *,
        expected: Mapping[str, tuple[Expectations, str]] | None = None,
    ) -> None:
        """``sources``: each stream extract's step id and extractor. ``expected``: each
        streamed step with counted expectations, its rules and the query whose counts are the
        run's (a step several loads read is checked by each load's query)."""
        self.log = log
        self.session = spark  # not `spark`: pyspark 3.5's listener has a read-only one
        self.trigger_ms = trigger_ms
        self.memory_warning_fraction = memory_warning_fraction
        self.sources = tuple(sources)
        self.expected = dict(expected or {})
        self._totals: dict[str, ExpectationCounts] = {}
        self._lock = threading.Lock()

    def expectation_totals(self) -> dict[str, ExpectationCounts]:
        """Each step's counts over the micro-batches its query committed so far."""
        with self._lock:
            return dict(self._totals)

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        self.log.info("query_terminated", epoch=str(event.id), failed=event.exception is not None)

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        fields = progress_fields(event.progress)
        counts = self._expectations(event.progress)
        if counts:
            fields["expectations"] = {step: c.as_log() for step, c in counts.items()}
        self.log.info("batch_progress", **fields)
        self._skipped(event.progress)
        heap = self._heap_used()
        slow = int(fields["batch_duration_ms"] or 0) > self.trigger_ms
        full = heap is not None and heap > self.memory_warning_fraction
        if slow or full:
            self.log.warning(
                "resource_warning",
                query=fields["query"],
                batch_id=fields["batch_id"],
                batch_duration_ms=fields["batch_duration_ms"],
                trigger_ms=self.trigger_ms,
                heap_used_fraction=None if heap is None else round(heap, 3),
                reason="batch slower than its trigger" if slow else "driver heap nearly full",
            )

    def _expectations(self, progress: Any) -> dict[str, ExpectationCounts]:
        """The batch's counts per step, added to the run's where the query is the step's."""
        observed = dict(progress.observedMetrics or {})
        found: dict[str, ExpectationCounts] = {}
        for step, (rules, owner) in self.expected.items():
            row = observed.get(f"{STREAM_METRIC}{step}")
            if row is None:
                continue
            values = row.asDict() if hasattr(row, "asDict") else dict(row)
            found[step] = counts = ExpectationCounts.of(rules, values)
            if owner == progress.name:
                with self._lock:
                    self._totals[step] = self._totals.get(step, NO_COUNTS) + counts
        return found

    def _skipped(self, progress: Any) -> None:
        for source in progress.sources or []:
            for step, extractor in self.sources:
                skipped = extractor.skipped(source)
                if skipped is not None:
                    self.log.warning(
                        "offsets_skipped",
                        query=progress.name,
                        batch_id=progress.batchId,
                        step=step,
                        **skipped,
                    )

    def _heap_used(self) -> float | None:
        try:
            runtime = self.session.sparkContext._jvm.java.lang.Runtime.getRuntime()  # type: ignore[union-attr]
            used = runtime.totalMemory() - runtime.freeMemory()
            return float(used) / float(runtime.maxMemory())
        except Exception:  # the measurement must never break the stream it watches
            return None
