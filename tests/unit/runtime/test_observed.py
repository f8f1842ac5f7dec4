"""Observed metrics: read when they arrive, an error naming the step when they never do."""

from __future__ import annotations

from typing import Any

import pytest
from pyspark.sql import Observation
from pyspark.sql import functions as F

from etlc.runtime.errors import TerminalError
from etlc.runtime.observed import observed_metrics


def test_metrics_of_a_finished_action(spark: Any) -> None:
    observation = Observation("test_finished")
    spark.range(7).observe(observation, F.count(F.lit(1)).alias("records")).collect()
    assert observed_metrics(observation, "s") == {"records": 7}


def test_metrics_that_never_arrive_end_in_an_error_not_a_hang(spark: Any) -> None:
    observation = Observation("test_never")
    spark.range(3).observe(observation, F.count(F.lit(1)).alias("records"))  # no action runs
    ticks = iter(range(1000))
    with pytest.raises(TerminalError, match="no record counts arrived") as err:
        observed_metrics(
            observation,
            "load_x",
            timeout_s=5,
            clock=lambda: float(next(ticks)),
            sleep=lambda s: None,
        )
    assert err.value.step == "load_x"


class _Done:
    def isCompleted(self) -> bool:  # noqa: N802 - the JVM future's method
        return True


class _EmptyRow:
    def schema(self) -> None:
        return None


class _LeftOut:
    """The JVM side of an observation whose part of the plan Spark replaced: its execution
    ended (the future completed) with a row that has no schema and no values."""

    def future(self) -> _Done:
        return _Done()

    def getRow(self) -> _EmptyRow:  # noqa: N802 - the JVM method
        return _EmptyRow()


def test_an_observation_spark_left_out_of_the_plan_reads_as_no_metrics() -> None:
    # Observation.get would fail on that row with a JVM AssertionError (seen when adaptive
    # execution found a join's input empty: the example test of an order without customer).
    observation = Observation("test_left_out")
    observation._jo = _LeftOut()
    assert observed_metrics(observation, "enriched") == {}
