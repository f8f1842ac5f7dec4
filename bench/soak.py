"""The seed's stream under faults for a long time: nothing lost, nothing twice.

Order events are produced at a steady rate (``--rate``, default the seed's 50,000/s) for
``--minutes``, while etlc's compiled ``order_revenue_stream`` driver (Kafka -> 1-minute windows
per status -> PostgreSQL) consumes them. Every ``--fault-every`` seconds one fault strikes, in
turn: PostgreSQL crashed and brought back 10 s later, the Kafka broker crashed and brought
back 10 s later, the driver killed with SIGKILL and started again on its checkpoint (as a
scheduler restarts a dead job). A driver that ends by itself (its retries spent) is started
again too, and counted: that fault was not survived by the stream alone. The environment sets
``etlc.retry_reset_after`` to 2 minutes, shorter than the gap between faults, so each outage
meets the whole retry budget (3 retries, 5 s apart).

The producer is idempotent and counts only what Kafka acknowledged, per second of event time
and status. When it stops, one more event far ahead in event time closes every window; once
the table holds them all, the driver is stopped and each (window, status) row is compared with
what was produced: an event lost shows as a count short, one landed twice as a count over or
a row twice. Latency p95 comes from the drivers' own ``batch_progress`` lines, grouped by
phase: steady, and the two minutes after each kind of fault.

Not in CI: ``python -m bench --scenarios soak`` (about 30 minutes), services up.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from bench.stream_seed import DISTINCT_PER_SECOND, TABLE_DDL, payloads_for
from etlc import demo
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import Background, compile_variant, example
from tests.integration.test_database_loads import services
from tests.integration.test_streaming import stream_env

FAULTS = ("database", "broker", "driver")
RECOVERY_S = 120  # after a fault, batches count toward that fault's phase for this long
OUTAGE_S = 10  # a crashed service stays down this long
RESET_AFTER = "2 minutes"

Window = tuple[datetime, str]  # (window start, status)


class Production:
    """Produces ``rate`` events/s in a thread; counts what Kafka acknowledged per window.

    Each event carries the second it was produced in: a producer that fell behind catches up
    with events of the current second, not a burst stamped with a second long past."""

    def __init__(self, servers: str, topic: str, rate: int) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            {
                "bootstrap.servers": servers,
                "enable.idempotence": True,  # a retried send is not a second event
                "linger.ms": 20,
                "batch.num.messages": 10_000,
                "queue.buffering.max.messages": 4_000_000,
                "message.timeout.ms": 600_000,  # rides out a broker restart
                # Only failures call back into Python: what was produced and not reported
                # failed once the queue is flushed is what Kafka acknowledged.
                "delivery.report.only.error": True,
                "log_level": 2,  # the broker's restarts are the point: not one line per retry
            }
        )
        self.topic, self.rate = topic, rate
        self.base = demo.generate(orders=DISTINCT_PER_SECOND, customers=500, seed=5).orders
        self.produced: Counter[Window] = Counter()
        self.rejected: Counter[Window] = Counter()
        self.failed = 0
        self.unflushed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def acked(self) -> Counter[Window]:
        return self.produced - self.rejected

    def _run(self) -> None:
        started, sent, current = time.monotonic(), 0, -1
        batch: list[bytes] = []
        windows: list[Window | None] = []
        failed: list[Callable[[Any, Any], None]] = []
        while not self.stop.is_set():
            if (second := int(time.time())) != current:
                current, batch = second, payloads_for(second, self.base)
                windows = self._windows(second)
                failed = [partial(self._failed, w) for w in windows]
            due = int(self.rate * (time.monotonic() - started))
            # At most one second's worth per pass, so the stamp stays the current second.
            for _ in range(min(due - sent, self.rate)):
                index = sent % len(batch)
                try:
                    self.producer.produce(self.topic, value=batch[index], on_delivery=failed[index])
                except BufferError:
                    self.producer.poll(0.05)
                    break
                sent += 1
                if (window := windows[index]) is not None:
                    self.produced[window] += 1
            self.producer.poll(0)
            time.sleep(0.001)
        self.unflushed = self.producer.flush(600)

    def _windows(self, second: int) -> list[Window | None]:
        """Each base order's (window, status) for events of ``second``; None: not counted."""
        at = datetime.fromtimestamp(second, timezone.utc).replace(tzinfo=None, second=0)
        return [None if o.status == "CANCELLED" else (at, o.status) for o in self.base]

    def _failed(self, window: Window | None, err: Any, msg: Any) -> None:
        if err is None:
            return
        self.failed += 1
        if window is not None:
            self.rejected[window] += 1

    def close_windows(self) -> None:
        """One event an hour ahead in event time: the watermark passes every real window."""
        ahead = int(time.time()) + 3_600
        self.producer.produce(self.topic, value=payloads_for(ahead, self.base[:1])[0])
        self.producer.flush(60)


def landed(creds: dict[str, Any]) -> tuple[Counter[Window], int]:
    """Orders per (window, status) in the sink, and how many (window, status) rows repeat."""
    rows = db.pg_rows(creds, "SELECT window_start, status, orders FROM order_revenue_per_minute")
    got: Counter[Window] = Counter()
    seen: Counter[Window] = Counter()
    for start, status, orders in rows:
        got[(start, status)] += int(orders)
        seen[(start, status)] += 1
    return got, sum(n - 1 for n in seen.values() if n > 1)


class Stream:
    """The etlc driver, restarted on its checkpoint whenever it dies."""

    def __init__(self, work: Path, servers: str, topic: str, rate: int) -> None:
        creds = db.credentials()
        vault = work / "vault.json"
        self.master = db.seed_vault(vault, creds)
        doc = example("order_revenue_stream")
        doc["extract"][0].update(topic=topic, max_offsets_per_trigger=3 * rate)
        kafka = {"system": "kafka", "bootstrap_servers": servers}
        self.driver = compile_variant(
            work, doc, {"connections": {**db.profiles(creds), "events": kafka}}
        )
        self.env = stream_env(work, servers, creds, vault)
        settings = json.loads(self.env.read_text(encoding="utf-8"))
        # Healthy stretches between faults are shorter than the default 10 minutes: each one
        # gives the next outage the whole retry budget again (logged as retry_budget_reset).
        settings["etlc"]["retry_reset_after"] = RESET_AFTER
        self.env.write_text(json.dumps(settings), encoding="utf-8")
        self.work = work
        self.runs: list[Background] = []
        self.deaths = 0  # ended by itself: retries spent

    def start(self) -> Background:
        log = self.work / f"driver-{len(self.runs)}.log"
        run = Background(
            self.driver,
            self.env,
            log,
            {"ETLC_VAULT_PASSWORD": self.master},
            jvm_opts="",  # the JVM's defaults, as in the other benchmarks (not the tests' C1)
        )
        self.runs.append(run)
        run.wait_for("the query to start", lambda: bool(run.events("query_started")), 300)
        return run

    @property
    def current(self) -> Background:
        return self.runs[-1]

    def keep_alive(self) -> None:
        if self.current.proc.poll() is not None:
            self.deaths += 1
            self.start()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [e for run in self.runs for e in run.events(name)]


def strike(kind: str, stream: Stream) -> None:
    if kind == "driver":
        stream.current.crash()
        stream.start()
        return
    service = {"database": "postgres", "broker": "kafka"}[kind]
    services("crash", service)
    time.sleep(OUTAGE_S)
    services("up", service)


def phases(progress: list[dict[str, Any]], faults: list[dict[str, Any]]) -> dict[str, Any]:
    """p95 latency per phase: each batch's p95, grouped by the fault it follows (if recent)."""

    def at(e: dict[str, Any]) -> float:
        return datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()

    grouped: dict[str, list[int]] = {"steady": []}
    for p in progress:
        if not p.get("latency_ms"):
            continue
        t = at(p)
        recent = [f for f in faults if 0 <= t - f["at"] < RECOVERY_S]
        phase = f"after {recent[-1]['kind']}" if recent else "steady"
        grouped.setdefault(phase, []).append(int(p["latency_ms"]["p95"]))
    return {
        phase: {
            "batches": len(p95s),
            "p95_ms_median": statistics.median(p95s) if p95s else None,
            "p95_ms_max": max(p95s) if p95s else None,
        }
        for phase, p95s in grouped.items()
    }


def run(rate: int, minutes: float, fault_every: float) -> dict[str, Any]:
    creds, servers = db.credentials(), events.bootstrap()
    work = Path(tempfile.mkdtemp(prefix="etlc-soak-"))
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS order_revenue_per_minute")
        conn.execute(TABLE_DDL)
    topic = events.fresh_topic("soak")
    events.create_topic(servers, topic, partitions=2)
    stream = Stream(work, servers, topic, rate)
    stream.start()
    production = Production(servers, topic, rate)
    started = time.time()
    production.thread.start()
    faults: list[dict[str, Any]] = []
    deadline = started + 60 * minutes
    next_fault = started + fault_every
    while time.time() < deadline:
        stream.keep_alive()
        if time.time() >= next_fault:
            kind = FAULTS[len(faults) % len(FAULTS)]
            faults.append({"kind": kind, "at": time.time(), "at_s": round(time.time() - started)})
            strike(kind, stream)
            next_fault += fault_every
        time.sleep(1)
    production.stop.set()
    production.thread.join()
    production.close_windows()
    expected = +production.acked
    drained = wait_drained(stream, creds, expected)
    code = stream.current.stop()
    got, repeated = landed(creds)
    lost = sum(max(0, n - got[w]) for w, n in expected.items())
    extra = sum(max(0, n - expected[w]) for w, n in got.items()) + repeated
    progress = stream.events("batch_progress")
    return {
        "scenario": "soak",
        "rate_target": rate,
        "minutes": minutes,
        "events_acknowledged": sum(expected.values()),
        "events_landed": sum(got.values()),
        "produce_failures": production.failed,
        "produce_unflushed": production.unflushed,
        "lost": lost,
        "duplicated": extra,
        "windows": len(expected),
        "faults": [{k: v for k, v in f.items() if k != "at"} for f in faults],
        "faults_survived": len(faults) - stream.deaths,
        "driver_deaths": stream.deaths,
        # Events the window dropped as later than its watermark (Spark's own count, per batch).
        "late_rows_dropped": sum(int(p.get("late_rows_dropped") or 0) for p in progress),
        "attempts_failed": len(stream.events("attempt_failed")),
        "retry_budget_resets": len(stream.events("retry_budget_reset")),
        "drained_s": drained,
        "driver_exit": code,
        "phases": phases(progress, faults),
        "passed": lost == 0
        and extra == 0
        and production.failed == production.unflushed == 0
        and code == 0,
        "work": str(work),
    }


def wait_drained(stream: Stream, creds: dict[str, Any], expected: Counter[Window]) -> float:
    """Seconds until the sink holds every window produced (or 15 minutes have passed)."""
    began = time.monotonic()
    total = sum(expected.values())
    while time.monotonic() - began < 900:
        stream.keep_alive()
        got, _ = landed(creds)
        if sum(got[w] for w in expected) >= total:
            break
        time.sleep(5)
    time.sleep(5)  # anything that would land twice has had its chance
    return round(time.monotonic() - began, 1)
