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
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeAlias

from bench import jobs
from bench.procstat import Sampler
from etlc import demo
from etlc.cli import local_submit_env
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import Background, compile_variant, example
from tests.integration.test_streaming import stream_env

ROOT = Path(__file__).resolve().parents[1]
DEFINITION = ROOT / "pipelines" / "order_revenue_stream.json"
SEED_MAX_OFFSETS = json.loads(DEFINITION.read_text(encoding="utf-8"))["extract"][0][
    "max_offsets_per_trigger"
]
ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))
TABLE_DDL = (
    "CREATE TABLE order_revenue_per_minute (window_start TIMESTAMP NOT NULL, "
    "window_end TIMESTAMP NOT NULL, status TEXT NOT NULL, orders BIGINT NOT NULL, "
    "revenue NUMERIC(22, 2))"
)
DISTINCT_PER_SECOND = 1_000  # distinct payloads per second of event time, each sent rate/1000 times


def payloads_for(second: int, base: list[demo.Order]) -> list[bytes]:
    at = datetime.fromtimestamp(second, timezone.utc)
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


def at(event: dict[str, Any]) -> float:
    """An event's time (its ``ts``), in seconds since the epoch."""
    return float(datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp())


def steady_after(
    progress: list[dict[str, Any]], launched: float, limits: tuple[int, ...] = (5_000, 2_000)
) -> dict[str, float | None]:
    """For each p95 limit (ms), the seconds from the driver's launch to the end of the batch
    from which every later batch's p95 stays under it: how long a start takes to reach steady
    state. None when the last batch with records is still over it."""
    series = [(at(p), p["latency_ms"]["p95"]) for p in progress if p.get("latency_ms")]
    found: dict[str, float | None] = {}
    for limit in limits:
        since: float | None = None
        for ended, p95 in series:
            if p95 >= limit:
                since = None
            elif since is None:
                since = ended
        found[f"p95_under_{limit}_ms"] = None if since is None else round(since - launched, 1)
    return found


def summarise(progress: list[dict[str, Any]], started: float, warmup: float) -> dict[str, Any]:
    steady = [p for p in progress if at(p) >= started + warmup and p.get("latency_ms")]
    if not steady:
        return {"batches": 0}
    series = [p["latency_ms"]["p95"] for p in steady]
    p95s = sorted(series)
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
        "p95_series": series,
    }


class HandwrittenStream(Background):
    """The hand-written streaming job in the background, stopped the way etlc's is."""

    def __init__(self, args: list[str], log: Path, extra_env: dict[str, str]) -> None:
        environ = local_submit_env("local[2]", "local")
        environ.update(SPARK_LOCAL_IP="127.0.0.1", **extra_env)
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                args,
                cwd=ROOT,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


# Launches a job's driver logging to the given file; every launch resumes the same checkpoint.
Launcher: TypeAlias = Callable[[Path], Background]


def _handwritten(
    work: Path, servers: str, topic: str, trigger: str, max_offsets: int | None
) -> Launcher:
    creds = db.credentials()
    pg = creds["postgres"]
    conf = [a for k, v in jobs.SPARK_CONF.items() for a in ("--conf", f"{k}={v}")]
    shipped = ",".join(str(jobs.JARS / a.jar_name) for a in jobs.artifacts(DEFINITION))
    args = [
        str(jobs.BIN / "spark-submit"),
        "--master",
        "local[2]",
        *conf,
        "--jars",
        shipped,
        str(ROOT / "bench" / "handwritten" / "stream_seed.py"),
        servers,
        topic,
        str(work / "checkpoint"),
        f"{pg['host']}:{pg['port']}/{pg['database']}",
        pg["user"],
        trigger,
        str(max_offsets or SEED_MAX_OFFSETS),
    ]
    return lambda log: HandwrittenStream(args, log, {"BENCH_PG_PASSWORD": pg["password"]})


def _etlc(work: Path, servers: str, topic: str, trigger: str, max_offsets: int | None) -> Launcher:
    creds = db.credentials()
    vault = work / "vault.json"
    master = db.seed_vault(vault, creds)
    doc = example("order_revenue_stream")
    doc["extract"][0].update(topic=topic, starting_offsets="latest")
    if max_offsets is not None:
        doc["extract"][0]["max_offsets_per_trigger"] = max_offsets
    kafka = {"system": "kafka", "bootstrap_servers": servers}
    driver = compile_variant(work, doc, {"connections": {**db.profiles(creds), "events": kafka}})
    env = stream_env(work, servers, creds, vault, trigger)
    return lambda log: Background(driver, env, log, {"ETLC_VAULT_PASSWORD": master})


def run(
    rate: int,
    seconds: float,
    warmup: float,
    *,
    partitions: int = 2,
    trigger: str = "1 second",
    job: str = "etlc",
    max_offsets: int | None = None,
) -> dict[str, Any]:
    """``job`` (etlc or handwritten) consuming a fresh topic while ``rate`` events/s are
    produced for ``seconds``; the figures leave out the first ``warmup`` seconds.
    ``max_offsets``: events one micro-batch may take (default: the definition's)."""
    work, servers, topic, launch = _prepare(job, partitions, trigger, max_offsets)
    launched = time.time()
    driver_run = _started(launch, work / "driver.log")
    sampler = Sampler(driver_run.proc.pid).start()
    # The load generator shares the machine; its own process, not the driver it started.
    producer = Sampler(os.getpid(), children=False).start()
    started = time.time()
    produced = produce_steadily(servers, topic, rate, seconds)
    time.sleep(5)  # let the last batches commit
    usage = sampler.stop()
    generator = producer.stop()
    code = driver_run.stop()
    progress = driver_run.events("batch_progress")
    summary = summarise(progress, started, warmup)
    [query_started] = driver_run.events("query_started")[:1]
    return {
        "scenario": "streaming",
        "job": job,
        "rate_target": rate,
        "max_offsets_per_trigger": max_offsets or SEED_MAX_OFFSETS,
        "produced": produced,
        "driver_exit": code,
        **summary,
        "sustained": sustained(summary, rate),
        # From the driver's launch; the events are produced from the query's start on.
        "query_started_after_s": round(at(query_started) - launched, 1),
        "steady_after_s": steady_after(progress, launched),
        "driver_usage": usage,
        "generator_usage": generator,
        "seed_floor_p95_ms": 5_000,
        "target_p95_ms": 2_000,
        "driver_log": str(driver_run.log),
    }


def _prepare(
    job: str, partitions: int, trigger: str, max_offsets: int | None
) -> tuple[Path, str, str, Launcher]:
    """A fresh work folder, topic and target table, and the launcher of ``job``'s driver."""
    creds = db.credentials()
    servers = events.bootstrap()
    work = Path(tempfile.mkdtemp(prefix=f"etlc-stream-bench-{job}-"))
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS order_revenue_per_minute")
        conn.execute(TABLE_DDL)
    topic = events.fresh_topic("bench")
    events.create_topic(servers, topic, partitions=partitions)
    start = _etlc if job == "etlc" else _handwritten
    return work, servers, topic, start(work, servers, topic, trigger, max_offsets)


def _started(launch: Launcher, log: Path) -> Background:
    driver_run = launch(log)
    driver_run.wait_for(
        "the query to start", lambda: bool(driver_run.events("query_started")), timeout=180
    )
    return driver_run


def restart(
    rate: int, seconds: float, down: float, *, job: str = "etlc", trigger: str = "1 second"
) -> dict[str, Any]:
    """``job`` stopped a third of the way into ``seconds`` of production at ``rate`` events/s
    and launched again on its checkpoint ``down`` seconds later, the events produced meanwhile
    waiting for it: the restarted driver's time to steady state, from its launch.

    Each micro-batch may take three seconds' worth of events, as in the rate search: the seed
    definition's 100,000 would let neither job drain a backlog at 50,000 events/s."""
    work, servers, topic, launch = _prepare(job, 2, trigger, 3 * rate)
    first = _started(launch, work / "driver.log")
    produced: dict[str, Any] = {}

    def produce() -> None:
        try:
            produced.update(produce_steadily(servers, topic, rate, seconds))
        except Exception as exc:  # reported below: a run without its load means nothing
            produced["error"] = repr(exc)

    # A daemon: a driver that fails to stop or start ends the benchmark, not the load.
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    time.sleep(seconds / 3)
    stopped = time.time()
    first_exit = first.stop()
    time.sleep(down)
    relaunched = time.time()
    second = _started(launch, work / "driver-restarted.log")
    producer.join()
    if "error" in produced:
        second.crash()
        raise RuntimeError(f"the load generator failed: {produced['error']}")
    time.sleep(5)  # let the last batches commit
    second_exit = second.stop()
    progress = second.events("batch_progress")
    backlog = [p["input_rows"] for p in progress[:3]]
    return {
        "scenario": "streaming_restart",
        "job": job,
        "rate_target": rate,
        "down_s": down,
        # From the stop's request to the second launch: the first driver's shutdown included.
        "down_measured_s": round(relaunched - stopped, 1),
        "max_offsets_per_trigger": 3 * rate,
        "produced": produced,
        "driver_exit": [first_exit, second_exit],
        "first_batches_rows": backlog,
        "query_started_after_s": round(at(second.events("query_started")[0]) - relaunched, 1),
        "steady_after_s": steady_after(progress, relaunched),
        "driver_log": str(second.log),
    }


def sustained(summary: dict[str, Any], rate: int) -> bool:
    """Kept up: consumed what was produced (within 3%), p95 under the seed's 5 s, and the
    lag not growing (the last third's median p95 within 1.5x the first third's)."""
    if not summary.get("batches"):
        return False
    p95s = summary["p95_series"]
    third = max(1, len(p95s) // 3)
    first, last = statistics.median(p95s[:third]), statistics.median(p95s[-third:])
    return bool(
        summary["events_per_s"] >= 0.97 * rate
        and summary["latency_p95_ms_p95"] < 5_000
        and last <= 1.5 * max(first, 1)
    )


def rate_search(rates: list[int], seconds: float, warmup: float) -> dict[str, Any]:
    """etlc at each rate in turn (ascending), stopping after the first it cannot sustain
    (then trying the rate halfway back).

    The seed definition takes at most 100,000 events per micro-batch, which with a 1 s
    trigger caps intake at 100,000 events/s and leaves no headroom to drain the start-up
    backlog at that rate; each rate here allows three seconds' worth per batch instead."""
    steps: list[dict[str, Any]] = []

    def attempt(rate: int) -> bool:
        result = run(rate, seconds, warmup, max_offsets=3 * rate)
        steps.append({k: v for k, v in result.items() if k != "p95_series"})
        return bool(result["sustained"])

    ordered = sorted(rates)
    for i, rate in enumerate(ordered):
        if not attempt(rate):
            if i > 0:  # once more, halfway between the last rate kept up and this one
                attempt((ordered[i - 1] + rate) // 2 // 5_000 * 5_000)
            break
    kept = [s["rate_target"] for s in steps if s["sustained"]]
    return {
        "scenario": "streaming_rate_search",
        "steps": steps,
        "highest_sustained_rate": max(kept) if kept else None,
        "target_rate": 150_000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=50_000, help="events per second")
    parser.add_argument("--seconds", type=float, default=180, help="how long to produce")
    parser.add_argument("--warmup", type=float, default=30, help="seconds left out of the figures")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--trigger", default="1 second")
    parser.add_argument("--job", choices=("etlc", "handwritten"), default="etlc")
    parser.add_argument("--max-offsets", type=int, help="per micro-batch (default: definition)")
    parser.add_argument(
        "--restart-down",
        type=float,
        metavar="SECONDS",
        help="stop the driver a third of the way in and launch it again on its checkpoint "
        "this many seconds later; report the restarted driver's start-up",
    )
    args = parser.parse_args(argv)
    if args.restart_down is not None:
        result = restart(
            args.rate, args.seconds, args.restart_down, job=args.job, trigger=args.trigger
        )
        print(json.dumps(result, indent=2))
        return 0 if result["driver_exit"] == [0, 0] else 1
    report = run(
        args.rate,
        args.seconds,
        args.warmup,
        partitions=args.partitions,
        trigger=args.trigger,
        job=args.job,
        max_offsets=args.max_offsets,
    )
    print(json.dumps(report, indent=2))
    return 0 if report["driver_exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
