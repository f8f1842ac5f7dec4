"""Delta Lake tables through the files connector: append, overwrite, and upsert by MERGE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.graph import DatasetSchema

DDL = "`id` BIGINT, `day` STRING, `v` STRING, `version` INT"
SCHEMA = DatasetSchema(
    {
        "type": "record",
        "name": "row",
        "fields": [
            {"name": "id", "type": "long"},
            {"name": "day", "type": "string"},
            {"name": "v", "type": "string"},
            {"name": "version", "type": "int"},
        ],
    },
    DDL,
)


def frame(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    return spark.createDataFrame(rows, DDL)


def table(spark: Any, path: Path) -> list[tuple[Any, ...]]:
    df = FilesExtractor(str(path), "delta", SCHEMA).extract(spark)
    return sorted(tuple(r) for r in df.collect())


def test_append_and_overwrite_commit_whole_tables(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "t"
    loader = FilesLoader(str(path), "delta")
    loader.load(frame(spark, [(1, "a", "x", 1)]), "append")
    loader.load(frame(spark, [(2, "a", "y", 1)]), "append")
    assert table(spark, path) == [(1, "a", "x", 1), (2, "a", "y", 1)]
    loader.load(frame(spark, [(3, "b", "z", 1)]), "overwrite")
    assert table(spark, path) == [(3, "b", "z", 1)]
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operation").collect()
    assert [r[0] for r in history] == ["WRITE", "WRITE", "WRITE"]  # one commit per load


def test_partitioned_overwrite_replaces_only_the_partitions_written(
    spark: Any, tmp_path: Path
) -> None:
    path = tmp_path / "p"
    loader = FilesLoader(str(path), "delta", partition_by=["day"])
    loader.load(frame(spark, [(1, "mon", "x", 1), (2, "tue", "y", 1)]), "overwrite")
    loader.load(frame(spark, [(3, "tue", "z", 1)]), "overwrite")
    assert table(spark, path) == [(1, "mon", "x", 1), (3, "tue", "z", 1)]


def test_upsert_merges_on_keys_latest_sequence_wins_and_never_goes_back(
    spark: Any, tmp_path: Path
) -> None:
    path = tmp_path / "u"
    loader = FilesLoader(str(path), "delta", keys=["id"], sequence_by="version")
    first = loader.load(frame(spark, [(1, "a", "old", 1), (2, "a", "b", 1)]), "upsert")
    assert first.superseded == 0
    assert table(spark, path) == [(1, "a", "old", 1), (2, "a", "b", 1)]
    batch = [
        (1, "a", "newer", 3),
        (1, "a", "new", 2),  # the same key twice: version 3 wins
        (2, "a", "stale", 0),  # older than the table's row: left as it is
        (4, "a", "added", 1),
    ]
    result = loader.load(frame(spark, batch), "upsert")
    assert result.superseded == 1
    assert table(spark, path) == [(1, "a", "newer", 3), (2, "a", "b", 1), (4, "a", "added", 1)]
    operations = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("operation").collect()
    assert operations[0][0] == "MERGE"


def test_upsert_needs_delta_and_keys(spark: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="upsert needs format `delta`"):
        FilesLoader(str(tmp_path / "x"), "parquet").load(frame(spark, []), "upsert")
    with pytest.raises(ConfigurationError, match="upsert needs `keys`"):
        FilesLoader(str(tmp_path / "y"), "delta").load(frame(spark, []), "upsert")
