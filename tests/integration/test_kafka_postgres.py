"""Kafka and PostgreSQL together through the compiled `order_events_enriched` driver.

Order events (Avro, produced with the spec-written codec of ``events``) are joined with
customers read from PostgreSQL and upserted into PostgreSQL by ``order_id``. Each test uses a
topic of its own, so it compiles its own copy of the example with that topic, and recreates
the PostgreSQL tables it reads and writes. The expected rows are computed here, in plain Python.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.dsl.checker import check_file
from etlc.dsl.lineage import output_lineage
from tests import openlineage_events
from tests.integration import databases as db
from tests.integration import events
from tests.integration.conftest import ROOT, Submission, compile_variant, example, submit
from tests.integration.test_ddl import ddl
from tests.leak_canary import Canary, assert_no_leak
from tests.openlineage_events import validate

DEFINITION = "order_events_enriched"
ORDER_SCHEMA = json.loads((ROOT / "schemas" / "avro" / "order.avsc").read_text(encoding="utf-8"))
CUSTOMERS_DDL = (
    "CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, name TEXT NOT NULL, "
    "country TEXT NOT NULL, segment TEXT NOT NULL)"
)
TARGET_COLUMNS = "order_id, customer_id, country, segment, amount, status, ordered_at"
LIVE_STATUSES = ("NEW", "PAID", "SHIPPED")

Row = tuple[Any, ...]  # (customer_id, country, segment, amount, status, ordered_at)


@pytest.fixture(scope="module")
def servers() -> str:
    return events.bootstrap()


def connections(servers: str, creds: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": {"system": "kafka", "bootstrap_servers": servers},
        "warehouse": db.profiles(creds)["warehouse"],
    }


def variant(tmp: Path, topic: str, profiles: dict[str, Any]) -> Path:
    """The example definition with its Kafka step on ``topic``, compiled; its driver."""
    doc = example(DEFINITION)
    [kafka] = [s for s in doc["extract"] if s["type"] == "kafka"]
    kafka["topic"] = topic
    return compile_variant(tmp, doc, {"connections": profiles})


def env_file(tmp: Path, profiles: dict[str, Any], vault: Path, **settings: Any) -> Path:
    doc = {
        "spark": dict(db.TEST_SPARK_CONF),
        "etlc": {
            "stage_dir": str(tmp / "stage"),
            "dead_letter_dir": str(tmp / "dead-letter"),
            **settings,
        },
        "connections": profiles,
        "vault": {"backend": "file", "path": str(vault)},
    }
    path = tmp / "env.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def seed_tables(creds: dict[str, Any], customers: list[demo.Customer]) -> None:
    with db.postgres(creds) as conn:
        # The target as `etlc ddl` makes it: the pipeline runs into the table etlc describes.
        target = ddl(ROOT / "pipelines" / f"{DEFINITION}.json")
        for table, statement in (("customers", CUSTOMERS_DDL), ("enriched_orders", target)):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO customers VALUES (%s, %s, %s, %s)",
                [(c.customer_id, c.name, c.country, c.segment) for c in customers],
            )


def produce(servers: str, topic: str, orders: list[demo.Order]) -> None:
    events.produce(servers, topic, [events.encode(ORDER_SCHEMA, asdict(o)) for o in orders])


def expected(orders: list[demo.Order], customers: list[demo.Customer]) -> dict[int, Row]:
    """The target after upserting ``orders``: per order, its latest event (greatest
    ``ordered_at``, the definition's ``sequence_by``) that is not CANCELLED, if its customer
    exists, with the customer's country and segment."""
    known = {c.customer_id: c for c in customers}
    latest: dict[int, demo.Order] = {}
    for o in orders:
        if o.status == "CANCELLED" or o.customer_id not in known:
            continue
        if o.order_id not in latest or o.ordered_at > latest[o.order_id].ordered_at:
            latest[o.order_id] = o
    want: dict[int, Row] = {}
    for order_id, o in latest.items():
        c = known[o.customer_id]
        at = o.ordered_at.replace(tzinfo=None)
        want[order_id] = (o.customer_id, c.country, c.segment, o.amount, o.status, at)
    return want


def joined_rows(orders: list[demo.Order], customers: list[demo.Customer]) -> int:
    """Rows the join produces (and the load receives): every live event with a known customer."""
    known = {c.customer_id for c in customers}
    return sum(1 for o in orders if o.status != "CANCELLED" and o.customer_id in known)


def landed(creds: dict[str, Any]) -> dict[int, Row]:
    rows = db.pg_rows(creds, f"SELECT {TARGET_COLUMNS} FROM enriched_orders")
    got = {r[0]: r[1:] for r in rows}
    assert len(got) == len(rows)
    return got


def failure(run: Submission) -> str:
    return json.dumps(run.events[-3:], indent=1) + "\n" + run.stderr[-3000:]


def finished_steps(run: Submission) -> dict[str, dict[str, Any]]:
    steps = {e["step"]: e for e in run.event("step_finished")}
    assert len(steps) == len(run.event("step_finished")), "a step finished twice"
    return steps


def check_lineage(
    received: list[dict[str, Any]],
    definition: str,
    servers: str,
    creds: dict[str, Any],
    topic: str,
) -> list[dict[str, Any]]:
    """A run's OpenLineage events, as POSTed (returned): each valid against OpenLineage's
    schemas, START first and COMPLETE last; the topic and both tables by OpenLineage's names;
    the output's column lineage as the compiler traced ``definition``; no password."""
    sent = [json.loads(r["body"]) for r in received]
    assert {(r["path"], r["type"]) for r in received} == {("/api/v1/lineage", "application/json")}
    for event in sent:
        validate(event)
    assert (sent[0]["eventType"], sent[-1]["eventType"]) == ("START", "COMPLETE")
    pg = creds["postgres"]
    warehouse = f"postgres://{pg['host']}:{pg['port']}"
    names = {
        "orders": (f"kafka://{servers.split(',', maxsplit=1)[0]}", topic),
        "customers": (warehouse, f"{pg['database']}.public.customers"),
    }
    complete = sent[-1]
    assert sorted((d["namespace"], d["name"]) for d in complete["inputs"]) == sorted(names.values())
    [out] = complete["outputs"]
    assert (out["namespace"], out["name"]) == (
        warehouse,
        f"{pg['database']}.public.enriched_orders",
    )
    plan = check_file(ROOT / "pipelines" / f"{definition}.json").plan
    assert plan is not None
    [load] = plan.by_role("load")
    traced = output_lineage(plan.steps, load.id)

    def named(sources: Any) -> list[tuple[str, ...]]:
        return [(*names[e], c, how) for e, c, how in sources]

    def facet_fields(fields: list[dict[str, Any]]) -> list[tuple[str, ...]]:
        return [
            (f["namespace"], f["name"], f["field"], f["transformations"][0]["subtype"])
            for f in fields
        ]

    facet = out["facets"]["columnLineage"]
    assert {c: named(s) for c, s in traced.fields} == {
        c: facet_fields(entry["inputFields"]) for c, entry in facet["fields"].items()
    }
    assert named(traced.dataset) == facet_fields(facet["dataset"])
    assert facet["fields"]["country"]["inputFields"][0]["name"].endswith(".public.customers")
    canary = Canary("vault://services/postgres#password", pg["password"])
    assert_no_leak([r["body"] for r in received], [canary])
    return sent


def test_order_events_joined_with_customers_land_exactly(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """The batch also sends its OpenLineage events to a local endpoint."""
    data = demo.generate(orders=3_000, customers=300, seed=23)
    seed_tables(creds, data.customers)
    topic = events.fresh_topic("enriched")
    events.create_topic(servers, topic, partitions=2)
    produce(servers, topic, data.orders)
    profiles = connections(servers, creds)
    with openlineage_events.receiver() as (url, received):
        env = env_file(tmp_path, profiles, vault[0], openlineage_url=url)
        run = submit(
            variant(tmp_path, topic, profiles), env, extra_env={"ETLC_VAULT_PASSWORD": vault[1]}
        )
    assert run.returncode == 0, failure(run)
    want = expected(data.orders, data.customers)
    sent = check_lineage(received, DEFINITION, servers, creds, topic)
    assert [e["eventType"] for e in sent] == ["START", "COMPLETE"]
    assert [e["openlineage"] for e in run.event("openlineage")] == sent
    complete = sent[-1]
    assert complete["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    read = {d["name"]: d["inputFacets"]["inputStatistics"]["rowCount"] for d in complete["inputs"]}
    assert read == {
        topic: len(data.orders),
        f"{creds['postgres']['database']}.public.customers": len(data.customers),
    }
    [out] = complete["outputs"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == len(want)
    # The data exercises both the filter and the inner join.
    assert any(o.status == "CANCELLED" for o in data.orders)
    assert {o.customer_id for o in data.orders} - {c.customer_id for c in data.customers}
    assert landed(creds) == want

    steps = finished_steps(run)
    orders, customers = steps["orders"], steps["customers"]
    assert (orders["stage"], orders["system"], orders["connection"], orders["topic"]) == (
        "extract",
        "kafka",
        "events",
        topic,
    )
    assert orders["records_in"] == orders["records_out"] == len(data.orders)
    assert (customers["stage"], customers["system"], customers["connection"]) == (
        "extract",
        "postgres",
        "warehouse",
    )
    assert customers["table"] == "customers"
    assert customers["records_in"] == customers["records_out"] == len(data.customers)
    live = sum(1 for o in data.orders if o.status != "CANCELLED")
    assert (steps["live"]["records_in"], steps["live"]["records_out"]) == (len(data.orders), live)
    assert (steps["joined"]["records_in"], steps["joined"]["records_out"]) == (
        live + len(data.customers),
        len(want),
    )
    assert steps["enriched"]["records_in"] == steps["enriched"]["records_out"] == len(want)
    load = steps["load_1_enriched"]
    assert (load["stage"], load["mode"], load["system"], load["connection"], load["table"]) == (
        "load",
        "upsert",
        "postgres",
        "warehouse",
        "enriched_orders",
    )
    assert load["records_in"] == load["records_out"] == len(want)
    assert run.event("run_finished")[-1]["status"] == "SUCCESS"


def test_a_rerun_upserts_the_latest_event_per_order(
    servers: str, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    """Run, produce updates of existing orders and new orders (shuffled), run again from
    earliest: the old and the new events of an order meet in one batch, and the upsert keeps
    the one with the greatest ``ordered_at`` whatever the topic order. There are more
    customers than events, so Spark broadcasts the events in the join, which emits a key's
    rows newest first: row order after a join says nothing about which event is later.
    """
    rng = random.Random(5)
    data = demo.generate(orders=1_500, customers=2_500, seed=29)
    seed_tables(creds, data.customers)
    topic = events.fresh_topic("enriched-upsert")
    events.create_topic(servers, topic, partitions=1)
    produce(servers, topic, data.orders)
    profiles = connections(servers, creds)
    driver = variant(tmp_path, topic, profiles)
    env = env_file(tmp_path, profiles, vault[0])

    first = submit(driver, env, extra_env={"ETLC_VAULT_PASSWORD": vault[1]})
    assert first.returncode == 0, failure(first)
    want_first = expected(data.orders, data.customers)
    assert landed(creds) == want_first

    # 50 landed orders change amount and status; 10 of them change twice (three events of
    # the order in the next batch). Then 300 new orders (some cancelled, some orphaned).
    by_id = {o.order_id: o for o in data.orders}
    changed = rng.sample(sorted(want_first), 50)
    updates = []
    for order_id in changed + changed[:10]:
        old = by_id[order_id]
        status = rng.choice([s for s in LIVE_STATUSES if s != old.status])
        amount = old.amount + Decimal(rng.randint(1, 50_000)) / 100
        later = old.ordered_at + timedelta(minutes=rng.randint(1, 600))
        by_id[order_id] = replace(old, status=status, amount=amount, ordered_at=later)
        updates.append(by_id[order_id])
    extra = demo.generate(orders=300, customers=2_600, seed=31).orders
    new = [replace(o, order_id=o.order_id + len(data.orders)) for o in extra]
    second_batch = updates + new
    rng.shuffle(second_batch)
    produce(servers, topic, second_batch)
    every_event = data.orders + second_batch

    second = submit(driver, env, extra_env={"ETLC_VAULT_PASSWORD": vault[1]})
    assert second.returncode == 0, failure(second)
    want = expected(every_event, data.customers)
    got = landed(creds)
    assert {k: got.get(k) for k in changed} == {k: want[k] for k in changed}
    assert all(want[k] != want_first[k] for k in changed)  # the updates are visible
    added = {k: v for k, v in want.items() if k not in want_first}
    assert len(added) > 200 and {k: got.get(k) for k in added} == added
    assert got == want  # the rest unchanged, nothing duplicated or lost

    steps = finished_steps(second)
    assert steps["orders"]["records_in"] == steps["orders"]["records_out"] == len(every_event)
    assert (
        steps["customers"]["records_in"] == steps["customers"]["records_out"] == len(data.customers)
    )
    load = steps["load_1_enriched"]
    received = joined_rows(every_event, data.customers)
    # Every event of a changed order reaches the load; the upsert writes one row per order.
    assert received - len(want) == len(updates)
    assert (load["records_in"], load["records_out"]) == (received, len(want))
    assert load["superseded"] == received - len(want)
