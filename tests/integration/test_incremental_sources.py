"""Incremental extracts of a Kafka topic (by offsets) and of an S3 folder (by files), through
the compiled examples and spark-submit: each run appends each new event or file once, and a
run killed before its load committed leaves the next run to read the same again. Each test
has a topic, folder and target table of its own, so that the file runs beside the tests of
other files (see scripts/test.sh)."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from etlc import demo
from tests.integration import databases as db
from tests.integration import events
from tests.integration import objectstore as store
from tests.integration.conftest import ROOT, Submission, compile_variant, example, submit
from tests.integration.test_database_loads import CHECK_ENV, COLUMNS, TIMESTAMP, Row, as_row
from tests.integration.test_incremental import read
from tests.integration.test_s3 import lake_profile

ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))


def high_watermarks(servers: str, topic: str) -> dict[int, int]:
    """Each partition of ``topic`` and the offset after its last record."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": servers, "group.id": f"wm-{uuid.uuid4().hex}"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in (0, 1)
        }
    finally:
        consumer.close()


def failure(run: Submission) -> str:
    return json.dumps(run.events[-3:], indent=1) + "\n" + run.stderr[-3000:]


def fresh_target(creds: dict[str, Any], table: str) -> None:
    """``table`` made in PostgreSQL, with no key (a row written twice would show)."""
    with db.postgres(creds) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(
            f"CREATE TABLE {table} (order_id BIGINT NOT NULL, customer_id BIGINT NOT NULL, "
            "amount DECIMAL(12, 2) NOT NULL, status VARCHAR(16) NOT NULL, ordered_at "
            f"{TIMESTAMP['postgres']} NOT NULL, coupon VARCHAR(16))"
        )


def landed(creds: dict[str, Any], table: str) -> list[Row]:
    return sorted(db.pg_rows(creds, f"SELECT {COLUMNS} FROM {table}"))


def kept_position(creds: dict[str, Any], pipeline: str, load: str, extract: str) -> Any:
    """The position ``pipeline`` keeps in PostgreSQL for ``load`` and ``extract``."""
    [(kept,)] = db.pg_rows(
        creds,
        "SELECT position_json FROM etlc_incremental_state WHERE pipeline = "
        f"'{pipeline}' AND load_step = '{load}' AND extract_step = '{extract}'",
    )
    return json.loads(kept)


def variant(
    tmp: Path, creds: dict[str, Any], vault: Path, doc: dict[str, Any], extra: dict[str, Any]
) -> tuple[Path, Path]:
    """``doc`` named and compiled for this test, with the connections ``extra`` beside the
    databases'; its driver and environment file."""
    doc["name"] = f"{doc['name']}_{uuid.uuid4().hex[:8]}"  # positions of its own
    connections = {**CHECK_ENV["connections"], **extra}
    driver = compile_variant(tmp, doc, {**CHECK_ENV, "connections": connections})
    env = db.env_file(tmp / "env.json", creds, vault, {}, stage_dir=str(tmp / "stage"))
    with_extra = json.loads(env.read_text(encoding="utf-8"))
    with_extra["connections"].update(extra)
    env.write_text(json.dumps(with_extra), encoding="utf-8")
    return driver, env


def test_a_topic_read_by_offsets_appends_each_new_event_once(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The example order_events_incremental on a two-partition topic of its own, its offsets
    committed in the rows' transaction."""
    servers = events.bootstrap()
    topic = events.fresh_topic("incremental")
    events.create_topic(servers, topic, partitions=2)
    table = f"events_{uuid.uuid4().hex[:8]}"
    fresh_target(creds, table)
    doc = example("order_events_incremental")
    doc["extract"][0]["topic"] = topic
    doc["load"][0]["table"] = table
    kafka = {"events": {"system": "kafka", "bootstrap_servers": servers}}
    driver, env = variant(tmp_path, creds, vault[0], doc, kafka)
    secret = {"ETLC_VAULT_PASSWORD": vault[1]}
    orders = demo.generate(orders=150, customers=20, seed=73).orders

    def offsets() -> int:
        partitions = kept_position(creds, doc["name"], "load_1_events", "events")[topic]
        assert sorted(partitions) == ["0", "1"]
        return sum(partitions.values())

    def produce(part: list[demo.Order]) -> None:
        events.produce(servers, topic, [events.encode(ORDER_SCHEMA, asdict(o)) for o in part])

    produce(orders[:100])
    first = submit(driver, env, extra_env=secret)
    assert first.returncode == 0, first.stderr[-3000:]
    assert read(first)["records"] == 100 and "after" not in read(first)
    assert landed(creds, table) == sorted(as_row(o) for o in orders[:100])
    assert offsets() == 100

    produce(orders[100:])
    killed = submit(driver, env, extra_env=secret, faults="killed-before-commit:load_1_events:0")
    assert killed.returncode != 0
    assert landed(creds, table) == sorted(as_row(o) for o in orders[:100]) and offsets() == 100
    again = submit(driver, env, extra_env=secret)
    assert again.returncode == 0, again.stderr[-3000:]
    assert read(again)["records"] == 50  # the same 50 again, from the committed offsets
    assert landed(creds, table) == sorted(as_row(o) for o in orders)  # every event once
    assert offsets() == 150

    # Retention takes records the next run was to read: it stops, writing nothing, and says
    # how to skip them.
    produce(orders[:20])
    for partition, end in high_watermarks(servers, topic).items():
        events.delete_before(servers, topic, partition, end)
    lost = submit(driver, env, extra_env=secret)
    assert lost.returncode != 0
    [finished] = lost.event("run_finished")
    assert finished["error_kind"] == "data_loss", failure(lost)
    assert "etlc state reset" in finished["error"] and offsets() == 150
    assert landed(creds, table) == sorted(as_row(o) for o in orders)


def test_an_s3_folder_read_by_files_appends_each_new_file_once(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The example orders_s3_incremental on a folder of its own: its files listed by name
    through S3A, the files read committed in the rows' transaction."""
    s3 = store.connect(creds)
    store.ensure_buckets(s3, "raw")
    prefix = f"incremental-{uuid.uuid4().hex[:8]}/orders"
    table = f"landed_{uuid.uuid4().hex[:8]}"
    fresh_target(creds, table)
    doc = example("orders_s3_incremental")
    doc["extract"][0]["path"] = f"s3a://raw/{prefix}/"
    doc["load"][0]["table"] = table
    lake = {"lake": lake_profile(creds["s3"]["endpoint"])}
    driver, env = variant(tmp_path, creds, vault[0], doc, lake)
    secret = {"ETLC_VAULT_PASSWORD": vault[1]}
    orders = demo.generate(orders=150, customers=20, seed=74).orders

    def put(name: str, part: list[demo.Order]) -> None:
        s3.put_object(Bucket="raw", Key=f"{prefix}/{name}", Body=store.orders_csv(part))

    def seen() -> list[str]:
        kept = kept_position(creds, doc["name"], "load_1_orders", "orders")
        return sorted(p.rsplit("/", 1)[-1] for p in kept["seen"])

    put("a.csv", orders[:60])
    put("b.csv", orders[60:100])
    put("_SUCCESS", [])  # left out, as Spark leaves it out of a folder
    first = submit(driver, env, extra_env=secret)
    assert first.returncode == 0, first.stderr[-3000:]
    assert read(first)["records"] == 100
    assert landed(creds, table) == sorted(as_row(o) for o in orders[:100])
    assert seen() == ["a.csv", "b.csv"]  # modified within the lookback: kept by name

    put("c.csv", orders[100:])
    killed = submit(driver, env, extra_env=secret, faults="killed-before-commit:load_1_orders:0")
    assert killed.returncode != 0
    assert landed(creds, table) == sorted(as_row(o) for o in orders[:100])
    assert seen() == ["a.csv", "b.csv"]
    again = submit(driver, env, extra_env=secret)
    assert again.returncode == 0, again.stderr[-3000:]
    assert read(again)["records"] == 50  # c.csv again, and only it
    assert landed(creds, table) == sorted(as_row(o) for o in orders)  # every order once
    assert seen() == ["a.csv", "b.csv", "c.csv"]
