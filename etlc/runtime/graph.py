"""What a generated driver builds: the pipeline's steps, bound to their strategies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StructType

from etlc.runtime.expectations import Expectations, Policy
from etlc.runtime.strategies import Extractor, Loader, Transform


@dataclass(frozen=True)
class DatasetSchema:
    """A dataset's Avro schema (the JSON document) and the same schema as a Spark DDL string.

    A driver holds each dataset's schema once, in its ``SCHEMAS``; the steps and the strategies
    that read or write the dataset are given that one object."""

    avro: Mapping[str, Any]
    ddl: str

    @cached_property
    def avro_json(self) -> str:
        """The Avro schema as the text Spark's from_avro/to_avro take."""
        return json.dumps(self.avro, ensure_ascii=False)

    def struct(self) -> StructType:
        return struct_from_ddl(self.ddl)


def struct_from_ddl(ddl: str) -> StructType:
    """A Spark struct from a DDL column list (needs an active SparkSession)."""
    from_ddl = getattr(StructType, "fromDDL", None)
    # pyspark 3.5 has no StructType.fromDDL: the JVM's own parser reads it, as 4.x's does.
    parsed = from_ddl(ddl) if from_ddl is not None else _jvm_struct(ddl)
    if not isinstance(parsed, StructType):  # a single bare type, never what codegen emits
        raise TypeError(f"not a column list: {ddl!r}")
    return parsed


def _jvm_struct(ddl: str) -> StructType:
    spark = SparkSession.getActiveSession()
    jvm = spark._jvm if spark is not None else None
    if jvm is None:
        raise RuntimeError("a DDL schema is parsed through the active SparkSession")
    return StructType.fromJson(
        json.loads(jvm.org.apache.spark.sql.types.StructType.fromDDL(ddl).json())
    )


@dataclass(frozen=True)
class ExtractStep:
    id: str
    extractor: Extractor
    schema: DatasetSchema
    rules: tuple[tuple[str, str], ...] = ()  # (rule name, SQL predicate true for good records)
    refresh: str | None = None  # streaming: re-read this static side every interval
    expectations: Expectations = ()  # the step's `expect` block
    on_invalid: Policy = "fail"  # what a record that breaks the schema's rules does

    @property
    def keeps_raw_text(self) -> bool:
        """Whether a record it sets aside carries the text the reader could not parse."""
        return self.on_invalid == "quarantine"


@dataclass(frozen=True)
class TransformStep:
    id: str
    inputs: tuple[str, ...]
    fn: Transform
    schema: DatasetSchema
    # The columns whose values it makes, the only ones that cross the Avro boundary (None: all).
    recheck: tuple[str, ...] | None = None
    expectations: Expectations = ()  # the step's `expect` block
    # Reads every record of its inputs (a filter, an aggregate; not a join, which may skip a
    # side found empty): validating its extracts in the load's pass checks them all.
    reads_every_record: bool = False

    @property
    def keeps_raw_text(self) -> bool:
        """A transform's records were all parsed: none carries raw text."""
        return False


# A column's source as the compiler names it: (extract id, column, OpenLineage subtype).
LineageSource = tuple[str, str, str]


@dataclass(frozen=True)
class ColumnLineage:
    """What a load writes, as its pipeline's extracts' columns, worked out by the compiler:
    ``fields`` (per column, the extract columns its values are made of: IDENTITY,
    TRANSFORMATION or AGGREGATION) and ``dataset`` (those that decide which rows there are:
    FILTER, JOIN, GROUP_BY, WINDOW). The run's lineage events name the extracts' datasets."""

    fields: Mapping[str, tuple[LineageSource, ...]] = field(default_factory=dict)
    dataset: tuple[LineageSource, ...] = ()


@dataclass(frozen=True)
class LoadStep:
    id: str
    input: str
    loader: Loader
    mode: str
    lineage: ColumnLineage | None = None  # None: a driver compiled without it
    # It writes the records its input's quarantine rules set aside, not its valid records.
    quarantined: bool = False
    # Fed by an incremental extract: the write mode of a `--full-refresh` run, which reads
    # every row again (overwrite: a rebuild, where the sink can).
    rebuild_mode: str = ""


@dataclass(frozen=True)
class PipelineGraph:
    name: str
    extracts: tuple[ExtractStep, ...]
    transforms: tuple[TransformStep, ...]  # in dependency order
    loads: tuple[LoadStep, ...]

    def made(self, dataset: str) -> ExtractStep | TransformStep:
        """The extract or transform whose output ``dataset`` is."""
        steps: tuple[ExtractStep | TransformStep, ...] = (*self.extracts, *self.transforms)
        return next(s for s in steps if s.id == dataset)

    def loaded(self) -> set[str]:
        """Ids of the datasets some load depends on; only these are ever computed."""
        return self.upstream(*(ld.input for ld in self.loads))

    def upstream(self, *datasets: str) -> set[str]:
        """``datasets`` and the ids of every dataset they are made from."""
        inputs = {t.id: t.inputs for t in self.transforms}
        needed: set[str] = set()
        pending = list(datasets)
        while pending:
            current = pending.pop()
            if current not in needed:
                needed.add(current)
                pending.extend(inputs.get(current, ()))
        return needed
