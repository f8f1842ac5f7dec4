"""Transforms: pure functions from DataFrames to a DataFrame, built by small factories.

A transform never performs I/O, logs, collects, registers views or touches session config.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import DataFrame

Transform = Callable[..., DataFrame]
