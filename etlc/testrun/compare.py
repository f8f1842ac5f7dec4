"""A dataset's rows against a test's expected rows: a multiset comparison, and a diff.

Both sides are Spark DataFrames of the dataset's own types (the expected rows are parsed with
its schema), so decimals, timestamps and dates compare by value, and ``exceptAll`` both ways
finds what is missing and what is extra, duplicates counted. Only the differences reach
Python, at most ``SHOWN`` of each, to be written out: a missing and an extra row with the same
key become one changed row that names the columns that differ.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from etlc.runtime.rules import CORRUPT_COLUMN

SHOWN = 20  # differences of each kind written out per dataset


class ExpectedRowsError(Exception):
    """Expected rows that do not fit the dataset's types (the test file's mistake)."""


def expected_frame(
    spark: SparkSession, path: str, struct: StructType, columns: Sequence[str]
) -> DataFrame:
    """The expected rows (JSON lines) as a DataFrame of the dataset's types for ``columns``."""
    schema = StructType([struct[c] for c in columns]).add(CORRUPT_COLUMN, "string")
    frame = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT_COLUMN)
        .json(path)
    )
    # Cached: Spark refuses a query over a raw JSON file that reads only its corrupt column.
    frame = frame.cache()
    bad = frame.where(F.col(CORRUPT_COLUMN).isNotNull()).select(CORRUPT_COLUMN).limit(1).collect()
    if bad:
        raise ExpectedRowsError(f"an expected row does not fit the dataset's types: {bad[0][0]}")
    return frame.drop(CORRUPT_COLUMN)


def differences(
    dataset: str, actual: DataFrame, expected: DataFrame, key: Sequence[str]
) -> list[str]:
    """Lines describing how ``actual`` differs from ``expected`` (none: they are equal as
    multisets of rows), on ``expected``'s columns."""
    columns = expected.columns
    actual = actual.select(*columns)
    missing = expected.exceptAll(actual).limit(SHOWN + 1).collect()
    extra = actual.exceptAll(expected).limit(SHOWN + 1).collect()
    return diff_lines(dataset, columns, missing, extra, key)


def diff_lines(
    dataset: str,
    columns: Sequence[str],
    missing: Sequence[Row],
    extra: Sequence[Row],
    key: Sequence[str],
) -> list[str]:
    """The diff as text: changed rows (same key on both sides), then missing, then extra."""
    lines: list[str] = []
    missing_left = list(missing[:SHOWN])
    extra_left = list(extra[:SHOWN])
    if key:
        by_key: dict[tuple[Any, ...], list[Row]] = {}
        for row in extra_left:
            by_key.setdefault(tuple(row[k] for k in key), []).append(row)
        unpaired: list[Row] = []
        for row in missing_left:
            found = by_key.get(tuple(row[k] for k in key))
            if not found:
                unpaired.append(row)
                continue
            got = found.pop(0)
            extra_left.remove(got)
            lines.append(_changed(dataset, columns, key, row, got))
        missing_left = unpaired
    lines += [f"{dataset}: missing row {_row(r, columns)}" for r in missing_left]
    lines += [f"{dataset}: extra row {_row(r, columns)}" for r in extra_left]
    for rows, what in ((missing, "missing"), (extra, "extra")):
        if len(rows) > SHOWN:
            lines.append(f"{dataset}: more {what} rows than the {SHOWN} shown")
    return lines


def _changed(dataset: str, columns: Sequence[str], key: Sequence[str], want: Row, got: Row) -> str:
    named = ", ".join(f"{k}={_value(want[k])}" for k in key)
    parts = [
        f"{c}: expected {_value(want[c])}, got {_value(got[c])}"
        for c in columns
        if c not in key and want[c] != got[c]
    ]
    return f"{dataset}: row {named} differs in {'; '.join(parts)}"


def _row(row: Row, columns: Sequence[str]) -> str:
    return "{" + ", ".join(f"{json.dumps(c)}: {_value(row[c])}" for c in columns) + "}"


def _value(value: Any) -> str:
    """A value as a test file writes it: decimals in full, times in ISO 8601."""
    if value is None:
        return "null"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return json.dumps(value.isoformat())
    return json.dumps(value, ensure_ascii=False, default=str)
