"""The small `items` dataset the batch pipeline tests read: an id, an enum and a nullable int."""

from __future__ import annotations

from etlc.runtime.graph import DatasetSchema

AVRO = {
    "type": "record",
    "name": "item",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "kind", "type": {"type": "enum", "name": "kind_enum", "symbols": ["A", "B"]}},
        {"name": "qty", "type": ["null", "int"], "default": None},
    ],
}
SCHEMA = DatasetSchema(AVRO, "`id` BIGINT, `kind` STRING, `qty` INT")
