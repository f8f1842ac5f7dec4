"""The seed's streaming scenario under a steady load: Kafka -> windowed aggregation -> PostgreSQL.

Compiles ``pipelines/order_revenue_stream.json`` for a fresh topic, starts the driver through
its generated submit script, produces order events at a fixed rate for a fixed time with
confluent-kafka (payloads Avro-encoded ahead of time, one set per second of event time, so
the producer spends its time producing), stops the driver with SIGTERM and summarises the
driver's own ``batch_progress`` lines after the warm-up: consumed events/s, and the batches'
end-to-end latency (a record's Kafka timestamp to its batch's commit).

Run with the services up (``make services-up``) and the venv's Python::

    .venv/bin/python -m bench.stream_seed --rate 50000 --seconds 180 --warmup 30
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.procstat import Sampler
from etlc import demo
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import Background, compile_variant, example
from tests.integration.test_streaming import stream_env

ROOT = Path(__file__).resolve().parents[1]
ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))
TABLE_DDL = (
    "CREATE TABLE order_revenue_per_minute (window_start TIMESTAMP NOT NULL, "
    "window_end TIMESTAMP NOT NULL, status TEXT NOT NULL, orders BIGINT NOT NULL, "
    "revenue NUMERIC(22, 2))"
)
DISTINCT_PER_SECOND = 1_000  # distinct payloads per second of event time, each sent rate/1000 times


def payloads_for(second: int, base: list[demo.Order]) -> list[bytes]:
    at = datetime.fromtimestamp(second, UTC)
    return [events.encode(ORDER_SCHEMA, asdict(replace(o, ordered_at=at))) for o in base]


def produce_steadily(servers: str, topic: str, rate: int, seconds: float) -> dict[str, Any]:
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": servers,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 2_000_000,
        }
    )
    base = demo.generate(orders=DISTINCT_PER_SECOND, customers=500, seed=5).orders
    started = time.monotonic()
    sent = 0
    current, batch = -1, [b""]
    while (elapsed := time.monotonic() - started) < seconds:
        second = int(time.time())
        if second != current:
            current, batch = second, payloads_for(second, base)
        due = int(rate * elapsed)
        while sent < due:
            try:
                producer.produce(topic, value=batch[sent % len(batch)])
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    producer.flush(60)
    return {"sent": sent, "seconds": round(time.monotonic() - started, 1)}


def summarise(progress: list[dict[str, Any]], started: float, warmup: float) -> dict[str, Any]:
    def at(p: dict[str, Any]) -> float:
        return datetime.fromisoformat(p["ts"].replace("Z", "+00:00")).timestamp()

    steady = [p for p in progress if at(p) >= started + warmup and p.get("latency_ms")]
    if not steady:
        return {"batches": 0}
    p95s = sorted(p["latency_ms"]["p95"] for p in steady)
    rows = sum(p["input_rows"] for p in steady)
    span = at(steady[-1]) - at(steady[0]) or 1.0
    return {
        "batches": len(steady),
        "events_per_s": round(rows / span),
        "latency_p50_ms_median": statistics.median(p["latency_ms"]["p50"] for p in steady),
        "latency_p95_ms_median": statistics.median(p95s),
        "latency_p95_ms_p95": p95s[min(len(p95s) - 1, int(0.95 * len(p95s)))],
        "latency_max_ms": max(p["latency_ms"]["max"] for p in steady),
        "batch_duration_ms_median": statistics.median(p["batch_duration_ms"] for p in steady),
        "state_rows_last": steady[-1]["state_rows"],
    }


def run(
    rate: int, seconds: float, warmup: float, partitions: int = 2, trigger: str = "1 second"
) -> dict[str, Any]:
    creds = db.credentials()
    servers = events.bootstrap()
    work = Path(tempfile.mkdtemp(prefix="etlc-stream-bench-"))
    vault = work / "vault.json"
    master = db.seed_vault(vault, creds)
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS order_revenue_per_minute")
        conn.execute(TABLE_DDL)
    topic = events.fresh_topic("bench")
    events.create_topic(servers, topic, partitions=partitions)
    doc = example("order_revenue_stream")
    doc["extract"][0].update(topic=topic, starting_offsets="latest")
    kafka = {"system": "kafka", "bootstrap_servers": servers}
    driver = compile_variant(work, doc, {"connections": {**db.profiles(creds), "events": kafka}})
    env = stream_env(work, servers, creds, vault, trigger)

    driver_run = Background(driver, env, work / "driver.log", {"ETLC_VAULT_PASSWORD": master})
    driver_run.wait_for(
        "the query to start", lambda: bool(driver_run.events("query_started")), timeout=180
    )
    sampler = Sampler(driver_run.proc.pid).start()
    started = time.time()
    produced = produce_steadily(servers, topic, rate, seconds)
    time.sleep(5)  # let the last batches commit
    usage = sampler.stop()
    code = driver_run.stop()
    return {
        "scenario": "streaming",
        "rate_target": rate,
        "produced": produced,
        "driver_exit": code,
        **summarise(driver_run.events("batch_progress"), started, warmup),
        "driver_usage": usage,
        "seed_floor_p95_ms": 5_000,
        "target_p95_ms": 2_000,
        "driver_log": str(driver_run.log),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=180, help="how long to produce")
    parser.add_argument("--warmup", type=float, default=30, help="seconds left out of the figures")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--trigger", default="1 second")
    args = parser.parse_args(argv)
    report = run(args.rate, args.seconds, args.warmup, args.partitions, args.trigger)
    print(json.dumps(report, indent=2))
    return 0 if report["driver_exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
