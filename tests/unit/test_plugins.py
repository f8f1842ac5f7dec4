"""Third-party step types, registered through the `etlc.plugins` entry point group."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etlc.codegen.render import render_driver
from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.steps import plugin_table
from tests.unit import plugin_example
from tests.unit.plugin_install import installed

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def with_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with installed(monkeypatch, "example", plugin_example.SPECS):
        yield


def write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


DOC = {
    "name": "plugged",
    "extract": [{"id": "orders", "type": "memory", "schema": "order.avsc", "label": "${tag}"}],
    "transform": [{"id": "unique", "type": "dedupe", "input": "orders", "keys": ["order_id"]}],
    "load": [
        {"input": "unique", "type": "files", "path": "/o", "format": "parquet", "mode": "append"}
    ],
}


def options(tmp_path: Path) -> CheckOptions:
    env = tmp_path / "env"
    env.mkdir(exist_ok=True)
    (env / "dev.json").write_text('{"variables": {"tag": "x"}}')
    return CheckOptions(schema_dirs=(ROOT / "schemas" / "avro",), env_dir=env)


def test_plugin_steps_are_checked_and_compiled(with_plugin: None, tmp_path: Path) -> None:
    assert plugin_table().get("transform", "dedupe") is not None
    assert [s.type for s in plugin_table().third_party()] == ["memory", "dedupe"]
    result = check_file(write(tmp_path, DOC), options(tmp_path))
    assert result.ok, result.diagnostics
    plan = result.plan
    assert plan.step("unique").schema.names() == plan.step("orders").schema.names()
    assert plan.variables == ("tag",)
    driver = render_driver(plan, Path("generated"))
    assert "from tests.unit.plugin_example import MemoryExtractor, dedupe" in driver
    assert 'label=env.interpolate("${tag}")' in driver
    assert 'keys=("order_id",)' in driver
    # The Scala configuration classes know etlc's own step kinds only: nothing for them to read.
    assert plan.definition is None and "\nDEFINITION = None\n" in driver
    assert "definition=DEFINITION," in driver
    compile(driver, "plugged.py", "exec")


def test_plugin_options_are_validated_by_the_plugin_schema(
    with_plugin: None, tmp_path: Path
) -> None:
    doc = json.loads(json.dumps(DOC))
    doc["transform"][0]["kees"] = ["order_id"]
    result = check_file(write(tmp_path, doc), options(tmp_path))
    assert [d.code for d in result.diagnostics if d.is_error] == ["E101"]


def test_plugin_extract_needs_a_schema(with_plugin: None, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(DOC))
    doc["extract"][0]["schema"] = "missing.avsc"
    result = check_file(write(tmp_path, doc), options(tmp_path))
    assert "E204" in [d.code for d in result.diagnostics]


def test_batch_only_plugin_steps_are_rejected_in_streaming(
    with_plugin: None, tmp_path: Path
) -> None:
    doc = {**json.loads(json.dumps(DOC)), "mode": "streaming"}
    result = check_file(write(tmp_path, doc), options(tmp_path))
    rejected = [d for d in result.diagnostics if d.code == "E402"]
    assert [d.param("type") for d in rejected] == ["memory", "dedupe"]


def test_every_builtin_connector_can_run_in_a_streaming_pipeline() -> None:
    table = plugin_table()
    for role in ("extract", "load"):
        for system in ("files", "s3", "kafka", "postgres", "mysql"):
            spec = table.get(role, system)
            assert spec is not None and spec.streaming, (role, system)
    aggregate = table.get("transform", "aggregate")
    assert aggregate is not None and aggregate.streaming  # the checker's E406 says why not


def test_without_the_plugin_the_type_is_unknown(tmp_path: Path) -> None:
    result = check_file(write(tmp_path, DOC), options(tmp_path))
    assert {d.code for d in result.diagnostics if d.is_error} == {"E105"}


def test_the_plugin_transform_runs(spark: Any) -> None:
    df = spark.createDataFrame([(1, "a"), (1, "b"), (2, "c")], "order_id long, x string")
    assert plugin_example.dedupe(["order_id"])(df).count() == 2


class _TouchedError(Exception):
    """A loader went past its write mode's check and read its DataFrame."""


class _Untouchable:
    def __getattr__(self, name: str) -> Any:
        raise _TouchedError(name)


def _loaders() -> Iterator[tuple[str, str | None, Any]]:
    """One of each built-in loader (type, format, loader), built without a server."""
    from etlc.connectors.files import FORMATS, FilesLoader
    from etlc.connectors.kafka import KafkaLoader
    from etlc.connectors.mysql import MySqlLoader
    from etlc.connectors.postgres import PostgresLoader
    from etlc.connectors.s3 import S3Loader
    from etlc.profiles import KafkaProfile, MySqlProfile, PostgresProfile, S3Profile
    from etlc.runtime.graph import DatasetSchema
    from etlc.vault import Secret

    for fmt in FORMATS:
        yield "files", fmt, FilesLoader("/out", fmt, keys=("id",))
        lake = S3Profile(name="lake")
        yield "s3", fmt, S3Loader(lake, "s3a://lake-bucket/out", fmt, keys=("id",))
    kafka = KafkaProfile(name="events", bootstrap_servers="127.0.0.1:9092")
    record = {"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}]}
    yield "kafka", None, KafkaLoader(kafka, "t", DatasetSchema(record, "`id` BIGINT"), keys=("id",))
    db = {"name": "db", "host": "127.0.0.1", "database": "d", "user": "u", "password": Secret("p")}
    yield "postgres", None, PostgresLoader(PostgresProfile(**db), "t", keys=("id",))
    yield "mysql", None, MySqlLoader(MySqlProfile(**db), "t", keys=("id",))


def test_each_builtin_loader_refuses_exactly_the_modes_its_kind_does_not_declare() -> None:
    # The kind's row is the one declaration of its write modes (the checker's E401 reads
    # it); a loader handed any other mode refuses it before it reads a row, and takes every
    # declared one. Modes outside etlc's vocabulary are refused by every loader.
    from etlc.runtime.errors import ConfigurationError
    from etlc.runtime.strategies import WRITE_MODES

    table = plugin_table()
    seen = set()
    for type_, fmt, loader in _loaders():
        seen.add(type_)
        spec = table.get("load", type_)
        assert spec is not None
        declared = spec.write_modes | spec.format_write_modes.get(fmt or "", frozenset())
        for mode in (*WRITE_MODES, "merge"):
            if mode in declared:
                with pytest.raises(_TouchedError):
                    loader.load(_Untouchable(), mode)
            else:
                with pytest.raises(ConfigurationError):
                    loader.load(_Untouchable(), mode)
    assert sorted(seen) == table.types("load")


def test_a_files_loader_refuses_upsert_except_into_delta() -> None:
    from etlc.connectors.files import FilesLoader
    from etlc.runtime.errors import ConfigurationError

    FilesLoader("/out", "delta").supported("upsert")
    with pytest.raises(ConfigurationError, match=r"upsert needs format `delta`"):
        FilesLoader("/out", "parquet").supported("upsert")
