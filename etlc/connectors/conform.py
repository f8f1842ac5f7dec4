"""Conforming a source's columns to its declared schema, shared by every connector.

A source with columns the schema does not know, or without columns it declares, is a schema
incompatibility (schema evolution) and halts the run with a report; matching columns are cast
to the declared types, and record validation catches what does not fit.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from etlc.runtime.errors import SchemaIncompatibleError


def column_differences(
    found: Sequence[str], declared: Sequence[str], where: str = "source"
) -> list[str]:
    """What tells ``found`` from the schema's ``declared`` columns, as message parts."""
    extra = [c for c in found if c not in declared]
    missing = [c for c in declared if c not in found]
    parts = [f"columns not in the schema: {', '.join(extra)}"] if extra else []
    if missing:
        parts.append(f"schema columns missing from the {where}: {', '.join(missing)}")
    return parts


def check_columns(source: str, found: Sequence[str], declared: Sequence[str]) -> None:
    parts = column_differences(found, declared)
    if parts:
        raise SchemaIncompatibleError(
            f"source {source} does not match its Avro schema ({'; '.join(parts)}); "
            "update the .avsc (schema evolution) or the source"
        )


def conform(source: str, df: DataFrame, schema: StructType) -> DataFrame:
    check_columns(source, df.columns, schema.fieldNames())
    return df.select(*(F.col(f"`{f.name}`").cast(f.dataType).alias(f.name) for f in schema.fields))
