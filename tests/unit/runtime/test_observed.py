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
