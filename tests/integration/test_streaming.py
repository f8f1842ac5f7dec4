"""Streaming drivers against the local broker and PostgreSQL, run in the background.

Each test has a topic and a checkpoint of its own. The events carry event times in a fixed
past range, so which windows close when is decided by the data (the watermark), not by the
wall clock.
"""

from __future__ import annotations

import functools
import json
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests import openlineage_events
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import ROOT, Background, compile_variant, example, submit_jvm_opts
from tests.integration.test_database_loads import services, small_filesystem
from tests.integration.test_ddl import apply, ddl
from tests.integration.test_kafka_postgres import check_lineage

ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def servers() -> str:
    return events.bootstrap()


def background(
    driver: Path,
    env_file: Path,
    log: Path,
    extra_env: dict[str, str] | None = None,
    faults: str | None = None,
) -> Background:
    """The stream ``driver`` running in the background, its JVM with the tests' options."""
    return Background(driver, env_file, log, extra_env, jvm_opts=submit_jvm_opts(), faults=faults)


@functools.cache
def target_ddl(definition: str) -> str:
    """The target of ``definition``'s load, as `etlc ddl` makes it: the streams run into the
    tables etlc itself describes."""
    return ddl(ROOT / "pipelines" / f"{definition}.json")


def reset(creds: dict[str, Any], table: str, statement: str) -> None:
    with db.postgres(creds) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(statement)


def count(creds: dict[str, Any], table: str) -> int:
    return int(db.pg_rows(creds, f"SELECT COUNT(*) FROM {table}")[0][0])


def orders_between(n: int, seed: int, first_id: int, start: datetime, seconds: int) -> list[Any]:
    """``n`` orders whose event times fall in [start, start + seconds)."""
    made = demo.generate(orders=n, customers=100, seed=seed).orders
    return [
        replace(
            o,
            order_id=first_id + i,
            ordered_at=start + timedelta(seconds=(o.order_id * 7919) % seconds),
        )
        for i, o in enumerate(made)
    ]


def produce(servers: str, topic: str, orders: list[Any]) -> None:
    events.produce(servers, topic, [events.encode(ORDER_SCHEMA, asdict(o)) for o in orders])


def stream_env(
    tmp: Path,
    servers: str,
    creds: dict[str, Any],
    vault: Path,
    trigger: str = "1 second",
    **settings: Any,
) -> Path:
    path = db.env_file(
        tmp / "env.json",
        creds,
        vault,
        {},
        # bench/stream_seed.py runs etlc's stream with this file too: its Spark settings stay
        # what the benchmark's hand-written job is compared under (the web UI on).
        spark={"spark.sql.shuffle.partitions": "4"},
        stage_dir=str(tmp / "stage"),
        checkpoint_dir=str(tmp / "checkpoints"),
        trigger_interval=trigger,
        **settings,
    )
    doc = json.loads(path.read_text())
    doc["connections"]["events"] = {"system": "kafka", "bootstrap_servers": servers}
    path.write_text(json.dumps(doc))
    return path


def variant(
    tmp: Path, name: str, topic: str, servers: str, creds: dict[str, Any], **kafka: Any
) -> Path:
    doc = example(name)
    doc["extract"][0].update(topic=topic, **kafka)
    profiles = {**db.profiles(creds), "events": {"system": "kafka", "bootstrap_servers": servers}}
    return compile_variant(tmp, doc, {"connections": profiles})


def per_minute(orders: list[Any]) -> Counter[tuple[Any, ...]]:
    acc: dict[tuple[datetime, str], list[Any]] = defaultdict(lambda: [0, Decimal(0)])
    for o in orders:
        if o.status == "CANCELLED":
            continue
        start = o.ordered_at.replace(second=0, microsecond=0, tzinfo=None)
        acc[(start, o.status)][0] += 1
        acc[(start, o.status)][1] += o.amount
    return Counter(
        (start, start + timedelta(minutes=1), status, n, revenue)
        for (start, status), (n, revenue) in acc.items()
    )


def test_windowed_revenue_lands_once_per_closed_window_and_sigterm_stops_cleanly(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path, spark: Any
) -> None:
    """...and the orders a quarantine rule sets aside on the way are in its folder, and those a
    drop rule leaves out are not in any window, as many as the run counted of each."""
    reset(creds, "order_revenue_per_minute", target_ddl("order_revenue_stream"))
    topic = events.fresh_topic("stream-windows")
    events.create_topic(servers, topic, partitions=2)
    orders = orders_between(3_000, 41, 1, BASE, 300)  # five one-minute windows
    # One later event moves the watermark past the five windows (it stays open itself).
    flush = replace(
        orders[0],
        order_id=999_999,
        status="NEW",
        amount=Decimal("100.00"),
        ordered_at=BASE + timedelta(minutes=10),
    )
    produce(servers, topic, orders)
    produce(servers, topic, [flush])
    modest = {"name": "modest", "check": "amount < 950", "policy": "quarantine"}
    doc = example("order_revenue_stream")
    doc["extract"][0].update(topic=topic, expect={"rules": [modest]})
    not_tiny = {"name": "not_tiny", "check": "amount >= 20", "policy": "drop"}
    doc["transform"][0]["expect"] = {"rules": [not_tiny]}
    profiles = {**db.profiles(creds), "events": {"system": "kafka", "bootstrap_servers": servers}}
    driver = compile_variant(tmp_path, doc, {"connections": profiles})
    kept = [o for o in orders if 20 <= o.amount < 950]
    want = per_minute(kept)
    large = sorted(o.order_id for o in orders if o.amount >= 950)
    tiny = [o for o in orders if o.amount < 20 and o.status != "CANCELLED"]
    aside = tmp_path / "quarantine"
    run = background(
        driver,
        stream_env(tmp_path, servers, creds, vault[0], quarantine_dir=str(aside)),
        tmp_path / "driver.log",
        {"ETLC_VAULT_PASSWORD": vault[1]},
    )
    run.wait_for(
        "every closed window in PostgreSQL",
        lambda: count(creds, "order_revenue_per_minute") >= sum(want.values()),
    )
    held = functools.partial(quarantined, spark, aside / "order_revenue_stream" / "orders")
    run.wait_for("every order set aside", lambda: len(held()) >= len(large), every=3)
    # The progress line of the batch that closed them follows its commit (the listener runs
    # after it), so a SIGTERM sent at once can overtake it: wait for it before the stop.
    run.wait_for(
        "the progress of the batch past the watermark",
        lambda: any(
            p.get("watermark") not in (None, "1970-01-01T00:00:00.000Z")
            for p in run.events("batch_progress")
        ),
    )
    assert run.stop() == 3, run.log.read_text()[-3000:]  # PARTIAL: orders were set aside
    rows = db.pg_rows(
        creds,
        "SELECT window_start, window_end, status, orders, revenue FROM order_revenue_per_minute",
    )
    assert Counter(rows) == want  # each window once, exact counts and sums
    assert held() == [(i, "modest", "orders") for i in large] and large
    [loading, setting_aside] = run.events("query_started")
    assert loading["output_mode"] == "append" and loading["trigger"] == "1 second"
    assert setting_aside["step"] == "quarantine.orders"
    progress = [p for p in run.events("batch_progress") if p["query"] == loading["query"]]
    assert sum(p["input_rows"] for p in progress) == len(orders) + 1
    assert all(
        {"batch_id", "input_rows_per_s", "batch_duration_ms", "state_rows"} <= set(p)
        for p in progress
    )
    assert any(p["watermark"] not in (None, "1970-01-01T00:00:00.000Z") for p in progress)
    assert run.events("stop_requested") and run.events("queries_stopped")
    finished = run.events("run_finished")[-1]
    assert finished["status"] == "PARTIAL"
    # The run's count of the orders set aside is what the folder holds.
    [counted] = [s for s in finished["steps"] if s["step"] == "orders"]
    assert counted["extra"]["quarantined"] == len(large)
    assert counted["extra"]["expectations"]["modest"] == {
        "policy": "quarantine",
        "failed": len(large),
    }
    [live] = [s for s in finished["steps"] if s["step"] == "live"]
    assert live["extra"]["dropped"] == len(tiny) > 0


def test_a_crashed_driver_restarts_from_its_checkpoint_and_every_event_lands_exactly_once(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    reset(creds, "order_events", target_ddl("order_events_stream"))
    topic = events.fresh_topic("stream-once")
    events.create_topic(servers, topic, partitions=2)
    orders = orders_between(12_000, 43, 1, BASE, 3_600)
    produce(servers, topic, orders)
    # Small batches, so the crash lands between commits of a run that has more to do.
    driver = variant(
        tmp_path, "order_events_stream", topic, servers, creds, max_offsets_per_trigger=1_000
    )
    env = stream_env(tmp_path, servers, creds, vault[0], trigger="200 milliseconds")
    extra = {"ETLC_VAULT_PASSWORD": vault[1]}
    live = sorted(o.order_id for o in orders if o.status != "CANCELLED")

    first = background(driver, env, tmp_path / "first.log", extra)
    first.wait_for("two committed batches", lambda: len(first.events("batch_committed")) >= 2)
    first.crash()
    landed_before = count(creds, "order_events")
    assert 0 < landed_before < len(live)

    second = background(driver, env, tmp_path / "second.log", extra)
    second.wait_for("every event", lambda: count(creds, "order_events") >= len(live))
    more = orders_between(500, 44, 100_000, BASE, 3_600)
    produce(servers, topic, more)
    live += sorted(o.order_id for o in more if o.status != "CANCELLED")
    second.wait_for("the later events", lambda: count(creds, "order_events") >= len(live))
    assert second.stop() == 0
    ids = [r[0] for r in db.pg_rows(creds, "SELECT order_id FROM order_events")]
    assert sorted(ids) == sorted(live)  # none lost, none twice
    epochs = {e["epoch"] for e in first.events("query_started") + second.events("query_started")}
    assert len(epochs) == 1  # the restart resumed the same checkpoint

    # A deleted checkpoint starts a new epoch: its batch ids start over, and none of them is
    # mistaken for a batch of the old epoch (nothing is skipped).
    shutil.rmtree(tmp_path / "checkpoints")
    reset(creds, "order_events", target_ddl("order_events_stream"))
    third = background(driver, env, tmp_path / "third.log", extra)
    third.wait_for("a full replay", lambda: count(creds, "order_events") >= len(live))
    assert third.stop() == 0
    assert sorted(r[0] for r in db.pg_rows(creds, "SELECT order_id FROM order_events")) == sorted(
        live
    )
    [new_epoch] = {e["epoch"] for e in third.events("query_started")}
    assert new_epoch not in epochs
    assert not third.events("batch_skipped")


def event_ids(creds: dict[str, Any], system: str) -> list[int]:
    query = "SELECT order_id FROM order_events"
    rows = db.my_rows(creds, query) if system == "mysql" else db.pg_rows(creds, query)
    return sorted(int(r[0]) for r in rows)


@pytest.mark.parametrize("system", ["postgres", "mysql"])
def test_a_batch_committed_just_before_a_crash_is_skipped_on_replay(
    servers: str,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    tmp_path: Path,
    system: str,
    *,
    spark: Any,
) -> None:
    """The worst moment: the rows and the marker are committed, Spark has not recorded the
    batch as done. The restarted query replays the batch; the marker makes it a no-op. The
    records a quarantine rule sets aside meanwhile land in its folder once each."""
    topic = events.fresh_topic("stream-replay")
    events.create_topic(servers, topic, partitions=1)
    orders = orders_between(3_000, 46, 1, BASE, 3_600)
    produce(servers, topic, orders)
    doc = example("order_events_stream")
    doc["extract"][0].update(topic=topic, max_offsets_per_trigger=1_000)
    doc["load"][0].update(type=system, connection="crm" if system == "mysql" else "warehouse")
    # A drop expectation on the way: across the crash and the replay, the target holds
    # exactly the records that meet it.
    small = {"name": "small", "check": "amount < 900", "policy": "drop"}
    # Records of `live` set aside go to a table of the same database (those of 900 and more
    # break `small` too: set aside, not dropped); with PostgreSQL, the source's own go to the
    # quarantine folder first (once is enough for the folder's part: a query of its own).
    capped = {"name": "capped", "check": "amount < 850", "policy": "quarantine"}
    doc["transform"][0]["expect"] = {"rules": [small, capped]}
    folder = system == "postgres"
    if folder:
        modest = {"name": "modest", "check": "amount < 950", "policy": "quarantine"}
        doc["extract"][0]["expect"] = {"rules": [modest]}
    rejected = {**doc["load"][0], "id": "rejected", "quarantined": True, "table": "live_rejected"}
    doc["load"].append(rejected)
    kafka = {"system": "kafka", "bootstrap_servers": servers}
    driver = compile_variant(
        tmp_path, doc, {"connections": {**db.profiles(creds), "events": kafka}}
    )
    # Both targets as `etlc ddl` makes them, in the load's own dialect.
    apply(system, creds, ddl(tmp_path / "defs" / f"{doc['name']}.json"))
    aside = tmp_path / "quarantine"
    env = stream_env(
        tmp_path, servers, creds, vault[0], trigger="200 milliseconds", quarantine_dir=str(aside)
    )
    extra = {"ETLC_VAULT_PASSWORD": vault[1]}
    crashing = background(
        driver, env, tmp_path / "first.log", extra, faults="crash-after-commit:load_1_live:1"
    )
    assert crashing.proc.wait(240) != 0
    # Batch 1 reached the database; the driver died before it could even log that.
    committed = [e for e in crashing.events("batch_committed") if e["step"] == "load_1_live"]
    assert [e["batch_id"] for e in committed] == [0]
    live = sorted(o.order_id for o in orders if o.status != "CANCELLED" and o.amount < 850)
    top = 950 if folder else 10**9
    large = sorted(o.order_id for o in orders if o.amount >= top)
    capped_ids = sorted(
        o.order_id for o in orders if o.status != "CANCELLED" and 850 <= o.amount < top
    )
    held = functools.partial(quarantined, spark, aside / doc["name"] / "orders")
    restarted = background(driver, env, tmp_path / "second.log", extra)
    restarted.wait_for("every event", lambda: len(event_ids(creds, system)) >= len(live))
    restarted.wait_for("every set-aside event", lambda: len(held()) >= len(large), every=3)
    in_table = functools.partial(rejected_rows, creds, system)
    restarted.wait_for("every rejected event", lambda: len(in_table()) >= len(capped_ids))
    assert restarted.stop() == 3  # PARTIAL: records were dropped and set aside
    assert held() == [(i, "modest", "orders") for i in large] and (large or not folder)
    # Through the crash, each micro-batch of the quarantined load committed with its marker.
    assert in_table() == [(i, "capped", "live") for i in capped_ids] and capped_ids
    skipped = [e for e in restarted.events("batch_skipped") if e["step"] == "load_1_live"]
    assert [e["batch_id"] for e in skipped] == [1]
    assert event_ids(creds, system) == live
    # Each query's progress counts the steps it reads (the quarantine query: the source's).
    progress = [p.get("expectations", {}) for p in restarted.events("batch_progress")]
    counted = [p["live"] for p in progress if "live" in p]
    assert all(c["small"]["policy"] == "drop" for c in counted) and counted
    held_counts = [p["orders"]["modest"] for p in progress if "orders" in p]
    assert all(c["policy"] == "quarantine" for c in held_counts) and (held_counts or not folder)
    [finished] = restarted.events("run_finished")
    assert finished["status"] == "PARTIAL"


def rejected_rows(creds: dict[str, Any], system: str) -> list[tuple[int, str, str]]:
    query = "SELECT order_id, _etlc_rule, _etlc_step FROM live_rejected"
    rows = db.my_rows(creds, query) if system == "mysql" else db.pg_rows(creds, query)
    return sorted((int(r[0]), str(r[1]), str(r[2])) for r in rows)


def quarantined(spark: Any, folder: Path) -> list[tuple[int, str, str]]:
    """A stream's quarantine folder, as Spark's file sink log has committed it."""
    try:
        df = spark.read.format("avro").load(str(folder))
    except Exception:  # no micro-batch has committed a file yet
        return []
    rows = df.select("order_id", "_etlc_rule", "_etlc_step").collect()
    return sorted(tuple(r) for r in rows)


@dataclass
class LiveStream:
    """order_events_stream on a fresh topic, its first 1,000 events landed in PostgreSQL."""

    servers: str
    creds: dict[str, Any]
    topic: str
    driver: Path
    env: Path
    extra: dict[str, str]
    run: Background
    live: list[int]  # the order ids the table must hold, each once

    @classmethod
    def start(
        cls,
        name: str,
        seed: int,
        ctx: tuple[str, dict[str, Any], tuple[Path, str], Path],
        checkpoint_dir: Path | None = None,
    ) -> LiveStream:
        servers, creds, vault, tmp = ctx
        reset(creds, "order_events", target_ddl("order_events_stream"))
        topic = events.fresh_topic(name)
        events.create_topic(servers, topic, partitions=2)
        first = orders_between(1_000, seed, 1, BASE, 600)
        produce(servers, topic, first)
        driver = variant(tmp, "order_events_stream", topic, servers, creds)
        env = stream_env(tmp, servers, creds, vault[0])
        if checkpoint_dir is not None:
            doc = json.loads(env.read_text())
            doc["etlc"]["checkpoint_dir"] = str(checkpoint_dir)
            env.write_text(json.dumps(doc))
        extra = {"ETLC_VAULT_PASSWORD": vault[1]}
        run = background(driver, env, tmp / "driver.log", extra)
        live = sorted(o.order_id for o in first if o.status != "CANCELLED")
        run.wait_for("the first events", lambda: count(creds, "order_events") >= len(live))
        return cls(servers, creds, topic, driver, env, extra, run, live)

    def produce_more(self, seed: int) -> None:
        later = orders_between(1_000, seed, 10_000, BASE, 600)
        produce(self.servers, self.topic, later)
        self.live += sorted(o.order_id for o in later if o.status != "CANCELLED")

    def landed(self) -> int:
        return count(self.creds, "order_events")

    def ids(self) -> list[int]:
        return sorted(r[0] for r in db.pg_rows(self.creds, "SELECT order_id FROM order_events"))


def test_postgresql_down_for_ten_seconds_is_retried_and_the_stream_catches_up(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    stream = LiveStream.start("stream-outage", 47, (servers, creds, vault, tmp_path))
    run = stream.run
    services("crash", "postgres")
    try:
        stream.produce_more(48)
        run.wait_for("a failed attempt", lambda: bool(run.events("attempt_failed")))
        time.sleep(10)
    finally:
        services("up", "postgres")
    run.wait_for(
        "the events produced during the outage", lambda: stream.landed() >= len(stream.live)
    )
    assert run.stop() == 0
    failed = run.events("attempt_failed")
    assert failed and all(e["error_kind"] == "transient" for e in failed)
    assert stream.ids() == stream.live
    # etlc's lines say what failed; Spark's would repeat it with the batch function's traceback.
    assert "Traceback" not in run.log.read_text(encoding="utf-8")


CUSTOMERS_DDL = (
    "CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
    "country TEXT NOT NULL, segment TEXT NOT NULL)"
)


def enriched(orders: list[Any], customers: list[Any]) -> dict[int, tuple[Any, ...]]:
    """Per live order with a known customer, its latest event (greatest ordered_at)."""
    known = {c.customer_id: c for c in customers}
    latest: dict[int, Any] = {}
    for o in orders:
        if o.status == "CANCELLED" or o.customer_id not in known:
            continue
        if o.order_id not in latest or o.ordered_at >= latest[o.order_id].ordered_at:
            latest[o.order_id] = o
    return {
        k: (
            o.customer_id,
            known[o.customer_id].country,
            known[o.customer_id].segment,
            o.amount,
            o.status,
            o.ordered_at.replace(tzinfo=None),
        )
        for k, o in latest.items()
    }


def landed_enriched(creds: dict[str, Any]) -> dict[int, tuple[Any, ...]]:
    rows = db.pg_rows(
        creds,
        "SELECT order_id, customer_id, country, segment, amount, status, ordered_at "
        "FROM enriched_orders",
    )
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture
def lineage() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local OpenLineage endpoint: its URL, and what drivers POSTed to it."""
    with openlineage_events.receiver() as endpoint:
        yield endpoint


def test_events_enriched_with_postgresql_are_upserted_and_a_later_event_wins(
    servers: str,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    tmp_path: Path,
    lineage: tuple[str, list[dict[str, Any]]],
) -> None:
    customers = demo.generate(orders=1, customers=90, seed=49).customers  # ids 1..90
    with db.postgres(creds) as conn:
        for table, statement in (
            ("customers", CUSTOMERS_DDL),
            ("enriched_orders", target_ddl("order_enrichment_stream")),
        ):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s)",
                [(c.customer_id, c.name, c.country, c.segment) for c in customers],
            )
    topic = events.fresh_topic("stream-enrich")
    events.create_topic(servers, topic, partitions=2)
    orders = orders_between(2_000, 50, 1, BASE, 3_600)  # customers 1..102: some unknown
    produce(servers, topic, orders)
    driver = variant(tmp_path, "order_enrichment_stream", topic, servers, creds)
    url, received = lineage
    env = stream_env(
        tmp_path, servers, creds, vault[0], openlineage_url=url, openlineage_interval="2 seconds"
    )
    run = background(driver, env, tmp_path / "driver.log", {"ETLC_VAULT_PASSWORD": vault[1]})
    want = enriched(orders, customers)
    run.wait_for("the enriched orders", lambda: count(creds, "enriched_orders") >= len(want))
    # Later events for landed orders (a day later), and a stale one (a day earlier) that
    # must not overwrite what is there.
    landed_ids = sorted(want)
    updates = [
        replace(
            o, status="SHIPPED", amount=o.amount + 1, ordered_at=o.ordered_at + timedelta(days=1)
        )
        for o in orders
        if o.order_id in set(landed_ids[:40])
    ]
    stale = [
        replace(
            o, status="NEW", amount=Decimal("0.01"), ordered_at=o.ordered_at - timedelta(days=1)
        )
        for o in orders
        if o.order_id in set(landed_ids[40:50])
    ]
    produce(servers, topic, updates + stale)
    want = enriched(orders + updates + stale, customers)
    produced = len(orders) + len(updates) + len(stale)
    # Every event consumed and its batch committed (progress follows the commit).
    run.wait_for(
        "every event",
        lambda: sum(p["input_rows"] for p in run.events("batch_progress")) >= produced,
    )
    assert run.stop() == 0
    assert landed_enriched(creds) == want
    sent = check_lineage(received, "order_enrichment_stream", servers, creds, topic)
    kinds = [e["eventType"] for e in sent]
    assert set(kinds[1:-1]) == {"RUNNING"} and kinds[1:-1], kinds  # while it ran
    assert sent[-1]["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    # The same events as the driver's log lines.
    assert [e["openlineage"] for e in run.events("openlineage")] == sent
    [started] = run.events("query_started")
    assert started["output_mode"] == "update"
    customers_step = next(e for e in run.events("step_finished") if e["step"] == "customers")
    assert customers_step["records_in"] == len(customers)


def test_a_stream_of_a_topic_pattern_produced_to_kafka_carries_every_live_event(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    # Two source topics, read through one pattern.
    source, target = events.fresh_topic("stream-in"), events.fresh_topic("stream-out")
    events.create_topic(servers, f"{source}.eu", partitions=2)
    events.create_topic(servers, f"{source}.us", partitions=1)
    events.create_topic(servers, target, partitions=2)
    orders = orders_between(1_500, 51, 1, BASE, 600)
    produce(servers, f"{source}.eu", orders[:1_000])
    produce(servers, f"{source}.us", orders[1_000:])
    doc = example("order_events_stream")
    del doc["extract"][0]["topic"]
    doc["extract"][0]["topic_pattern"] = source.replace("-", "[-]") + r"\.(eu|us)"
    doc["load"] = [
        {
            "input": "live",
            "type": "kafka",
            "connection": "events",
            "topic": target,
            "mode": "append",
            "keys": ["order_id"],
        }
    ]
    kafka = {"system": "kafka", "bootstrap_servers": servers}
    driver = compile_variant(
        tmp_path, doc, {"connections": {**db.profiles(creds), "events": kafka}}
    )
    run = background(
        driver,
        stream_env(tmp_path, servers, creds, vault[0]),
        tmp_path / "driver.log",
        {"ETLC_VAULT_PASSWORD": vault[1]},
    )
    live = {o.order_id: asdict(o) for o in orders if o.status != "CANCELLED"}
    run.wait_for(
        "every live event in the target topic",
        lambda: sum(e.get("input_rows", 0) for e in run.events("batch_progress")) >= len(orders),
    )
    assert run.stop() == 0
    records = events.consume(servers, target)
    got = {int(k.decode()): events.decode_all(ORDER_SCHEMA, v) for k, v, _, _ in records}
    assert len(records) == len(live) and got == live


def test_a_record_that_is_not_avro_halts_the_stream_with_its_offset(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    reset(creds, "order_events", target_ddl("order_events_stream"))
    topic = events.fresh_topic("stream-garbage")
    events.create_topic(servers, topic, partitions=1)
    good = orders_between(200, 45, 1, BASE, 600)
    values = [events.encode(ORDER_SCHEMA, asdict(o)) for o in good]
    values.insert(150, b"not avro at all")
    events.produce(servers, topic, values)
    driver = variant(tmp_path, "order_events_stream", topic, servers, creds)
    run = background(
        driver,
        stream_env(tmp_path, servers, creds, vault[0]),
        tmp_path / "driver.log",
        {"ETLC_VAULT_PASSWORD": vault[1]},
    )
    assert run.proc.wait(240) == 2, run.log.read_text()[-3000:]
    [failed] = run.events("validation_failed")
    assert failed["step"] == "orders" and failed["violations"] == {"parse": 1}
    assert failed["sample"][0]["position"] == "partition 0 offset 150"
    assert run.events("run_finished")[-1]["error_kind"] == "validation"
    assert len(run.events("attempt_started")) == 1  # a bad record is not retried
    assert count(creds, "order_events") == 0  # the batch holding it wrote nothing


def test_kafka_records_deleted_before_the_stream_read_them_halt_it_unless_told_to_go_on(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The stream reads 1,000 events and stops; 1,000 more arrive and the first 600 of them are
    deleted (retention) before it restarts from its checkpoint."""
    reset(creds, "order_events", target_ddl("order_events_stream"))
    topic = events.fresh_topic("stream-loss")
    events.create_topic(servers, topic, partitions=1)
    read, unread = (
        orders_between(1_000, 49, 1, BASE, 600),
        orders_between(1_000, 50, 5_000, BASE, 600),
    )
    produce(servers, topic, read)
    env = stream_env(tmp_path, servers, creds, vault[0])
    extra = {"ETLC_VAULT_PASSWORD": vault[1]}
    driver = variant(tmp_path, "order_events_stream", topic, servers, creds)
    first = background(driver, env, tmp_path / "first.log", extra)
    live = sorted(o.order_id for o in read if o.status != "CANCELLED")
    first.wait_for("the first events", lambda: count(creds, "order_events") >= len(live))
    assert first.stop() == 0
    produce(servers, topic, unread)
    events.delete_before(servers, topic, 0, 1_600)

    halted = background(driver, env, tmp_path / "halted.log", extra)
    assert halted.proc.wait(240) == 1, halted.log.read_text()[-3000:]
    [finished] = halted.events("run_finished")
    assert (finished["error_kind"], finished["attempts"]) == ("data_loss", 1)
    assert f"{topic}-0: offsets [1000, 2000) could not be read" in finished["error"]
    assert count(creds, "order_events") == len(live)

    lenient = variant(
        tmp_path, "order_events_stream", topic, servers, creds, fail_on_data_loss=False
    )
    goes_on = background(lenient, env, tmp_path / "goes_on.log", extra)
    kept = live + sorted(o.order_id for o in unread[600:] if o.status != "CANCELLED")
    # The warning comes from the query's progress event, which Spark posts after the batch
    # has committed: a stop in between would cut it off.
    goes_on.wait_for(
        "the events still in Kafka and the warning of what was skipped",
        lambda: (
            count(creds, "order_events") >= len(kept) and bool(goes_on.events("offsets_skipped"))
        ),
    )
    assert goes_on.stop() == 0
    [skipped] = goes_on.events("offsets_skipped")
    assert (skipped["step"], skipped["topic"], skipped["skipped"]) == ("orders", topic, 600)
    assert skipped["ranges"] == {f"{topic}-0": [1_000, 2_000]}
    assert sorted(r[0] for r in db.pg_rows(creds, "SELECT order_id FROM order_events")) == kept


def test_a_full_checkpoint_filesystem_stops_the_stream_naming_it_and_a_restart_loses_nothing(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    with small_filesystem(tmp_path / "small", "4m") as small:
        checkpoints = small / "checkpoints"
        stream = LiveStream.start("stream-full", 51, (servers, creds, vault, tmp_path), checkpoints)
        filler = small / "filler"
        with filler.open("wb") as out, suppress(OSError):  # until the filesystem is full
            while True:
                out.write(b"\0" * 65_536)
        stream.produce_more(52)
        run = stream.run
        assert run.proc.wait(240) == 1, run.log.read_text()[-3000:]
        [finished] = run.events("run_finished")
        assert finished["error_kind"] == "no_space" and finished["attempts"] == 1
        assert str(checkpoints) in finished["error"]
        assert stream.landed() < len(stream.live)  # the later events are not in yet
        filler.unlink()
        again = background(stream.driver, stream.env, tmp_path / "again.log", stream.extra)
        again.wait_for("every event", lambda: stream.landed() >= len(stream.live))
        assert again.stop() == 0
    assert stream.ids() == stream.live  # none lost, none twice


def test_the_kafka_broker_crashed_and_restarted_under_a_stream_loses_and_doubles_nothing(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    stream = LiveStream.start("stream-broker", 53, (servers, creds, vault, tmp_path))
    run = stream.run
    services("crash", "kafka")
    try:
        run.wait_for("a failed attempt", lambda: bool(run.events("attempt_failed")))
    finally:
        services("up", "kafka")
    stream.produce_more(54)
    run.wait_for(
        "the events produced after the restart", lambda: stream.landed() >= len(stream.live)
    )
    assert run.stop() == 0
    failed = run.events("attempt_failed")
    assert [e["error_kind"] for e in failed] == ["transient"] * len(failed), failed
    assert all("kafka connection `events`" in e["error"] for e in failed), failed
    assert stream.ids() == stream.live
