"""Expectations at run time: the rules of a step's ``expect`` block, enforced by their policy
and counted in the pass that makes the data, never in a job of their own.

- ``fail``: on an extract, the rule is checked with the schema's rules as the stage is written
  (counts and a sample, then the run halts before any transform); on a transform, the first
  record that breaks it fails the job computing it (:mod:`etlc.runtime.halt`), so nothing of
  that load commits.
- ``warn``: the records that break it are counted and kept.
- ``drop``: they are counted and left out of the step's output.
- ``quarantine``: they are counted, left out, and written with the rule they broke to
  ``etlc.quarantine_dir`` (:mod:`etlc.runtime.quarantine`). In batch, like fail rules, they are
  checked where the step's output is written to the stage store: that write keeps them apart.
  In a stream, they are marked (``HELD``) and split off: the loads' queries read the records
  no quarantine rule holds, a query of its own writes the others.

Counts are ``DataFrame.observe`` aggregates beside the step's own record count: a named
observation in a stream (read from each micro-batch's progress), an ``Observation`` in batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.halt import halt_where, record_text
from etlc.runtime.rules import EXPECT_PREFIX, Rules, failing, first_violation, with_parse

Policy = Literal["fail", "warn", "drop", "quarantine"]
DROPPED = "etlc_dropped"  # the observed count of records a drop rule left out
QUARANTINED = "etlc_quarantined"  # ... and of those a quarantine rule set aside
_BROKEN = "etlc_expect_"  # + the rule's name: the records breaking it
HELD = "_etlc_quarantine"  # the first quarantine rule a valid record breaks


@dataclass(frozen=True)
class Expectation:
    """A rule of a step's ``expect`` block, as the compiler lowered it: ``check`` is checked
    Spark SQL, true for a good record and never null (``(condition) IS NOT FALSE``)."""

    name: str
    check: str
    policy: Policy = "fail"

    def broken(self) -> Column:
        return ~F.expr(self.check)


Expectations = tuple[Expectation, ...]


def in_force(
    columns: Sequence[str], rules: Rules, expected: Expectations, on_invalid: Policy
) -> Expectations:
    """A step's expectations and, where an extract's ``on_invalid`` gives the schema's rules
    (``parse`` first, where there is one) a policy other than fail, those rules too."""
    if on_invalid == "fail":
        return expected
    schema = (Expectation(name, check, on_invalid) for name, check in with_parse(columns, rules))
    return (*schema, *expected)


def halting(
    columns: Sequence[str], rules: Rules, expected: Expectations, on_invalid: Policy
) -> list[tuple[str, Column]]:
    """What stops a run, each rule's name and a column true where a record breaks it: the
    schema's rules unless ``on_invalid`` gives them another policy, then the fail rules of
    ``expected`` (the expectations :func:`in_force`)."""
    schema = rules if on_invalid == "fail" else ()
    return failing(columns, (*schema, *fail_rules(expected)), parse=on_invalid == "fail")


def fail_rules(expected: Expectations) -> Rules:
    """The rules of policy fail, named as they join the schema's rules (``expect:<name>``)."""
    return tuple((f"{EXPECT_PREFIX}{e.name}", e.check) for e in expected if e.policy == "fail")


def quarantine_rules(expected: Expectations) -> list[tuple[str, Column]]:
    """The rules of policy quarantine: each one's name as a record's violation, and a column
    true where a record breaks it."""
    return [(f"{EXPECT_PREFIX}{e.name}", e.broken()) for e in expected if e.policy == "quarantine"]


def staged(expected: Expectations) -> bool:
    """Whether a transform's output must be written to the stage store before any load: its
    fail and quarantine rules are checked there."""
    return any(e.policy in ("fail", "quarantine") for e in expected)


def metrics(expected: Expectations, eligible: Column | None = None) -> list[Column]:
    """The aggregates that count the records breaking each counted rule (warn, drop,
    quarantine), and those a drop rule left out among the ``eligible`` ones (all, by
    default); none when no rule is counted."""
    counted = [e for e in expected if e.policy != "fail"]
    if not counted:
        return []
    # By name: the schema's rules as an extract's `on_invalid` ones (`not_null:id`) and the
    # definition's (identifiers) never share one.
    columns = [F.count_if(e.broken()).alias(f"{_BROKEN}{e.name}") for e in counted]
    left_out = ~kept(expected) if eligible is None else ~kept(expected) & eligible
    return [*columns, F.count_if(left_out).alias(DROPPED)]


def kept(expected: Expectations) -> Column:
    """True for a record no drop rule leaves out."""
    keep: Column = F.lit(True)
    for e in expected:
        if e.policy == "drop":
            keep = keep & F.expr(e.check)
    return keep


def enforce(df: DataFrame, step: str, expected: Expectations, *, halt: bool = True) -> DataFrame:
    """``df`` halting at the first record that breaks a fail rule (unless ``halt`` is off:
    a stream's source checks them with the schema's rules), without the records a drop rule
    leaves out nor those marked ``HELD`` for quarantine. (Observe the counts on ``df`` before,
    where every record still is.)"""
    if quarantine_rules(expected) and HELD not in df.columns:
        # Batch stages such a step; a stream marks its records (observed_expectations).
        raise ConfigurationError(f"step `{step}`: its quarantine rules were never applied")
    out = _halting(df, step, expected) if halt else df
    if HELD in df.columns:
        out = out.where(F.col(HELD).isNull()).drop(HELD)
    if any(e.policy == "drop" for e in expected):
        out = out.where(kept(expected))
    return out


def _halting(df: DataFrame, step: str, expected: Expectations) -> DataFrame:
    broken = [(name, ~F.expr(check)) for name, check in fail_rules(expected)]
    return halt_where(df, step, broken, detail=record_text(df))  # the record: the sample


STREAM_METRIC = "etlc_expectations_"  # + the step's id: a micro-batch's counts, observed


def observed_expectations(
    df: DataFrame, step: str, expected: Expectations, *, halt: bool = True
) -> tuple[DataFrame, DataFrame | None]:
    """A stream's ``df`` with its expectations enforced, their counts observed per
    micro-batch under ``STREAM_METRIC + step`` (read from the batch's progress); and the
    records its quarantine rules set aside, each with the first it broke in ``HELD`` (None
    without such rules). Each query reading either one computes the marks again."""
    if not expected:
        return df, None
    held = quarantine_rules(expected)
    marked = df.withColumn(HELD, first_violation(held)) if held else df
    eligible = F.col(HELD).isNull() if held else None
    counts = metrics(expected, eligible) or [F.count(F.lit(1)).alias("records")]
    if held:
        counts.append(F.count_if(F.col(HELD).isNotNull()).alias(QUARANTINED))
    # The observation is also a barrier: Spark treats ``raise_error`` as deterministic and
    # would push the halting filter below a join, onto records the join leaves out.
    observed = marked.observe(f"{STREAM_METRIC}{step}", *counts)
    checked = _halting(observed, step, expected) if halt else observed
    aside = checked.where(F.col(HELD).isNotNull()) if held else None
    return enforce(checked, step, expected, halt=False), aside


@dataclass(frozen=True)
class ExpectationCounts:
    """What a step's counted rules found: records breaking each (a record may break several)
    and those left out."""

    broken: Mapping[str, tuple[Policy, int]]  # rule -> (policy, records breaking it)
    dropped: int
    quarantined: int = 0

    @classmethod
    def of(cls, expected: Expectations, observed: Mapping[str, Any]) -> ExpectationCounts:
        broken = {
            e.name: (e.policy, int(observed.get(f"{_BROKEN}{e.name}") or 0))
            for e in expected
            if e.policy != "fail"
        }
        left_out = int(observed.get(DROPPED) or 0)
        return cls(broken, left_out, int(observed.get(QUARANTINED) or 0))

    @classmethod
    def taken(cls, expected: Expectations, observed: dict[str, Any]) -> ExpectationCounts:
        """The counts in ``observed``, removed from it (it also holds other metrics)."""
        counts = cls.of(expected, observed)
        for name in [n for n in observed if n in (DROPPED, QUARANTINED) or n.startswith(_BROKEN)]:
            del observed[name]
        return counts

    @property
    def left_out(self) -> int:
        """Records not in the step's output: dropped or set aside in quarantine."""
        return self.dropped + self.quarantined

    def __add__(self, other: ExpectationCounts) -> ExpectationCounts:
        broken = dict(self.broken)
        for name, (policy, n) in other.broken.items():
            broken[name] = (policy, broken.get(name, (policy, 0))[1] + n)
        return ExpectationCounts(
            broken, self.dropped + other.dropped, self.quarantined + other.quarantined
        )

    def as_log(self) -> dict[str, dict[str, Any]]:
        """Per rule, its policy and the records that broke it: the log lines' form."""
        return {name: {"policy": p, "failed": n} for name, (p, n) in self.broken.items()}

    def fields(self) -> dict[str, Any]:
        """What a step's log line and report say of them: nothing for a step without counted
        rules; ``dropped`` where a drop rule is."""
        if not self.broken:
            return {}
        out: dict[str, Any] = {"expectations": self.as_log()}
        policies = {p for p, _ in self.broken.values()}
        if "drop" in policies:
            out["dropped"] = self.dropped
        if "quarantine" in policies:
            out["quarantined"] = self.quarantined
        return out


NO_COUNTS = ExpectationCounts({}, 0)


def schema_only(violations: Mapping[str, int]) -> bool:
    """Whether only the schema's rules were broken, no expectation of policy fail."""
    return not any(rule.startswith(EXPECT_PREFIX) for rule in violations)


def counted(expected: Sequence[Expectation]) -> bool:
    """Whether any rule is counted (warn or drop): an observation is worth adding."""
    return any(e.policy != "fail" for e in expected)
