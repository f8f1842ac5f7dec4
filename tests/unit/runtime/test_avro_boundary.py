"""The Avro boundary: the columns a step makes round-trip under their part of the schema, the
others pass as they are, and the record keeps the schema's column order."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from etlc.runtime.avro_boundary import through_avro

AVRO = (
    {
        "type": "record",
        "name": "sized",
        "namespace": "etlc.simple_batch",  # dots, as every derived schema has
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal",
                                        "precision": 12, "scale": 2}},
            {"name": "band", "type": {"type": "enum", "name": "band_enum",
                                      "symbols": ["small", "large"]}},
            {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        ],
    }
)  # fmt: skip
ROWS = [(1, Decimal("5.00"), "small", date(2026, 1, 2)), (2, Decimal("900.00"), "large", None)]
DDL = "id BIGINT, amount DECIMAL(12,2), band STRING, day DATE"


@pytest.mark.parametrize("recheck", [None, ("band", "day"), ("day",), ()])
def test_values_and_order_survive_whatever_crosses(spark: Any, recheck: Any) -> None:
    # The input's columns in another order: the output is in the schema's.
    df = spark.createDataFrame(
        [(r[2], r[3], r[0], r[1]) for r in ROWS],
        "band STRING, day DATE, id BIGINT, amount DECIMAL(12,2)",
    )
    out = through_avro(df, AVRO, recheck)
    if recheck == ():
        assert out is df
        return
    assert out.columns == ["id", "amount", "band", "day"]
    assert [tuple(r) for r in out.collect()] == ROWS


def test_a_value_the_schema_refuses_fails_only_where_it_crosses(spark: Any) -> None:
    df = spark.createDataFrame([(1, Decimal("5.00"), "medium", None)], DDL)
    assert [tuple(r) for r in through_avro(df, AVRO, ("day",)).collect()] == [
        (1, Decimal("5.00"), "medium", None)
    ]
    with pytest.raises(Exception, match="medium"):
        through_avro(df, AVRO, ("band",)).collect()
