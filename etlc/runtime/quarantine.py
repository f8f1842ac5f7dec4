"""Records a quarantine expectation set aside, written where an engineer looks for them.

Each step's go, as Avro, to ``<quarantine_dir>/<pipeline>/<step>/<run id>/`` once the run's
loads have committed: the dataset's columns (with the raw text and position of a record the
reader could not parse, where the source keeps them), then ``_etlc_rule`` (the first
quarantine rule the record broke), ``_etlc_step`` and ``_etlc_run_id``. A run's folder is
replaced whole, so a retried attempt writes it again instead of adding to it;
``<quarantine_dir>/<pipeline>/<step>/*`` reads every run's.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from etlc.runtime.rules import EXPECT_PREFIX

RULE_COLUMN = "_etlc_rule"
STEP_COLUMN = "_etlc_step"
RUN_COLUMN = "_etlc_run_id"


def quarantine_path(root: str, pipeline: str, step: str, run_id: str) -> str:
    """Where one run's records of one step go (pipeline and step are identifiers, and a run
    id holds letters, digits and ``._+=-`` only: none can leave the folder)."""
    return f"{root.rstrip('/')}/{pipeline}/{step}/{run_id}"


def write_quarantine(records: DataFrame, rule: str, path: str, step: str, run_id: str) -> None:
    """``records`` (whose ``rule`` column names the rule each broke, as ``expect:<name>``)
    written to ``path`` as Avro, with the rule's bare name, the step and the run."""
    columns = [F.col(f"`{c}`") for c in records.columns if c != rule]
    bare = F.regexp_replace(F.col(f"`{rule}`"), f"^{EXPECT_PREFIX}", "")
    out = records.select(
        *columns,
        bare.alias(RULE_COLUMN),
        F.lit(step).alias(STEP_COLUMN),
        F.lit(run_id).alias(RUN_COLUMN),
    )
    out.write.format("avro").mode("overwrite").save(path)
