"""Records a quarantine expectation set aside, written where an engineer looks for them.

Every record has the dataset's columns (with the raw text and position of a record the reader
could not parse, where the source keeps them), then ``_etlc_rule`` (the first quarantine rule
the record broke), ``_etlc_step`` and ``_etlc_run_id``, as Avro.

- In batch, and for a stream's static side, each step's go to
  ``<quarantine_dir>/<pipeline>/<step>/<run id>/`` once the run's loads have committed (a
  static side: once its snapshot is read). A run's folder is replaced whole, so a retried
  attempt writes it again instead of adding to it; ``<quarantine_dir>/<pipeline>/<step>/*``
  reads every run's.
- In a stream, a query of their own writes each micro-batch's that set any aside to
  ``<quarantine_dir>/<pipeline>/<step>/epoch=<epoch>/batch=<id>/``, replaced whole when a
  restart replays the batch: exactly once per micro-batch. The epoch is the query's id, kept
  by its checkpoint (``<checkpoint_dir>/<pipeline>/quarantine.<step>``) and new for a fresh
  one, so a deleted checkpoint never makes a batch id look written already. Reading the
  step's folder reads ``epoch`` and ``batch`` as columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from etlc.quarantine_columns import ADDED, RAW_TEXT, RULE, RUN_ID, STEP, load_columns
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.observed import observed_metrics
from etlc.runtime.rules import EXPECT_PREFIX
from etlc.runtime.strategies import BatchMarker, ExactlyOnceLoader, Loader, LoadResult


def quarantine_path(root: str, pipeline: str, step: str, run_id: str) -> str:
    """Where one run's records of one step go (pipeline and step are identifiers, and a run
    id holds letters, digits and ``._+=-`` only: none can leave the folder)."""
    return f"{root.rstrip('/')}/{pipeline}/{step}/{run_id}"


def stream_quarantine_path(root: str, pipeline: str, step: str) -> str:
    """Where a streamed step's records go, every run's, in a folder per micro-batch."""
    return f"{root.rstrip('/')}/{pipeline}/{step}"


class QuarantineFolder(Loader, ExactlyOnceLoader):
    """A streamed step's records set aside, written micro-batch by micro-batch."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        raise ConfigurationError("a stream's quarantine folder is written per micro-batch")

    def load_batch(self, df: DataFrame, mode: str, marker: BatchMarker) -> LoadResult | None:
        """The batch's records in its own folder, replacing a replayed batch's. A batch that
        set nothing aside (most of them) leaves no folder: its records are counted as they
        are written, and the folder of none is removed."""
        path = f"{self.folder}/epoch={marker.epoch}/batch={marker.batch_id}"
        written = Observation(f"etlc_quarantine_{marker.batch_id}")
        df.observe(written, F.count(F.lit(1)).alias("records")).write.format("avro").mode(
            "overwrite"
        ).save(path)
        if not observed_metrics(written, self.folder).get("records"):
            remove(df.sparkSession, path)
        return LoadResult()

    def describe(self) -> dict[str, Any]:
        return {"path": self.folder}


def quarantined(records: DataFrame, rule: str, step: str, run_id: str) -> DataFrame:
    """``records`` (whose ``rule`` column names the rule each broke, as ``expect:<name>``)
    as they are written: with the rule's bare name, the step and the run."""
    columns = [F.col(f"`{c}`") for c in records.columns if c != rule]
    bare = F.regexp_replace(F.col(f"`{rule}`"), f"^{EXPECT_PREFIX}", "")
    return records.select(
        *columns,
        bare.alias(RULE),
        F.lit(step).alias(STEP),
        F.lit(run_id).alias(RUN_ID),
    )


def write_quarantine(records: DataFrame, rule: str, path: str, step: str, run_id: str) -> None:
    """``records`` written to ``path`` as Avro, replacing what an earlier attempt wrote."""
    out = quarantined(records, rule, step, run_id)
    out.write.format("avro").mode("overwrite").save(path)


def remove(spark: SparkSession, path: str) -> None:
    """``path`` and what it holds, through Hadoop's file system (any scheme Spark writes)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hpath, True)


def for_load(
    records: DataFrame, rule: str, step: str, run_id: str, *, columns: Sequence[str], raw_text: bool
) -> DataFrame:
    """``records`` set aside as a quarantined load reads them: ``columns`` (the step's own),
    the raw text of a record the reader could not parse where the step keeps it (null where
    the source gave none), then the rule, step and run (``load_columns``)."""
    out = quarantined(records, rule, step, run_id)
    if raw_text and RAW_TEXT not in out.columns:
        out = out.withColumn(RAW_TEXT, F.lit(None).cast("string"))
    return out.select(*(F.col(f"`{c}`") for c in load_columns(tuple(columns), raw_text)))


def quarantined_struct(struct: StructType, *, raw_text: bool) -> StructType:
    """What a quarantined load reads of a step whose output is ``struct`` (``for_load``)."""
    own = {f.name: f.dataType for f in struct.fields}
    added = {c: StringType() for c in (RAW_TEXT, RULE, STEP, RUN_ID)}
    columns = load_columns(tuple(own), raw_text)
    return StructType([StructField(c, own.get(c) or added[c], c not in ADDED) for c in columns])
