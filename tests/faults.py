"""Fault injection, for testing retries and exactly-once through a real driver. Test-only.

Production drivers never load this: the tests submit it as the main file in place of a
generated driver (see ``tests/integration/conftest.py``), and it runs that driver with faults::

    spark-submit ... tests/faults.py <spec> generated/<name>.py [driver arguments]

``extract:<step>:<n>`` makes the first ``n`` extractions of ``<step>`` fail with a transient
error, exactly as an unreachable source would. ``crash-after-commit:<load step>:<batch id>``
kills the streaming driver the moment that micro-batch has committed to its sink, before Spark
records it as done: the worst moment for exactly-once. ``crash-mid-write:<load step>:<rows>``
crashes the load's database server (``scripts/services.sh crash``) from inside the write, once
the first partition has handed the sink ``<rows>`` rows: the server dies while rows are on their
way to it, and stays down until the test brings it back. ``killed-before-commit:<load step>:0``
and ``killed-after-commit:<load step>:0`` kill a batch driver right before its load writes
anything, or the moment the load (and the positions committed with it) has committed.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from etlc.runtime.errors import ConfigurationError, TransientError
from etlc.runtime.graph import PipelineGraph
from etlc.runtime.strategies import (
    BatchMarker,
    ExactlyOnceLoader,
    Extractor,
    Loader,
    LoadResult,
    PositionedLoader,
    Positions,
)

WHAT = "fault spec"
SERVICES = Path(__file__).resolve().parents[1] / "scripts" / "services.sh"
# The names scripts/services.sh gives the servers behind each database load.
SERVICE = {"postgres": "postgres", "mysql": "mariadb"}


class FlakyExtractor(Extractor):
    def __init__(self, inner: Extractor, failures: int) -> None:
        self.inner = inner
        self.remaining = failures

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def extract(self, spark: SparkSession) -> DataFrame:
        if self.remaining > 0:
            self.remaining -= 1
            raise TransientError("injected transient fault")
        return self.inner.extract(spark)


class CrashAfterCommit(Loader, ExactlyOnceLoader):
    modes = frozenset({"append", "overwrite", "upsert"})  # the inner loader decides

    def __init__(self, inner: Loader, batch_id: int) -> None:
        if not isinstance(inner, ExactlyOnceLoader):
            raise ConfigurationError(f"{WHAT}: the load does not commit batches with markers")
        self.inner = inner
        self.batch_id = batch_id

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        return self.inner.load(df, mode)

    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        assert isinstance(self.inner, ExactlyOnceLoader)
        result = self.inner.load_batch(df, mode, marker)
        if result is not None and marker.batch_id == self.batch_id:
            sys.stdout.flush()
            os._exit(137)  # as SIGKILL would: no cleanup, no checkpoint commit
        return result


class Killed(Loader, PositionedLoader):
    """Kills the driver, as SIGKILL would, before or after its database load commits."""

    modes = frozenset({"append", "overwrite", "upsert"})  # the inner loader decides

    def __init__(self, inner: Loader, after: bool) -> None:
        if not isinstance(inner, PositionedLoader):
            raise ConfigurationError(f"{WHAT}: the load does not commit positions with its rows")
        self.inner = inner
        self.after = after

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        return self.killed(lambda: self.inner.load(df, mode))

    def positions(self, spark: SparkSession, pipeline: str, load: str) -> dict[str, int]:
        assert isinstance(self.inner, PositionedLoader)
        return self.inner.positions(spark, pipeline, load)

    def replace_positions(self, spark: SparkSession, positions: Positions) -> None:
        assert isinstance(self.inner, PositionedLoader)
        self.inner.replace_positions(spark, positions)

    def load_positioned(self, df: DataFrame, mode: str, positions: Positions) -> LoadResult:
        assert isinstance(self.inner, PositionedLoader)
        inner = self.inner
        return self.killed(lambda: inner.load_positioned(df, mode, positions))

    def killed(self, load: Any) -> LoadResult:
        if self.after:
            load()
        sys.stdout.flush()
        os._exit(137)


class CrashMidWrite(Loader):
    modes = frozenset({"append", "overwrite", "upsert"})  # the inner loader decides

    def __init__(self, inner: Loader, rows: int) -> None:
        system = inner.describe().get("system")
        if system not in SERVICE:
            raise ConfigurationError(f"{WHAT}: crash-mid-write needs a database load, not {system}")
        self.inner = inner
        self.rows = rows
        self.service = SERVICE[system]

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        return self.inner.load(self.crashing(df), mode)

    def crashing(self, df: DataFrame) -> DataFrame:
        """``df``, whose first partition crashes the server once it has yielded ``rows`` rows.

        The rows pass through a Python function only here, in a test: what the sink has been
        handed by then is on the wire or in its staging table when the server dies."""
        after, command = self.rows, ["bash", str(SERVICES), "crash", self.service]

        def rows(index: int, partition: Iterable[Any]) -> Iterator[Any]:
            for n, row in enumerate(partition):
                if index == 0 and n == after:
                    # Not checked: a later attempt may find the server already down.
                    subprocess.run(command, capture_output=True, check=False, timeout=120)
                yield row

        return df.sparkSession.createDataFrame(df.rdd.mapPartitionsWithIndex(rows), df.schema)


def inject(graph: PipelineGraph, spec: str | None) -> PipelineGraph:
    if not spec:
        return graph
    parts = spec.split(":")
    wrappers: dict[str, Any] = {
        "crash-after-commit": CrashAfterCommit,
        "crash-mid-write": CrashMidWrite,
        "killed-before-commit": lambda inner, _: Killed(inner, after=False),
        "killed-after-commit": lambda inner, _: Killed(inner, after=True),
    }
    if len(parts) != 3 or parts[0] not in {"extract", *wrappers} or not parts[2].isdigit():
        raise ConfigurationError(
            f"{WHAT} must look like extract:<step>:<count>, "
            f"crash-after-commit:<load step>:<batch id>, crash-mid-write:<load step>:<rows>, "
            f"killed-before-commit:<load step>:0 or killed-after-commit:<load step>:0, "
            f"got {spec!r}"
        )
    kind, step_id, number = parts
    if kind in wrappers:
        if step_id not in {ld.id for ld in graph.loads}:
            raise ConfigurationError(f"{WHAT}: no load step `{step_id}`")
        wrap = wrappers[kind]
        loads = tuple(
            replace(ld, loader=wrap(ld.loader, int(number))) if ld.id == step_id else ld
            for ld in graph.loads
        )
        return replace(graph, loads=loads)
    if step_id not in {e.id for e in graph.extracts}:
        raise ConfigurationError(f"{WHAT}: no extract step `{step_id}`")
    extracts = tuple(
        replace(e, extractor=FlakyExtractor(e.extractor, int(number))) if e.id == step_id else e
        for e in graph.extracts
    )
    return replace(graph, extracts=extracts)


def main(argv: list[str]) -> int:
    """``<spec> <driver.py> [driver arguments]``: the driver's ``main`` with the faults."""
    spec, driver, *rest = argv
    loaded = importlib.util.spec_from_file_location("etlc_driver", driver)
    assert loaded is not None and loaded.loader is not None, driver
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    code: int = module.main(rest, wrap=lambda graph: inject(graph, spec))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
