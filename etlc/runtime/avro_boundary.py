"""The Avro boundary between stages, inside the Spark plan.

A transform's output is serialized with ``to_avro`` under the dataset's declared Avro schema
and read back with ``from_avro``: a record the schema does not admit (a null in a non-null
field, a string outside an enum) fails the run at the boundary instead of flowing on.

Only the values a step makes cross it. A filter's or a join's columns, and the columns a
derive passes through, hold values that crossed it upstream under a type admitting them (the
compiler checks that), so serializing them again could reject nothing: the compiler lists
the columns a step makes (``recheck``) and only those make the round trip, under the part of
the record's schema that covers them. A record is admitted when each of its fields is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro, to_avro

_PAYLOAD = "_etlc_avro"
_RECORD = "_etlc_record"


def through_avro(
    df: DataFrame, avro: Mapping[str, Any], recheck: tuple[str, ...] | None = None
) -> DataFrame:
    """``df`` with the columns in ``recheck`` (None: all) round-tripped through Avro, in the
    schema's column order."""
    order = [f["name"] for f in avro["fields"]]
    crossing = order if recheck is None else [c for c in order if c in recheck]
    if not crossing:
        return df
    part = dict(avro, fields=[f for f in avro["fields"] if f["name"] in crossing])
    text = json.dumps(part)
    kept = [F.col(f"`{c}`") for c in order if c not in crossing]
    made = F.struct(*(F.col(f"`{c}`") for c in crossing))
    # The partition id makes the decoding nondeterministic to the optimizer, which then never
    # copies it into a later filter pushed below it: without it, `status <> 'X'` after the
    # boundary ran the whole round trip twice per record (measured: +60% for a filter and a
    # derive after an extract's boundary, 2M records).
    once = F.when(F.spark_partition_id() >= 0, F.col(_PAYLOAD))
    encoded = df.select(*kept, to_avro(made, text).alias(_PAYLOAD))
    decoded = encoded.select(*kept, from_avro(once, text).alias(_RECORD))
    return decoded.select(
        *(F.col(f"`{_RECORD}`.`{c}`" if c in crossing else f"`{c}`").alias(c) for c in order)
    )
