"""The files connector against real local files: formats, schema checks, write modes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.errors import ConfigurationError, SchemaIncompatibleError
from etlc.runtime.graph import DatasetSchema

DDL = "`id` BIGINT, `name` STRING"
SCHEMA = DatasetSchema(
    {
        "type": "record",
        "name": "row",
        "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}],
    },
    DDL,
)


@pytest.fixture(scope="module")
def people(spark: Any) -> Any:
    return spark.createDataFrame([(1, "ann"), (2, "bob")], "id int, name string")


@pytest.mark.parametrize("fmt", ["parquet", "avro"])
def test_self_describing_formats_are_cast_to_the_schema(
    spark: Any, people: Any, tmp_path: Path, fmt: str
) -> None:
    path = str(tmp_path / "in")
    people.write.format(fmt).save(path)
    df = FilesExtractor(path, fmt, SCHEMA).extract(spark)
    assert df.dtypes == [("id", "bigint"), ("name", "string")]
    assert sorted(tuple(r) for r in df.collect()) == [(1, "ann"), (2, "bob")]


def test_unknown_source_columns_halt_with_a_report(spark: Any, people: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "in")
    people.withColumnRenamed("name", "nick").write.parquet(path)
    with pytest.raises(SchemaIncompatibleError) as err:
        FilesExtractor(path, "parquet", SCHEMA).extract(spark)
    assert "columns not in the schema: nick" in str(err.value)
    assert "missing from the source: name" in str(err.value)


def test_json_lines_and_corrupt_records(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text('{"id": 1, "name": "ann"}\n{"id": "x", "name": "bob"}\nnot json\n')
    rows = FilesExtractor(str(path), "json", SCHEMA).extract(spark).collect()
    corrupt = [r for r in rows if r["_etlc_corrupt"] is not None]
    assert len(rows) == 3 and len(corrupt) == 2


def _header_error(extractor: FilesExtractor, spark: Any) -> Exception | None:
    """What a read of ``extractor`` fails with, explained in the source's terms."""
    try:
        extractor.extract(spark).collect()
    except Exception as exc:
        return extractor.explain(exc)
    return None


def test_csv_delimiter_and_every_files_header_checked_in_order(spark: Any, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.csv").write_text("id;name\n1;ann\n")
    extractor = FilesExtractor(f"{src}/*.csv", "csv", SCHEMA, {"header": "true", "sep": ";"})
    assert [(r.id, r.name) for r in extractor.extract(spark).collect()] == [(1, "ann")]
    # A second file with another column, then one with the right columns in another order:
    # both are refused, naming the file, as Spark reads them (no extra pass over the source).
    for bad, named in (("id;nick\n2;bo\n", "nick"), ("name;id\nbo;2\n", "name, id")):
        (src / "b.csv").write_text(bad)
        error = _header_error(extractor, spark)
        assert isinstance(error, SchemaIncompatibleError), error
        assert "b.csv" in str(error) and "does not match its Avro schema" in str(error)
        assert named in str(error)
    (src / "b.csv").write_text("id;nick;extra\n2;bo;x\n")
    assert isinstance(_header_error(extractor, spark), SchemaIncompatibleError)
    assert extractor.explain(ValueError("unrelated")) is None


def test_append_overwrite_and_partitions(spark: Any, people: Any, tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    loader = FilesLoader(out, "parquet")
    loader.load(people, "overwrite")
    loader.load(people, "append")
    assert spark.read.parquet(out).count() == 4
    loader.load(people, "overwrite")
    assert spark.read.parquet(out).count() == 2
    assert loader.describe() == {"system": "files", "path": out, "format": "parquet"}

    parts = str(tmp_path / "parts")
    by_name = FilesLoader(parts, "parquet", partition_by=["name"])
    by_name.load(people, "overwrite")
    by_name.load(people.where("name = 'ann'").selectExpr("id + 10 AS id", "name"), "overwrite")
    # Only the partition written is replaced: bob's rows survive the second overwrite.
    assert sorted(tuple(r) for r in spark.read.parquet(parts).select("id", "name").collect()) == [
        (2, "bob"),
        (11, "ann"),
    ]


def test_single_file_output(spark: Any, people: Any, tmp_path: Path) -> None:
    out = tmp_path / "one"
    FilesLoader(str(out), "csv", {"header": "true"}, single_file=True).load(
        people.repartition(3), "overwrite"
    )
    assert len(list(out.glob("part-*.csv"))) == 1


def test_bad_format_and_mode_are_configuration_errors(people: Any) -> None:
    with pytest.raises(ConfigurationError):
        FilesLoader("/tmp/x", "xml")
    with pytest.raises(ConfigurationError):
        FilesExtractor("/tmp/x", "xml", SCHEMA)
    with pytest.raises(ConfigurationError, match="upsert"):
        FilesLoader("/tmp/x", "csv").load(people, "upsert")
