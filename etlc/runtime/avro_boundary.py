"""The Avro boundary between stages, inside the Spark plan.

A transform's output is serialized with ``to_avro`` under the dataset's declared Avro schema
and read back with ``from_avro``: a record the schema does not admit (a null in a non-null
field, a string outside an enum) fails the run at the boundary instead of flowing on.

Only steps that make records cross it: a filter or a semi/anti join passes on records that
crossed it upstream, unchanged, so the compiler marks them ``revalidate=False`` and the
round trip, which could reject nothing there, is skipped.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

_PAYLOAD = "_etlc_avro"
_RECORD = "_etlc_record"


def through_avro(df: DataFrame, avro_schema: str) -> DataFrame:
    columns = [F.col(f"`{c}`") for c in df.columns]
    encoded = df.select(to_avro(F.struct(*columns), avro_schema).alias(_PAYLOAD))
    decoded = encoded.select(from_avro(F.col(_PAYLOAD), avro_schema).alias(_RECORD))
    return decoded.select(f"{_RECORD}.*")
