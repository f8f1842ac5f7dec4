"""Halting a Spark job at the first record that breaks a rule of policy ``fail``.

Where no pass of its own counts the records before anything is written (a stream's
micro-batch; a transform's output, computed inside its load's write), a record that breaks such
a rule fails the job it is computed in: a filter calls ``raise_error`` with the step, the rule,
where the record came from if that is known, and a detail. The load's write, atomic, never
commits; the driver reads the failure back from the error's text (:func:`halted`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from etlc.runtime.errors import ValidationFailedError
from etlc.runtime.rules import CORRUPT_COLUMN, EXPECT_PREFIX, PARSE_RULE, first_violation

HALT = "ETLC_INVALID_RECORD"
# Strict: the failed query's text also quotes the plan, whose filter holds the unfilled template.
_HALTED = re.compile(
    HALT + r' (\{"step": "[^"]*", "rule": "[^"]*", "at": "[^"]*", "detail": "[^"]*"\})END'
)


def _plain(value: Column) -> Column:
    """``value`` as text that cannot end the JSON string it is put in."""
    return F.translate(F.coalesce(value.cast("string"), F.lit("")), '"\\', "'/")


def record_text(df: DataFrame) -> Column:
    """A record of ``df`` as JSON (etlc's own columns left out), bounded: a failure's sample."""
    own = [F.col(f"`{c}`") for c in df.columns if not c.startswith("_etlc_")]
    return F.substring(F.to_json(F.struct(*own)), 1, 2000)


def halt_where(
    df: DataFrame,
    step: str,
    broken: Sequence[tuple[str, Column]],
    at: Column | None = None,
    detail: Column | None = None,
) -> DataFrame:
    """``df`` that fails its job at the first record breaking one of ``broken`` (each rule's
    name and a column true where a record breaks it)."""
    if not broken:
        return df
    violation = first_violation(broken)
    fields = [
        F.lit(f'{HALT} {{"step": {json.dumps(step)}, "rule": "'),
        _plain(violation),
        F.lit('", "at": "'),
        _plain(at) if at is not None else F.lit(""),
        F.lit('", "detail": "'),
        _plain(detail) if detail is not None else F.lit(""),
        F.lit('"}END'),
    ]
    # A filter, not a projected column: the optimizer may prune a column nobody reads.
    ok = F.when(violation.isNull(), F.lit(True)).otherwise(F.raise_error(F.concat(*fields)))
    return df.where(ok)


def halted(exc: BaseException) -> ValidationFailedError | None:
    """The validation failure a job died of, read back from its error text (or a cause's: a
    loader may wrap the job's error in its own)."""
    match = None
    current: BaseException | None = exc
    for _ in range(8):
        if current is None or match is not None:
            break
        match = _HALTED.search(str(current))
        current = current.__cause__ or current.__context__
    if match is None:
        return None
    found = json.loads(match.group(1), strict=False)  # a detail may hold control characters
    rule, at = str(found["rule"]), str(found["at"])
    where = f" at {at}" if at else ""
    if rule.startswith(EXPECT_PREFIX):
        message = f"a record{where} breaks the expectation `{rule[len(EXPECT_PREFIX) :]}`"
    else:
        message = f"a record{where} violates the schema: {rule}"
    # A record that could not be parsed is its raw text; any other is its values as JSON.
    detail = {CORRUPT_COLUMN if rule == PARSE_RULE[0] else "record": found["detail"]}
    sample = [{"_etlc_violation": rule, **({"position": at} if at else {}), **detail}]
    return ValidationFailedError(message, str(found["step"]), {rule: 1}, sample)
