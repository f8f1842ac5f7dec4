"""A third-party plugin, as a package would ship it: specs plus their runtime implementations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from etlc.plugins import PluginSpec

SPECS = [
    PluginSpec(
        "dedupe",
        "transform",
        "tests.unit.plugin_example:dedupe",
        output="input",
        options_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type", "input", "keys"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "dedupe"},
                "input": {"type": "string"},
                "keys": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            },
        },
    ),
    PluginSpec(
        "memory",
        "extract",
        "tests.unit.plugin_example:MemoryExtractor",
        options_schema={
            "type": "object",
            "additionalProperties": False,
            "required": ["id", "type", "schema", "label"],
            "properties": {
                "id": {"type": "string"},
                "type": {"const": "memory"},
                "schema": {"type": "string"},
                "label": {"type": "string"},
            },
        },
    ),
]


def dedupe(keys: Sequence[str]) -> Any:
    def apply(df: Any) -> Any:
        return df.dropDuplicates(list(keys))

    return apply


class MemoryExtractor:
    def __init__(self, schema_ddl: str, label: str) -> None:
        self.schema_ddl = schema_ddl
        self.label = label
