"""Records a quarantine expectation set aside, written where an engineer looks for them.

Every record has the dataset's columns (with the raw text and position of a record the reader
could not parse, where the source keeps them), then ``_etlc_rule`` (the first quarantine rule
the record broke), ``_etlc_step`` and ``_etlc_run_id``, as Avro.

- In batch, and for a stream's static side, each step's go to
  ``<quarantine_dir>/<pipeline>/<step>/<run id>/`` once the run's loads have committed (a
  static side: once its snapshot is read). A run's folder is replaced whole, so a retried
  attempt writes it again instead of adding to it; ``<quarantine_dir>/<pipeline>/<step>/*``
  reads every run's.
- In a stream, a query of their own appends each micro-batch's to
  ``<quarantine_dir>/<pipeline>/<step>/`` through Spark's file sink, exactly once: its commit
  log (``_spark_metadata``) names the files of committed batches, and reading the folder (not
  its files) reads only those. Its checkpoint is ``<checkpoint_dir>/<pipeline>/quarantine.<step>``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.quarantine_columns import RAW_TEXT, RULE, RUN_ID, STEP, load_columns
from etlc.runtime.rules import EXPECT_PREFIX


def quarantine_path(root: str, pipeline: str, step: str, run_id: str) -> str:
    """Where one run's records of one step go (pipeline and step are identifiers, and a run
    id holds letters, digits and ``._+=-`` only: none can leave the folder)."""
    return f"{root.rstrip('/')}/{pipeline}/{step}/{run_id}"


def stream_quarantine_path(root: str, pipeline: str, step: str) -> str:
    """Where a streamed step's records go, every run's (Spark's file sink keeps one folder)."""
    return f"{root.rstrip('/')}/{pipeline}/{step}"


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
