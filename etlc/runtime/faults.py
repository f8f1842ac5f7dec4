"""Fault injection, for testing retries through a real driver.

``ETLC_INJECT_FAULTS="extract:<step>:<n>"`` makes the first ``n`` extractions of ``<step>``
fail with a transient error, exactly as an unreachable source would. Unset, nothing changes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from etlc.connectors.base import Extractor
from etlc.runtime.errors import ConfigurationError, TransientError
from etlc.runtime.graph import PipelineGraph

ENV_VAR = "ETLC_INJECT_FAULTS"


class FlakyExtractor(Extractor):
    def __init__(self, inner: Extractor, failures: int) -> None:
        self.inner = inner
        self.remaining = failures

    def describe(self) -> dict[str, Any]:
        return self.inner.describe()

    def extract(self, spark: SparkSession) -> DataFrame:
        if self.remaining > 0:
            self.remaining -= 1
            raise TransientError(f"injected transient fault ({ENV_VAR})")
        return self.inner.extract(spark)


def inject(graph: PipelineGraph, spec: str | None) -> PipelineGraph:
    if not spec:
        return graph
    parts = spec.split(":")
    if len(parts) != 3 or parts[0] != "extract" or not parts[2].isdigit():
        raise ConfigurationError(f"{ENV_VAR} must look like extract:<step>:<count>, got {spec!r}")
    _, step_id, count = parts
    if step_id not in {e.id for e in graph.extracts}:
        raise ConfigurationError(f"{ENV_VAR}: no extract step `{step_id}`")
    extracts = tuple(
        replace(e, extractor=FlakyExtractor(e.extractor, int(count))) if e.id == step_id else e
        for e in graph.extracts
    )
    return replace(graph, extracts=extracts)
