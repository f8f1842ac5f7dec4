"""Drivers compiled for each other Spark line etlc supports, run by that line's own pyspark on
the lowest Python it supports, with that line's jars and etlc's JVM module built for its Scala:
the demo pipeline, a Kafka batch upserted into PostgreSQL, and a Kafka stream appended to
PostgreSQL exactly once across a crash, each compared row by row. The rest of the suite runs on
the default line (the project's venv). Each line's tables and topics are its own."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.spark_targets import DEFAULT_LINE, TARGETS
from tests.integration import databases as db
from tests.integration import events
from tests.integration import test_kafka_postgres as batch
from tests.integration import test_streaming as stream
from tests.integration.conftest import (
    BIN,
    ROOT,
    Background,
    Workspace,
    compile_variant,
    example,
    submit,
)
from tests.integration.spark_lines import LineRuntime, line_runtime
from tests.integration.test_ddl import ddl

OTHER_LINES = [line for line in TARGETS if line != DEFAULT_LINE]


@pytest.fixture(scope="module", params=OTHER_LINES)
def line(request: pytest.FixtureRequest) -> LineRuntime:
    return line_runtime(request.param)


def compile_for(line: str, definition: str, out: Path) -> Path:
    done = subprocess.run(
        [str(BIN / "etlc"), "compile", definition, "--out", str(out), "--spark-version", line],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out / f"{Path(definition).stem}.py"


def env_file(tmp_path: Path, variables: dict[str, str]) -> Path:
    path = tmp_path / "env.json"
    doc: dict[str, Any] = {
        "variables": variables,
        "spark": dict(db.TEST_SPARK_CONF),
        "etlc": {"stage_dir": str(tmp_path / "stage")},
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_demo_pipeline_gives_the_same_rows_on_each_line(
    line: LineRuntime, workspace: Workspace, tmp_path: Path
) -> None:
    driver = compile_for(line.target.line, "pipelines/orders_by_country.json", tmp_path / "gen")
    out = tmp_path / "out"
    env = env_file(tmp_path, {"data_dir": str(workspace.data), "out_dir": str(out)})
    run = submit(driver, env, extra_env=line.environ())
    assert run.returncode == 0, run.stderr[-3000:]
    [finished] = run.event("run_finished")
    assert finished["status"] == "SUCCESS"
    actual = demo.read_by_country(out / "orders_by_country")
    assert actual == demo.expected_by_country(workspace.data_set)
    assert len(actual) > 1


def test_a_driver_compiled_for_another_line_stops_before_its_session(
    workspace: Workspace, tmp_path: Path
) -> None:
    spark_35 = line_runtime("3.5")
    env = env_file(tmp_path, {"data_dir": str(workspace.data), "out_dir": str(tmp_path / "out")})
    # The driver's own jars (the default line's), run by Spark 3.5's spark-submit and pyspark.
    environ = {**spark_35.environ(), "ETLC_JARS_DIR": str(ROOT / "jars")}
    run = submit(workspace.generated / "orders_by_country.py", env, extra_env=environ)
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.event("run_finished")) == 1, run.stderr[-3000:]
    [finished] = run.event("run_finished")
    assert finished["error_kind"] == "configuration"
    assert finished["error"].startswith(
        f"this driver was compiled for Spark {DEFAULT_LINE} (its jars and etlc's JVM module are "
        f"built for it), but runs on Spark {spark_35.target.release}"
    )
    assert not (tmp_path / "out").exists()


def test_a_kafka_batch_upserted_into_postgres_lands_each_latest_event_on_each_line(
    line: LineRuntime, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    suffix = line.target.line.replace(".", "_")
    customers, target = f"customers_line_{suffix}", f"enriched_orders_line_{suffix}"
    servers = events.bootstrap()
    data = demo.generate(orders=2_000, customers=200, seed=31)
    topic = events.fresh_topic(f"line-{suffix}")
    events.create_topic(servers, topic, partitions=2)
    batch.produce(servers, topic, data.orders)
    doc = example(batch.DEFINITION)
    doc["extract"][0]["topic"] = topic
    doc["extract"][1]["table"] = customers
    doc["load"][0]["table"] = target
    profiles = batch.connections(servers, creds)
    driver = compile_variant(tmp_path, doc, {"connections": profiles}, line.target.line)
    with db.postgres(creds) as conn:
        for table, statement in (
            (customers, batch.CUSTOMERS_DDL.replace("customers", customers, 1)),
            (target, ddl(tmp_path / "defs" / f"{batch.DEFINITION}.json")),
        ):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(statement)
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {customers} VALUES (%s, %s, %s, %s)",
                [(c.customer_id, c.name, c.country, c.segment) for c in data.customers],
            )
    env = batch.env_file(tmp_path, profiles, vault[0])
    extra = {**line.environ(), "ETLC_VAULT_PASSWORD": vault[1]}
    want = batch.expected(data.orders, data.customers)
    run = submit(driver, env, extra_env=extra)
    assert run.returncode == 0, batch.failure(run)
    rows = db.pg_rows(creds, f"SELECT {batch.TARGET_COLUMNS} FROM {target}")
    assert len(rows) == len(want)
    assert {r[0]: r[1:] for r in rows} == want


def test_a_kafka_stream_into_postgres_lands_each_event_once_across_a_crash_on_each_line(
    line: LineRuntime, creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    suffix = line.target.line.replace(".", "_")
    table = f"order_events_line_{suffix}"
    servers = events.bootstrap()
    topic = events.fresh_topic(f"line-stream-{suffix}")
    events.create_topic(servers, topic, partitions=2)
    orders = stream.orders_between(4_000, 47, 1, stream.BASE, 3_600)
    stream.produce(servers, topic, orders)
    doc = example("order_events_stream")
    doc["extract"][0].update(topic=topic, max_offsets_per_trigger=1_000)
    doc["load"][0]["table"] = table
    profiles = {**db.profiles(creds), "events": {"system": "kafka", "bootstrap_servers": servers}}
    driver = compile_variant(tmp_path, doc, {"connections": profiles}, line.target.line)
    stream.reset(creds, table, ddl(tmp_path / "defs" / "order_events_stream.json"))
    env = stream.stream_env(tmp_path, servers, creds, vault[0], trigger="200 milliseconds")
    extra = {**line.environ(), "ETLC_VAULT_PASSWORD": vault[1]}
    live = sorted(o.order_id for o in orders if o.status != "CANCELLED")

    first = Background(driver, env, tmp_path / "first.log", extra)
    first.wait_for("two committed batches", lambda: len(first.events("batch_committed")) >= 2)
    first.crash()  # between two batches' commits: the restart must neither lose nor double
    second = Background(driver, env, tmp_path / "second.log", extra)
    second.wait_for("every event", lambda: stream.count(creds, table) >= len(live))
    assert second.stop() == 0
    ids = sorted(r[0] for r in db.pg_rows(creds, f"SELECT order_id FROM {table}"))
    assert ids == live
    epochs = {e["epoch"] for e in first.events("query_started") + second.events("query_started")}
    assert len(epochs) == 1  # the restart resumed the same checkpoint
