"""A step's records checked against its rules, counted on the way by ``DataFrame.observe``.

The stage store writes every checked record (valid or not) as Avro; a single-pass run (see
:mod:`etlc.runtime.pipeline`) hands only the valid ones on to its load. Either way the counts
come from the one pass Spark makes over the records, never from an extra one.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

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
from etlc.runtime.rules import first_violation

VALID = "_etlc_valid"
VIOLATION = "_etlc_violation"
_READ = "_etlc_read"  # a metric that only makes the reader parse every column


@dataclass(frozen=True)
class StageResult:
    records: int
    invalid: int
    violations: dict[str, int]  # rule -> records failing it (a record may fail several)
    expected: ExpectationCounts = NO_COUNTS  # the warn, drop and quarantine rules' counts


@dataclass(frozen=True)
class Checked:
    """A step's records, each marked ``VALID`` or not (and with the first rule it breaks),
    counted as Spark computes them: the counts are known once a job has read them all."""

    records: DataFrame
    observation: Observation
    expected: Expectations

    def valid(self, schema: StructType) -> DataFrame:
        """The valid records, as the dataset's columns."""
        good = self.records.where(F.col(VALID))
        return good.select(*(F.col(f"`{f.name}`") for f in schema.fields))

    def result(self, step: str) -> StageResult:
        """The counts, once a job has computed the records."""
        values = observed_metrics(self.observation, step)
        values.pop(_READ, None)
        records = int(values.pop("records", 0))
        invalid = int(values.pop("invalid", 0))
        counts = ExpectationCounts.taken(self.expected, values)
        violations = {k: int(v) for k, v in values.items() if v}
        return StageResult(records, invalid, violations, counts)


def check(
    step: str,
    df: DataFrame,
    rules: tuple[tuple[str, str], ...],
    expected: Expectations = (),
    on_invalid: Policy = "fail",
    *,
    every_column: bool = False,
) -> Checked:
    """``df``'s records, each valid one once and each invalid one with the first rule it
    breaks (the schema's, then the expectations of policy fail), each one a quarantine rule
    sets aside with the first such rule, without those a drop rule leaves out; counted.
    ``every_column``: the counts read every column, so that a reader cannot leave out (and
    so never parse) one that nothing after the check uses."""
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
    # Named apart from every other observation of the plan (a step id has no colon).
    observation = Observation(f"etlc:validate:{step}")
    metrics = [
        F.count(F.lit(1)).alias("records"),
        F.count_if(F.col(VIOLATION).isNotNull()).alias("invalid"),
        *(F.count_if(failed).alias(name) for name, failed in broken),
        *expectation_metrics(expected, F.col(VALID)),
    ]
    if held:
        metrics.append(F.count_if(F.col(HELD).isNotNull()).alias(QUARANTINED))
    if every_column:
        everything = F.xxhash64(*(F.col(f"`{c}`") for c in df.columns))
        metrics.append(F.max(everything).alias(_READ))
    observed = annotated.observe(observation, *metrics)
    if any(e.policy == "drop" for e in expected):
        # An invalid or set-aside record stays (the run halts on the one, the other goes to
        # quarantine); a valid one a drop rule leaves out goes no further.
        observed = observed.where(~F.col(VALID) | kept(expected))
    return Checked(observed, observation, expected)
