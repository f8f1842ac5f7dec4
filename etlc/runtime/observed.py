"""Reading ``DataFrame.observe`` metrics without ever waiting forever.

Spark fills an observation when the SQL execution that carries it ends, reported through the
listener bus. A writer that moves data outside an SQL execution never fills it, and
``Observation.get`` would then block the driver for good; here the wait is bounded and its end
is an error naming the step. Metrics of a part of the plan Spark left out are absent: callers
read each name with a default of 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from py4j.protocol import Py4JError
from pyspark.sql import Observation

from etlc.runtime.errors import TerminalError

METRICS_TIMEOUT_S = 120.0


def observed_metrics(
    observation: Observation,
    step: str,
    timeout_s: float = METRICS_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    # pyspark exposes no timed get; the JVM Observation tells whether metrics arrived.
    java = getattr(observation, "_jo", None)
    if java is not None:
        arrived = _arrival(java)
        deadline = clock() + timeout_s
        while not arrived():
            if clock() > deadline:
                raise TerminalError(
                    f"no record counts arrived within {timeout_s:g} s: the step's data moved "
                    "outside a Spark SQL execution, so its metrics cannot be observed",
                    step,
                )
            sleep(0.02)
        if _dropped(java):
            # Spark dropped the part of the plan that carried the observation: adaptive
            # execution found its input empty at run time (an inner join with nothing on one
            # side) and replaced it with an empty relation. No record passed, so the metrics
            # are absent rather than zero; ``Observation.get`` would fail on them.
            return {}
    return dict(observation.get)


def _arrival(java: Any) -> Callable[[], bool]:
    """Whether the JVM Observation has its metrics: its future, from Spark 4.0 on. Spark 3.5
    has none; there its private ``metrics`` (an Option) is read by reflection."""
    try:
        future = java.future()
    except Py4JError:
        field = java.getClass().getDeclaredField("metrics")
        field.setAccessible(True)
        return lambda: bool(field.get(java).isDefined())
    return lambda: bool(future.isCompleted())


def _dropped(java: Any) -> bool:
    try:
        return java.getRow().schema() is None
    except Py4JError:  # Spark 3.5: an observation it dropped never arrives (the timeout ends it)
        return False
