"""The stage store: each extract's output, validated, lands here as Avro files.

One pass over the source does everything: each record is checked against the rules lowered
from its Avro schema, the per-rule violation counts are observed on the way (no extra pass),
and the records are written partitioned by validity. Transforms then read only the valid
partition, so no transform ever runs on data that failed validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from etlc.runtime.errors import NoSpaceError, no_space_left, summary
from etlc.runtime.expectations import (
    HELD,
    NO_COUNTS,
    QUARANTINED,
    ExpectationCounts,
    Expectations,
    Policy,
    halting,
    in_force,
    kept,
    quarantine_rules,
)
from etlc.runtime.expectations import metrics as expectation_metrics
from etlc.runtime.observed import observed_metrics
from etlc.runtime.rules import CORRUPT_COLUMN, POSITION_COLUMN, first_violation
from etlc.runtime.session import session_conf

VALID = "_etlc_valid"
VIOLATION = "_etlc_violation"
# Without concurrent writers Spark sorts every task's records by the partition column before a
# partitioned write; with one writer per validity value open at once it streams them straight
# out (measured: a 25% shorter write of 8M records on 2 cores).
_WRITERS = "spark.sql.maxConcurrentOutputFileWriters"


@dataclass(frozen=True)
class StageResult:
    records: int
    invalid: int
    violations: dict[str, int]  # rule -> records failing it (a record may fail several)
    expected: ExpectationCounts = NO_COUNTS  # the warn, drop and quarantine rules' counts


class StageStore:
    def __init__(self, spark: SparkSession, root: str, run_id: str, attempt: int) -> None:
        self.spark = spark
        self.root = root
        self.base = f"{root.rstrip('/')}/{run_id}/attempt-{attempt}"

    def path(self, step: str) -> str:
        return f"{self.base}/{step}"

    def write_validated(
        self,
        step: str,
        df: DataFrame,
        rules: tuple[tuple[str, str], ...],
        expected: Expectations = (),
        on_invalid: Policy = "fail",
    ) -> StageResult:
        """The records written, each valid one once and each invalid one with the first rule
        it breaks (the schema's, then the expectations of policy fail), each one a quarantine
        rule sets aside with the first such rule, without those a drop rule leaves out; counts
        observed on the way."""
        expected = in_force(df.columns, rules, expected, on_invalid)
        broken = halting(df.columns, rules, expected, on_invalid)
        annotated = df.withColumn(VIOLATION, first_violation(broken))
        held = quarantine_rules(expected)
        if held:
            # Set aside only if valid: a record that also breaks a fail rule halts the run.
            aside = F.when(F.col(VIOLATION).isNull(), first_violation(held))
            annotated = annotated.withColumn(HELD, aside)
        valid = F.col(VIOLATION).isNull() & (F.col(HELD).isNull() if held else F.lit(True))
        annotated = annotated.withColumn(VALID, valid)
        observation = Observation(f"etlc_validate_{step}")
        metrics = [
            F.count(F.lit(1)).alias("records"),
            F.count_if(F.col(VIOLATION).isNotNull()).alias("invalid"),
            *(F.count_if(failed).alias(name) for name, failed in broken),
            *expectation_metrics(expected, F.col(VALID)),
        ]
        if held:
            metrics.append(F.count_if(F.col(HELD).isNotNull()).alias(QUARANTINED))
        observed = annotated.observe(observation, *metrics)
        if any(e.policy == "drop" for e in expected):
            # An invalid or set-aside record stays (the run halts on the one, the other goes
            # to quarantine); a valid one a drop rule leaves out is never written.
            observed = observed.where(~F.col(VALID) | kept(expected))
        with session_conf(self.spark, {_WRITERS: "2"}):
            writer = observed.write.format("avro").mode("overwrite").partitionBy(VALID)
            try:
                writer.save(self.path(step))
            except Exception as exc:
                if not no_space_left(exc):
                    raise
                raise NoSpaceError(
                    f"the stage directory {self.root} (etlc.stage_dir) is full: no space left "
                    "for the extract's records; nothing was loaded. Free space there or point "
                    "etlc.stage_dir at a larger filesystem",
                    step,
                ) from exc
        values = observed_metrics(observation, step)
        records = int(values.pop("records", 0))
        invalid = int(values.pop("invalid", 0))
        counts = ExpectationCounts.taken(expected, values)
        violations = {k: int(v) for k, v in values.items() if v}
        return StageResult(records, invalid, violations, counts)

    def read_valid(self, step: str, schema: StructType) -> DataFrame:
        path = f"{self.path(step)}/{VALID}=true"
        if not self._exists(path):
            return self.spark.createDataFrame([], schema)
        df = self.spark.read.format("avro").load(path)
        return df.select(*(F.col(f"`{f.name}`") for f in schema.fields))

    def sample_invalid(self, step: str, size: int) -> list[dict[str, Any]]:
        """A bounded sample of offending records (with the rule each one failed)."""
        path = f"{self.path(step)}/{VALID}=false"
        if size <= 0 or not self._exists(path):
            return []
        df = self.spark.read.format("avro").load(path)
        if HELD in df.columns:  # records set aside for quarantine are not invalid
            df = df.where(F.col(VIOLATION).isNotNull()).drop(HELD)
        rows = df.limit(size).collect()
        return [row.asDict(recursive=True) for row in rows]

    def set_aside(self, step: str, schema: StructType) -> DataFrame:
        """The records a quarantine rule set aside, with the rule (``HELD``: its name as in
        the violations, ``expect:<name>``)."""
        df = self.spark.read.format("avro").load(f"{self.path(step)}/{VALID}=false")
        columns = [F.col(f"`{f.name}`") for f in schema.fields]
        # A record the reader could not parse keeps its text and where it came from: its
        # fields are null, and the text is what an engineer fixes and replays.
        columns += [F.col(c) for c in (CORRUPT_COLUMN, POSITION_COLUMN) if c in df.columns]
        return df.where(F.col(HELD).isNotNull()).select(*columns, F.col(HELD))

    def _exists(self, path: str) -> bool:
        jvm = self.spark.sparkContext._jvm
        assert jvm is not None
        hpath = jvm.org.apache.hadoop.fs.Path(path)
        fs = hpath.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        return bool(fs.exists(hpath))

    def cleanup(self) -> str | None:
        """Remove this attempt's stage; None when done, else why not. It never raises: it
        runs in the pipelines' ``finally`` blocks, where it must not replace the run's own
        outcome (the caller logs the reason)."""
        # Through Hadoop's file system, as Spark wrote it: a path without a scheme is on the
        # cluster's default file system (HDFS on YARN), not necessarily on the driver's disk.
        try:
            jvm = self.spark.sparkContext._jvm
            assert jvm is not None
            hpath = jvm.org.apache.hadoop.fs.Path(self.base)
            conf = self.spark.sparkContext._jsc.hadoopConfiguration()
            hpath.getFileSystem(conf).delete(hpath, True)
        except Exception as exc:
            return summary(exc)
        return None
