"""A stream's ``resource_warning``, from fabricated progress events: a batch slower than its
trigger, a driver heap fuller than the configured fraction, neither, and a heap that cannot be
measured (which must never break the stream it watches). And the cores a stream's intake
bound is sized by."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.progress import ProgressLog
from etlc.runtime.streaming import StreamingPipeline

TRIGGER_MS = 1_000


def warnings(stream: io.StringIO) -> list[dict[str, Any]]:
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [e for e in found if e["event"] == "resource_warning"]


def progress(batch_ms: int, batch_id: int = 3) -> SimpleNamespace:
    return SimpleNamespace(
        name="p.load_1",
        batchId=batch_id,
        numInputRows=50_000,
        inputRowsPerSecond=50_000.0,
        processedRowsPerSecond=40_000.0,
        batchDuration=batch_ms,
        durationMs={"triggerExecution": batch_ms},
        stateOperators=[],
        eventTime={},
        observedMetrics={},
        sources=[],
    )


def spark_with_heap(used: int, free: int, most: int) -> SimpleNamespace:
    """A SparkSession whose driver JVM reports this heap (java.lang.Runtime)."""
    runtime = SimpleNamespace(
        totalMemory=lambda: used + free, freeMemory=lambda: free, maxMemory=lambda: most
    )
    lang = SimpleNamespace(Runtime=SimpleNamespace(getRuntime=lambda: runtime))
    return SimpleNamespace(
        sparkContext=SimpleNamespace(_jvm=SimpleNamespace(java=SimpleNamespace(lang=lang)))
    )


def listener(spark: Any, fraction: float = 0.8) -> ProgressLog:
    return ProgressLog(EventLog(RunContext("p")), spark, TRIGGER_MS, fraction)


def test_a_batch_slower_than_its_trigger_warns_with_its_duration(log_stream: io.StringIO) -> None:
    listener(spark_with_heap(used=100, free=100, most=1_000)).onQueryProgress(
        SimpleNamespace(progress=progress(batch_ms=2_500, batch_id=7))
    )
    [warning] = warnings(log_stream)
    assert warning["level"] == "warning"
    assert (warning["query"], warning["batch_id"], warning["batch_duration_ms"]) == (
        "p.load_1",
        7,
        2_500,
    )
    assert (warning["trigger_ms"], warning["heap_used_fraction"]) == (TRIGGER_MS, 0.1)
    assert warning["reason"] == "batch slower than its trigger"


def test_a_driver_heap_fuller_than_the_fraction_warns_even_when_batches_keep_up(
    log_stream: io.StringIO,
) -> None:
    listener(spark_with_heap(used=850, free=50, most=1_000)).onQueryProgress(
        SimpleNamespace(progress=progress(batch_ms=400))
    )
    [warning] = warnings(log_stream)
    assert warning["heap_used_fraction"] == 0.85
    assert warning["reason"] == "driver heap nearly full"


def test_a_batch_within_its_trigger_and_a_light_heap_warn_of_nothing(
    log_stream: io.StringIO,
) -> None:
    watch = listener(spark_with_heap(used=700, free=100, most=1_000))  # 0.7 < 0.8
    for batch_ms in (1, 999, TRIGGER_MS):  # a batch exactly as long as its trigger keeps up
        watch.onQueryProgress(SimpleNamespace(progress=progress(batch_ms)))
    assert warnings(log_stream) == []
    assert log_stream.getvalue().count('"batch_progress"') == 3


def test_a_heap_that_cannot_be_measured_is_no_warning_and_no_failure(
    log_stream: io.StringIO,
) -> None:
    class Gone:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("py4j gateway closed")

    broken = SimpleNamespace(sparkContext=SimpleNamespace(_jvm=Gone()))
    watch = listener(broken)
    watch.onQueryProgress(SimpleNamespace(progress=progress(batch_ms=10)))
    assert warnings(log_stream) == []
    watch.onQueryProgress(SimpleNamespace(progress=progress(batch_ms=5_000)))
    [warning] = warnings(log_stream)
    assert "heap_used_fraction" not in warning  # unknown, so not logged
    assert warning["reason"] == "batch slower than its trigger"


def test_a_streams_cores_are_what_the_application_asked_for() -> None:
    def cores(conf: dict[str, str], registered: int) -> int:
        context = SimpleNamespace(getConf=lambda: conf, defaultParallelism=registered)
        return StreamingPipeline._cores(
            SimpleNamespace(spark=SimpleNamespace(sparkContext=context))
        )  # type: ignore[arg-type]

    assert cores({}, 2) == 2  # local mode: the master's cores
    executors = {"spark.executor.instances": "10", "spark.executor.cores": "4"}
    assert cores(executors, 2) == 40  # not the 2 registered right after start
    dynamic = {"spark.dynamicAllocation.enabled": "true", "spark.executor.cores": "2"}
    assert cores({**dynamic, "spark.dynamicAllocation.maxExecutors": "5"}, 2) == 10
    assert cores(dynamic, 2) == 0  # no maximum: no number to size a bound by
