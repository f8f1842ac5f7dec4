"""Kafka through compiled drivers against the local broker: Avro events in, keyed records out.

Each test uses a topic of its own (a fresh name), so it compiles its own copy of the example
definition with that topic (a definition names its topic literally).
"""

from __future__ import annotations

import json
import secrets
import socket
from collections import defaultdict
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.vault import MasterKey
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import ROOT, Submission, Workspace, compile_definitions, submit
from tests.leak_canary import assert_no_leak, files, seed_vault

ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))
NOT_AVRO = b"not avro at all"


@pytest.fixture(scope="module")
def servers() -> str:
    return events.bootstrap()


@pytest.fixture(scope="module")
def orders() -> demo.DemoData:
    return demo.generate(orders=3_000, customers=100, seed=11)


def encoded(data: demo.DemoData) -> list[bytes]:
    return [events.encode(ORDER_SCHEMA, asdict(o)) for o in data.orders]


def variant(
    tmp: Path,
    definition: str,
    topic: str,
    retry: dict[str, float] | None = None,
    **kafka_step: Any,
) -> Path:
    """The example ``definition`` with its Kafka step on ``topic``, compiled; its driver."""
    doc = json.loads((ROOT / "pipelines" / f"{definition}.json").read_text(encoding="utf-8"))
    for step in doc["extract"] + doc["load"]:
        if step["type"] == "kafka":
            step.update(topic=topic, **kafka_step)
            for key in [k for k, v in step.items() if v is None]:
                del step[key]  # None removes an option of the example
    if retry is not None:
        doc["retry"] = retry
    defs = tmp / "defs"
    (defs / "env").mkdir(parents=True, exist_ok=True)
    profile = {"system": "kafka", "bootstrap_servers": "127.0.0.1:9092"}
    checked = {
        "variables": {"data_dir": "data", "out_dir": "out"},
        "connections": {"events": profile},
    }
    (defs / "env" / "test.json").write_text(json.dumps(checked), encoding="utf-8")
    path = defs / f"{definition}.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    compile_definitions([path], tmp / "generated")
    return tmp / "generated" / f"{doc['name']}.py"


def env_file(tmp: Path, data_dir: Path, profile: dict[str, Any], vault: Path | None = None) -> Path:
    doc: dict[str, Any] = {
        "variables": {"data_dir": str(data_dir), "out_dir": str(tmp / "out")},
        "spark": dict(db.TEST_SPARK_CONF),
        "etlc": {"stage_dir": str(tmp / "stage")},
        "connections": {"events": profile},
    }
    if vault is not None:
        doc["vault"] = {"backend": "file", "path": str(vault)}
    path = tmp / "env.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def plain(servers: str, **properties: Any) -> dict[str, Any]:
    profile: dict[str, Any] = {"system": "kafka", "bootstrap_servers": servers}
    if properties:
        profile["properties"] = properties
    return profile


def failure(run: Submission) -> str:
    return json.dumps(run.events[-3:], indent=1) + "\n" + run.stderr[-3000:]


def by_status(data: demo.DemoData) -> dict[str, tuple[Decimal, int, int]]:
    """What orders_from_kafka computes, in plain Python: revenue, orders, last order (micros)."""
    acc: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0, 0])
    for o in data.orders:
        if o.status == "CANCELLED":
            continue
        row = acc[o.status]
        row[0] += o.amount
        row[1] += 1
        row[2] = max(row[2], events.micros(o.ordered_at))
    return {k: (v[0], v[1], v[2]) for k, v in acc.items()}


def landed_by_status(spark: Any, path: Path) -> dict[str, tuple[Decimal, int, int]]:
    from pyspark.sql import functions as F

    rows = (
        spark.read.parquet(str(path))
        .select("status", "revenue", "orders", F.unix_micros("last_order"))
        .collect()
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


@pytest.mark.parametrize("framed", [False, True], ids=["plain", "confluent-framed"])
def test_order_events_from_a_topic_are_aggregated_exactly(
    servers: str, orders: demo.DemoData, spark: Any, tmp_path: Path, framed: bool
) -> None:
    topic = events.fresh_topic("orders")
    events.create_topic(servers, topic, partitions=2)
    values = encoded(orders)
    if framed:
        values = [events.confluent_frame(7, v) for v in values]
    events.produce(servers, topic, values)
    options = {"confluent_framing": True} if framed else {}
    driver = variant(tmp_path, "orders_from_kafka", topic, **options)
    run = submit(driver, env_file(tmp_path, tmp_path, plain(servers)))
    assert run.returncode == 0, failure(run)
    extract = next(e for e in run.event("step_finished") if e["stage"] == "extract")
    assert (extract["system"], extract["connection"], extract["topic"]) == (
        "kafka",
        "events",
        topic,
    )
    assert extract["records_in"] == extract["records_out"] == len(orders.orders)
    assert landed_by_status(spark, tmp_path / "out" / "orders_from_kafka") == by_status(orders)


def test_a_value_that_is_not_avro_halts_the_run_with_the_parse_rule(
    servers: str, orders: demo.DemoData, tmp_path: Path
) -> None:
    topic = events.fresh_topic("garbage")
    events.create_topic(servers, topic, partitions=1)
    values = encoded(orders)[:500]
    values.insert(123, NOT_AVRO)
    events.produce(servers, topic, values)
    run = submit(
        variant(tmp_path, "orders_from_kafka", topic),
        env_file(tmp_path, tmp_path, plain(servers)),
    )
    assert run.returncode == 2, failure(run)
    failed = run.event("validation_failed")
    assert len(failed) == 1 and failed[0]["step"] == "orders"
    assert (failed[0]["records"], failed[0]["invalid"]) == (501, 1)
    assert failed[0]["violations"]["parse"] == 1
    [bad] = failed[0]["sample"]
    assert bad["_etlc_violation"] == "parse"
    assert bad["_etlc_corrupt"] == f"partition 0 offset 123: 15 bytes {NOT_AVRO.hex().upper()}"
    assert len(run.event("attempt_started")) == 1  # validation failures are not retried
    assert run.event("run_finished")[-1]["error_kind"] == "validation"
    assert not (tmp_path / "out").exists()


def test_upsert_produces_one_keyed_record_per_order_each_run(
    servers: str, workspace: Workspace, tmp_path: Path
) -> None:
    topic = events.fresh_topic("upsert")
    events.create_topic(servers, topic, partitions=2, config={"cleanup.policy": "compact"})
    driver = variant(tmp_path, "orders_to_kafka", topic)
    env = env_file(tmp_path, workspace.data, plain(servers))
    want = {o.order_id: asdict(o) for o in workspace.data_set.orders if o.status != "CANCELLED"}
    partition_of: dict[bytes, int] = {}
    for run_number in (1, 2):
        run = submit(driver, env)
        assert run.returncode == 0, failure(run)
        load = next(e for e in run.event("step_finished") if e["stage"] == "load")
        assert (load["mode"], load["topic"]) == ("upsert", topic)
        assert load["records_in"] == load["records_out"] == len(want)
        records = events.consume(servers, topic)
        assert len(records) == run_number * len(want)
        latest: dict[bytes, bytes] = {}
        for key, value, partition, _ in sorted(records, key=lambda r: (r[2], r[3])):
            assert partition_of.setdefault(key, partition) == partition  # a key, a partition
            latest[key] = value
        assert len(latest) == len(want)  # distinct keys: one per order
        got = {int(k.decode()): events.decode_all(ORDER_SCHEMA, v) for k, v in latest.items()}
        assert got == want


def test_append_produces_every_record_keyed_by_the_declared_column(
    servers: str, workspace: Workspace, tmp_path: Path
) -> None:
    topic = events.fresh_topic("append")
    events.create_topic(servers, topic, partitions=2)
    driver = variant(
        tmp_path, "orders_to_kafka", topic, mode="append", keys=["customer_id"], sequence_by=None
    )
    run = submit(driver, env_file(tmp_path, workspace.data, plain(servers)))
    assert run.returncode == 0, failure(run)
    live = [asdict(o) for o in workspace.data_set.orders if o.status != "CANCELLED"]
    load = next(e for e in run.event("step_finished") if e["stage"] == "load")
    assert (load["mode"], load["records_in"], load["records_out"]) == (
        "append",
        len(live),
        len(live),
    )
    records = events.consume(servers, topic)
    assert len(records) == len(live)
    got = [(k, events.decode_all(ORDER_SCHEMA, v)) for k, v, _, _ in records]
    assert all(k == str(v["customer_id"]).encode() for k, v in got)
    assert sorted(v["order_id"] for _, v in got) == sorted(o["order_id"] for o in live)
    assert {v["order_id"]: v for _, v in got} == {o["order_id"]: o for o in live}


def test_a_missing_topic_fails_at_once_naming_it(servers: str, tmp_path: Path) -> None:
    topic = events.fresh_topic("missing")
    run = submit(
        variant(tmp_path, "orders_from_kafka", topic),
        env_file(tmp_path, tmp_path, plain(servers)),
    )
    assert run.returncode == 1, failure(run)
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "terminal"
    assert topic in finished["error"] and "events" in finished["error"]
    assert "does not exist" in finished["error"]
    assert len(run.event("attempt_started")) == 1


def test_an_unreachable_broker_is_transient_and_retried(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    topic = events.fresh_topic("down")
    driver = variant(
        tmp_path, "orders_from_kafka", topic, retry={"max_retries": 1, "delay_seconds": 0}
    )
    profile = plain(
        f"127.0.0.1:{port}", **{"default.api.timeout.ms": 2000, "request.timeout.ms": 2000}
    )
    run = submit(driver, env_file(tmp_path, tmp_path, profile))
    assert run.returncode == 1, failure(run)
    failed = run.event("attempt_failed")
    assert [(e["attempt"], e["step"], e["error_kind"]) for e in failed] == [
        (1, "orders", "transient"),
        (2, "orders", "transient"),
    ]
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "transient"
    assert "`events`" in finished["error"] and topic in finished["error"]


def test_sasl_credentials_from_the_vault_never_leak(servers: str, tmp_path: Path) -> None:
    """SASL against the broker's plaintext listener: refused at once, and the password (in
    the JAAS config handed to Spark and the Admin client) is in no log, event or file."""
    topic = events.fresh_topic("sasl")
    events.create_topic(servers, topic, partitions=1)
    vault = tmp_path / "vault.json"
    master = secrets.token_urlsafe(16)
    canaries = seed_vault(vault, MasterKey.from_password(master), ["kafka/events#password"])
    profile = plain(servers, **{"default.api.timeout.ms": 4000, "request.timeout.ms": 3000})
    profile.update(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        username="etl",
        password="vault://kafka/events#password",
    )
    driver = variant(tmp_path, "orders_from_kafka", topic, retry={"max_retries": 0})
    run = submit(
        driver,
        env_file(tmp_path, tmp_path, profile, vault=vault),
        extra_env={"ETLC_VAULT_PASSWORD": master},
    )
    assert run.returncode == 1, failure(run)
    finished = run.event("run_finished")[-1]
    # The broker refuses the SASL handshake: an authentication failure, not retried.
    assert finished["error_kind"] == "authentication", finished
    assert "`events`" in finished["error"] and topic in finished["error"]
    texts = [json.dumps(e) for e in run.events] + [run.stderr]
    texts += [c.decode("utf-8", "replace") for c in files(tmp_path, exclude=[vault]).values()]
    assert_no_leak(texts, canaries)
