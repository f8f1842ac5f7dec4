"""Record rules: which rule, if any, each record breaks.

Rules are lowered from a dataset's Avro schema by the compiler (types, nullability, enum
symbols, logical types, declared ``etlc.rules``) as SQL predicates true for good records. A
record that a reader could not parse at all breaks the ``parse`` rule, first.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from etlc.quarantine_columns import RAW_TEXT

# Readers put a record that does not fit the schema into this column (quarantine keeps it).
CORRUPT_COLUMN = RAW_TEXT
PARSE_RULE = ("parse", f"`{CORRUPT_COLUMN}` IS NULL")
# A stream's records carry where they came from (for the halt message) and when the source
# received them (for end-to-end latency); neither is part of the dataset.
POSITION_COLUMN = "_etlc_position"
EVENT_TIME_COLUMN = "_etlc_source_time"

# Where an expectation of policy fail joins the schema's rules, its name has this prefix.
EXPECT_PREFIX = "expect:"

Rules = tuple[tuple[str, str], ...]


def with_parse(columns: Sequence[str], rules: Rules) -> Rules:
    """``rules``, after the ``parse`` rule where the reader keeps unparsable records."""
    return (PARSE_RULE, *rules) if CORRUPT_COLUMN in columns else rules


def failing(
    columns: Sequence[str], rules: Rules, *, parse: bool = True
) -> list[tuple[str, Column]]:
    """Each rule's name and a column true where a record breaks it (``parse`` first, if
    the reader keeps unparsable records, unless it is checked elsewhere)."""
    checked = with_parse(columns, rules) if parse else rules
    return [(name, ~F.expr(predicate)) for name, predicate in checked]


def first_violation(broken: Sequence[tuple[str, Column]]) -> Column:
    """The name of the first rule a record breaks, or null for a good record."""
    violation: Column = F.lit(None).cast("string")
    for name, failed in reversed(broken):
        violation = F.when(failed, F.lit(name)).otherwise(violation)
    return violation
