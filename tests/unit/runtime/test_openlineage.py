"""OpenLineage run events: datasets named by the conventions, facets valid against OpenLineage's
schemas, the column-lineage facet as the compiler traced it, sent over HTTP and never failing
a run."""

from __future__ import annotations

import dataclasses
import http.client
import json
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from etlc.codegen.render import render_driver
from etlc.dsl.checker import check_file, default_options
from etlc.dsl.lineage import output_lineage
from etlc.runtime import dataset_names, driver
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, TransientError
from etlc.runtime.graph import ColumnLineage, PipelineGraph
from etlc.runtime.lineage_sender import URL_PATTERN, Sender, check_url
from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.runtime.openlineage import RunLineage, column_lineage, merged, run_uuid
from etlc.runtime.report import RunReport, Status, StepMetrics
from etlc.vault.backends import EnvVault
from etlc.vault.redaction import HIDDEN, REDACTOR
from tests import openlineage_events
from tests.openlineage_events import validate
from tests.unit.runtime.test_driver import Captured, env_file, events, stdout  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


def compiled(name: str) -> tuple[Any, types.ModuleType]:
    """The plan of pipelines/<name>.json and its driver, as a module."""
    path = ROOT / "pipelines" / f"{name}.json"
    result = check_file(path, default_options(path))
    assert result.plan is not None, result.diagnostics
    module = types.ModuleType(f"driver_{name}")
    exec(compile(render_driver(result.plan, ROOT / "generated"), name, "exec"), module.__dict__)
    return result.plan, module


def demo_graph(tmp_path: Path) -> PipelineGraph:
    _, module = compiled("orders_by_country")
    env = Environment(
        "t", "t.json", {"data_dir": str(tmp_path / "data"), "out_dir": str(tmp_path / "out")}
    )
    graph: PipelineGraph = module.build(env)
    return graph


def lineage_of(
    spark: Any,
    graph: PipelineGraph,
    settings: Settings | None = None,
    mode: str = "batch",
    **kw: Any,
) -> tuple[RunLineage, list[dict[str, Any]]]:
    """Events are sent from a thread: ``sent`` has them once the run's end (or
    ``lineage.sender.close()``) waited for it."""
    settings = settings or Settings()
    sent: list[dict[str, Any]] = []
    env = Environment("t", "t.json", settings=settings, vault=kw.pop("vault", EnvVault({})))
    log = EventLog(RunContext(graph.name, run_id="r1"))
    send = kw.pop("send", lambda url, body, headers: sent.append(json.loads(body)))
    return RunLineage(graph, spark, env, log, mode=mode, send=send, **kw), sent


def test_the_demo_names_its_files_and_carries_the_compilers_column_lineage(
    spark: Any, tmp_path: Path
) -> None:
    graph = demo_graph(tmp_path)
    lineage, _ = lineage_of(spark, graph)
    start = lineage.event("START")
    validate(start)
    assert [(d["namespace"], d["name"]) for d in start["inputs"]] == [
        ("file", str(tmp_path / "data" / "customers.json")),
        ("file", str(tmp_path / "data" / "orders")),  # the folder of the glob *.csv
    ]
    [out] = start["outputs"]
    assert (out["namespace"], out["name"]) == ("file", str(tmp_path / "out" / "orders_by_country"))
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == [
        "country",
        "revenue",
        "revenue_with_vat",
        "orders",
        "customers",
    ]
    assert out["facets"]["schema"]["fields"][1]["type"] == "decimal(22,2)"
    orders = str(tmp_path / "data" / "orders")
    customers = str(tmp_path / "data" / "customers.json")
    fields = out["facets"]["columnLineage"]["fields"]
    assert fields["revenue_with_vat"]["inputFields"] == [
        {
            "namespace": "file",
            "name": orders,
            "field": "amount",
            "transformations": [
                {"type": "DIRECT", "subtype": "AGGREGATION", "description": "", "masking": False}
            ],
        }
    ]
    assert [(f["name"], f["field"]) for f in fields["country"]["inputFields"]] == [
        (customers, "country")
    ]
    assert "orders" not in fields  # count(*): made of no column
    rows = out["facets"]["columnLineage"]["dataset"]
    assert {(r["name"], r["field"], r["transformations"][0]["subtype"]) for r in rows} == {
        (customers, "country", "GROUP_BY"),
        (customers, "customer_id", "JOIN"),
        (orders, "customer_id", "JOIN"),
        (orders, "status", "FILTER"),
    }
    assert {r["transformations"][0]["type"] for r in rows} == {"INDIRECT"}


def test_the_driver_carries_each_loads_lineage_as_the_compiler_traced_it(
    spark: Any, tmp_path: Path
) -> None:
    """join_segments, by hand: a column renamed from the other side of the join, and rows
    decided by a filter before the join and by both sides' keys and condition."""
    plan, module = compiled("join_segments")
    env = Environment("t", "t.json", {"data_dir": str(tmp_path), "out_dir": str(tmp_path)})
    graph = module.build(env)
    business = graph.loads[0]
    assert business.lineage is not None
    assert business.lineage.fields["business_id"] == (("customers", "customer_id", "IDENTITY"),)
    assert business.lineage.fields["amount"] == (("orders", "amount", "IDENTITY"),)
    assert business.lineage.dataset == (
        ("customers", "customer_id", "JOIN"),
        ("customers", "segment", "FILTER"),
        ("orders", "customer_id", "JOIN"),
        ("orders", "status", "JOIN"),
    )
    for load in graph.loads:  # and every load as the compiler's own trace says
        traced = output_lineage(plan.steps, load.id)
        assert load.lineage is not None
        assert dict(load.lineage.fields) == dict(traced.fields)
        assert load.lineage.dataset == traced.dataset
    lineage, _ = lineage_of(spark, graph)
    validate(lineage.event("START"))


def test_the_end_of_a_run_counts_rows_and_a_failure_says_why(spark: Any, tmp_path: Path) -> None:
    graph = demo_graph(tmp_path)
    lineage, sent = lineage_of(spark, graph, Settings(openlineage_url="http://127.0.0.1:1/x"))
    report = RunReport("orders_by_country", "r1", Status.SUCCESS)
    report.steps += [
        StepMetrics("orders", "extract", 10, 9),
        StepMetrics("customers", "extract", 4, 4),
        StepMetrics(graph.loads[0].id, "load", 3, 3),
    ]
    lineage.finished(report)
    [complete] = sent
    validate(complete)
    assert "errorMessage" not in complete["run"]["facets"]
    assert complete["eventType"] == "COMPLETE"
    assert complete["run"]["runId"] == run_uuid("orders_by_country", "r1")
    assert uuid.UUID(complete["run"]["runId"]).version == 5
    stats = {d["name"]: d["inputFacets"]["inputStatistics"]["rowCount"] for d in complete["inputs"]}
    assert stats == {
        str(tmp_path / "data" / "customers.json"): 4,
        str(tmp_path / "data/orders"): 10,
    }
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 3
    failing, sent = lineage_of(spark, graph, Settings(openlineage_url="http://127.0.0.1:1/x"))
    failed = RunReport("orders_by_country", "r1", Status.FAILED)
    # A database's message may quote a row: another system is told the kind and step only.
    failed.error = TransientError("duplicate key (email)=(ann@example.com)", "orders")
    failing.finished(failed)
    [fail] = sent
    validate(fail)
    assert fail["eventType"] == "FAIL"
    assert fail["run"]["facets"]["errorMessage"]["message"] == (
        "transient error at step orders (TransientError); the run's log has the details"
    )
    assert "ann@example.com" not in json.dumps(fail)


def test_a_quarantined_loads_output_has_the_columns_it_writes(spark: Any, tmp_path: Path) -> None:
    graph = demo_graph(tmp_path)
    held = dataclasses.replace(graph.loads[0], quarantined=True)
    lineage, sent = lineage_of(
        spark,
        dataclasses.replace(graph, loads=(held,)),
        Settings(openlineage_url="http://127.0.0.1:1/x"),
    )
    lineage.finished(RunReport("orders_by_country", "r1", Status.SUCCESS))
    [complete] = sent
    validate(complete)
    fields = complete["outputs"][0]["facets"]["schema"]["fields"]
    assert [f["name"] for f in fields][-3:] == ["_etlc_rule", "_etlc_step", "_etlc_run_id"]
    assert fields[-1]["type"] == "string"


def test_a_secret_in_any_part_of_an_event_is_scrubbed_before_it_leaves(
    spark: Any, tmp_path: Path
) -> None:
    graph = demo_graph(tmp_path)
    try:
        REDACTOR.register(str(tmp_path / "data"))  # as if a path held a resolved secret
        lineage, sent = lineage_of(spark, graph, Settings(openlineage_url="http://h/x"))
        lineage.start()
        lineage.sender.close()  # type: ignore[union-attr]
    finally:
        REDACTOR.clear()
    [start] = sent
    assert str(tmp_path / "data") not in json.dumps(start) and HIDDEN in json.dumps(start)


def test_a_stream_sends_running_events_at_its_interval(spark: Any, tmp_path: Path) -> None:
    graph = demo_graph(tmp_path)
    lineage, sent = lineage_of(
        spark,
        graph,
        Settings(openlineage_url="http://h/x", openlineage_interval="1 hour"),
        mode="streaming",
    )
    lineage.start()
    lineage.running()  # an hour has not passed
    lineage.interval_s = 0
    lineage.running()
    lineage.finished(RunReport("orders_by_country", "r1", Status.SUCCESS))
    assert [e["eventType"] for e in sent] == ["START", "RUNNING", "COMPLETE"]
    for event in sent:
        validate(event)
        assert event["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    # RUNNING says the stream still runs; the datasets' facets were in START.
    assert all("facets" not in d for d in sent[1]["inputs"] + sent[1]["outputs"])
    assert "columnLineage" in sent[0]["outputs"][0]["facets"]


def test_an_endpoint_that_fails_costs_a_warning_never_the_run(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    failures = iter(
        [OSError("connection refused"), http.client.BadStatusLine("junk"), ValueError("odd")]
    )

    def refuse(url: str, body: bytes, headers: Any) -> None:
        raise next(failures)

    lineage, _ = lineage_of(
        spark, demo_graph(tmp_path), Settings(openlineage_url="http://h:1/x?key=k1"), send=refuse
    )
    lineage.start()
    lineage.running()
    lineage.interval_s = 0
    lineage.running()
    lineage.finished(RunReport("orders_by_country", "r1", Status.SUCCESS))
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    warned = [x for x in lines if x["event"] == "openlineage_not_sent"]
    assert [x["event"] for x in lines].count("openlineage") == 3
    assert [x["error"] for x in warned] == ["connection refused", "junk", "odd"]
    assert {x["url"] for x in warned} == {"http://h:1/x"}  # without its query


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://h/x",
        "http://user:pw@h/x",
        "http://tok@h/x",
        "gopher://h",
        "h/x",
        "HTTP://h/x",
        "http://h:5OOO/x",
        "http://h:99999/x",
        "http:///x",
        "http://h x/",
    ],
)
def test_only_an_http_url_without_credentials_is_an_endpoint(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"env\.json: `etlc\.openlineage_url`"):
        check_url(url, "env.json: `etlc.openlineage_url`")


@pytest.mark.parametrize(
    "url", ["", "https://marquez:5000/api/v1/lineage", "http://[::1]:8080/x", "http://h?a=b@c"]
)
def test_an_http_url_is_an_endpoint_and_no_url_is_none(url: str) -> None:
    assert check_url(url, "w") == url


def test_the_runtime_and_lint_hold_an_endpoint_to_one_pattern() -> None:
    schema = json.loads((ROOT / "schemas" / "environment.schema.json").read_text())
    assert schema["$defs"]["settings"]["properties"]["openlineage_url"]["pattern"] == URL_PATTERN


# --- dataset names -----------------------------------------------------------------------


def test_database_tables_are_named_as_openlineage_names_them() -> None:
    assert dataset_names.table("postgres", "db1", "5432", "etlc", "orders") == DatasetName(
        "postgres://db1:5432", "etlc.public.orders"
    )
    assert dataset_names.table("postgres", "::1", "5432", "etlc", "mart.orders") == DatasetName(
        "postgres://[::1]:5432", "etlc.mart.orders"
    )
    assert dataset_names.table("postgres", "h", "1", "etlc", "etlc.mart.t").name == "etlc.mart.t"
    assert dataset_names.table("mysql", "h", "3306", "shop", "orders").name == "shop.orders"
    assert dataset_names.table("mysql", "h", "3306", "shop", "other.t").name == "other.t"


def test_a_topic_is_named_by_its_first_bootstrap_server() -> None:
    assert dataset_names.topic("b1:9092, b2:9092", "orders") == DatasetName(
        "kafka://b1:9092", "orders"
    )
    assert dataset_names.topic("SASL_SSL://b1:9093", "t").namespace == "kafka://b1:9093"
    assert dataset_names.topic("broker", "t").namespace == "kafka://broker:9092"


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("s3a://bucket/a/b/", ("s3://bucket", "a/b")),
        ("s3a://key:secret@bucket/a", ("s3://bucket", "a")),
        ("hdfs://nn:9820/data/x/*.csv", ("hdfs://nn:9820", "/data/x")),
        ("hdfs://nn/data/part-{1,2}", ("hdfs://nn:8020", "/data")),
        (
            "abfss://raw@acct.dfs.core.windows.net/o",
            ("abfss://raw@acct.dfs.core.windows.net", "/o"),
        ),
        ("file:/data/a#1.csv", ("file", "/data/a#1.csv")),
        ("file:/tmp/x", ("file", "/tmp/x")),
        ("file:///tmp/x/", ("file", "/tmp/x")),
    ],
)
def test_paths_with_a_scheme_are_named_as_they_say(
    spark: Any, location: str, expected: tuple[str, str]
) -> None:
    assert dataset_names.path(spark, location) == DatasetName(*expected)


def test_a_path_without_a_scheme_is_where_hadoop_resolves_it(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert dataset_names.path(spark, str(tmp_path / "a b" / "*.json")) == DatasetName(
        "file", str(tmp_path / "a b")
    )
    relative = dataset_names.path(spark, "data/orders.csv")
    assert relative.namespace == "file" and relative.name.endswith("/data/orders.csv")
    assert relative.name.startswith("/")


# --- in the driver -----------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with openlineage_events.receiver() as endpoint:
        yield endpoint


def test_a_driver_run_sends_start_and_complete_to_the_endpoint_and_logs_them(
    spark: Any,
    tmp_path: Path,
    stdout: Captured,  # noqa: F811
    receiver: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the driver, whose environment etlc's Scala classes read: the URL, the API key
    from the (env) vault."""
    from tests.unit.runtime.test_driver import run

    url, received = receiver
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n2\n")
    path = env_file(tmp_path, src)
    doc = json.loads(path.read_text())
    doc["etlc"].update(openlineage_url=url, openlineage_api_key="vault://lineage/marquez#key")
    doc["vault"] = {"backend": "env"}
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("ETLC_SECRET_LINEAGE_MARQUEZ_KEY", "k-2b7e1f")
    try:
        assert run(spark, ["--env-file", str(path), "--run-id", "ol1"]) == 0
    finally:
        REDACTOR.clear()
    received = [{**e, **json.loads(e["body"])} for e in received]
    assert [(e["path"], e["type"], e["authorization"], e["eventType"]) for e in received] == [
        ("/api/v1/lineage", "application/json", "Bearer k-2b7e1f", "START"),
        ("/api/v1/lineage", "application/json", "Bearer k-2b7e1f", "COMPLETE"),
    ]
    out = stdout.getvalue()
    assert "k-2b7e1f" not in out
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    logged = [e["openlineage"] for e in lines if e["event"] == "openlineage"]
    assert [e["eventType"] for e in logged] == ["START", "COMPLETE"]
    for event in logged:
        validate(event)
    complete = logged[-1]
    assert complete["inputs"][0]["inputFacets"]["inputStatistics"]["rowCount"] == 2
    assert complete["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert complete["outputs"][0]["name"] == str(tmp_path / "out")


def test_a_driver_with_a_url_that_is_not_http_exits_one_before_spark(
    tmp_path: Path,
    stdout: Captured,  # noqa: F811
) -> None:
    from tests.unit.runtime.test_driver import run_without_spark

    src = tmp_path / "in.csv"
    path = env_file(tmp_path, src)
    doc = json.loads(path.read_text())
    doc["etlc"]["openlineage_url"] = "file:///etc/passwd"
    path.write_text(json.dumps(doc))
    assert run_without_spark(["--env-file", str(path)]) == 1
    finished = events(stdout)[-1]
    assert "`etlc.openlineage_url`: write an http:// or https:// URL" in finished["error"]


def test_a_person_at_a_terminal_does_not_see_the_lineage_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(text=True)
    log = EventLog(RunContext("p"))
    log.info("openlineage", openlineage={"eventType": "START"})
    log.warning("openlineage_not_sent", url="http://h/x", error="refused")
    out = capsys.readouterr().out
    assert "START" not in out and "openlineage not sent" in out
    configure()


def test_a_bad_interval_is_refused_before_spark() -> None:
    env = Environment("t", "env.json", settings=Settings(openlineage_interval="soon"))
    with pytest.raises(ConfigurationError, match=r"env\.json: `etlc\.openlineage_interval`"):
        driver._check_lineage_settings(env)


def test_the_schema_check_refuses_what_openlineage_refuses(spark: Any, tmp_path: Path) -> None:
    """The check these tests rely on can fail: a bad run id, a count that is text, a facet
    with no schema here."""
    from jsonschema import ValidationError

    lineage, _ = lineage_of(spark, demo_graph(tmp_path))
    event = lineage.event("START")
    bad_id = json.loads(json.dumps(event))
    bad_id["run"]["runId"] = "run-1"
    with pytest.raises(ValidationError):
        validate(bad_id)
    bad_count = json.loads(json.dumps(event))
    bad_count["outputs"][0]["outputFacets"] = {
        "outputStatistics": {**bad_count["run"]["facets"]["processing_engine"], "rowCount": "3"}
    }
    with pytest.raises(ValidationError):
        validate(bad_count)
    unknown = json.loads(json.dumps(event))
    unknown["job"]["facets"]["mine"] = {"_producer": "urn:x", "_schemaURL": "urn:y"}
    with pytest.raises(AssertionError, match="facet `mine` has no schema"):
        validate(unknown)
    bad_kind = json.loads(json.dumps(event))
    bad_kind["eventType"] = "DONE"
    with pytest.raises(ValidationError):
        validate(bad_kind)


def test_each_connector_names_its_dataset(spark: Any, request: pytest.FixtureRequest) -> None:
    from etlc.connectors.kafka import KafkaExtractor, KafkaLoader
    from etlc.connectors.mysql import MySqlLoader
    from etlc.connectors.postgres import PostgresExtractor, PostgresLoader
    from etlc.connectors.s3 import S3Extractor
    from etlc.profiles import KafkaProfile, MySqlProfile, PostgresProfile, S3Profile
    from etlc.runtime.graph import DatasetSchema
    from etlc.vault import Secret

    record = {"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}]}
    schema = DatasetSchema(record, "`id` BIGINT")
    kafka = KafkaProfile(name="events", bootstrap_servers="k1:9092,k2:9092")
    assert KafkaExtractor(kafka, schema, "orders").dataset(spark) == DatasetName(
        "kafka://k1:9092", "orders"
    )
    assert KafkaExtractor(kafka, schema, topic_pattern="o.*").dataset(spark) is None
    assert KafkaLoader(kafka, "out", schema).dataset(spark) == DatasetName("kafka://k1:9092", "out")
    REDACTOR.clear()
    request.addfinalizer(REDACTOR.clear)
    db = {"name": "db", "host": "pg", "database": "d", "user": "u", "password": Secret("pw-xyz")}
    pg = PostgresProfile(**db)
    assert PostgresExtractor(pg, schema, table="mart.c").dataset(spark) == DatasetName(
        "postgres://pg:5432", "d.mart.c"
    )
    assert PostgresExtractor(pg, schema, query="SELECT 1 AS id").dataset(spark) is None
    assert PostgresLoader(pg, "t").dataset(spark) == DatasetName("postgres://pg:5432", "d.public.t")
    assert MySqlLoader(MySqlProfile(**db), "t").dataset(spark) == DatasetName(
        "mysql://pg:3306", "d.t"
    )
    lake = S3Profile(name="lake")
    assert S3Extractor(lake, "s3a://lake-bucket/in/*.csv", "csv", schema).dataset(
        spark
    ) == DatasetName("s3://lake-bucket", "in")


def test_the_api_key_comes_from_the_vault_and_travels_only_in_its_header(
    spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure()
    headers: list[dict[str, str]] = []
    sent: list[bytes] = []
    key = "ol-key-7f3a9c"
    vault = EnvVault({"ETLC_SECRET_LINEAGE_MARQUEZ_KEY": key})
    settings = Settings(
        openlineage_url="http://h/x", openlineage_api_key="vault://lineage/marquez#key"
    )
    try:
        lineage, _ = lineage_of(
            spark,
            demo_graph(tmp_path),
            settings,
            vault=vault,
            send=lambda url, body, h: (headers.append(dict(h)), sent.append(body)),
        )
        lineage.finished(RunReport("orders_by_country", "r1", Status.SUCCESS))
    finally:
        REDACTOR.clear()
    assert headers == [{"Authorization": f"Bearer {key}"}]
    assert key not in sent[0].decode() and key not in capsys.readouterr().out
    # A key the vault does not have: the events stay log lines, and a warning says why.
    lineage, _ = lineage_of(spark, demo_graph(tmp_path), settings, vault=EnvVault({}))
    assert lineage.sender is None
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["event"] for x in lines] == ["openlineage_not_sent"]


def test_an_api_key_that_is_not_a_vault_reference_ends_the_run_before_spark() -> None:
    env = Environment("t", "env.json", settings=Settings(openlineage_api_key="plain-key"))
    with pytest.raises(ConfigurationError, match="must be a vault reference"):
        driver._check_lineage_settings(env)
    fast = Environment("t", "env.json", settings=Settings(openlineage_interval="10 ms"))
    with pytest.raises(ConfigurationError, match="at least 1 second"):
        driver._check_lineage_settings(fast)


def test_loads_into_one_dataset_merge_their_columns_and_keep_the_strongest_subtype() -> None:
    one = ColumnLineage({"a": (("x", "a", "IDENTITY"),)}, (("x", "k", "FILTER"),))
    two = ColumnLineage(
        {"a": (("x", "a", "AGGREGATION"), ("y", "b", "IDENTITY")), "c": ()},
        (("y", "k", "JOIN"),),
    )
    both = merged([one, None, two])
    assert both == ColumnLineage(
        {"a": (("x", "a", "AGGREGATION"), ("y", "b", "IDENTITY")), "c": ()},
        (("x", "k", "FILTER"), ("y", "k", "JOIN")),
    )
    assert merged([None]) is None


def test_an_extract_without_a_dataset_name_is_left_out_of_the_column_lineage() -> None:
    lineage = ColumnLineage(
        {"a": (("q", "a", "IDENTITY"),), "b": (("q", "b", "IDENTITY"), ("t", "b", "IDENTITY"))},
        (("q", "k", "FILTER"),),
    )
    facet = column_lineage(lineage, {"t": DatasetName("file", "/t")})
    assert list(facet["fields"]) == ["b"]
    assert [f["name"] for f in facet["fields"]["b"]["inputFields"]] == ["/t"]
    assert facet["dataset"] == []


def test_an_endpoint_answering_an_error_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    configure()
    with openlineage_events.receiver(status=500) as (url, received):
        sender = Sender(url, EventLog(RunContext("p")), {})
        sender.put("START", b"{}")
        sender.close()
    assert len(received) == 1
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["event"] == "openlineage_not_sent" and "500" in line["error"]
