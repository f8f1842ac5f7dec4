"""A JVM step through spark-submit: `orders_latest_jvm` keeps each order's latest version with
the Scala class etlc.jvm.transform.LatestByKey, compared row by row with plain Python; and a
class that is not there fails the run once, clearly, naming the step."""

from __future__ import annotations

import csv
import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import functions as F

from etlc import demo
from tests.integration.conftest import Workspace, compile_variant, example, submit
from tests.integration.test_end_to_end import assert_success

TIME = "%Y-%m-%dT%H:%M:%SZ"


def order_versions(seed: int = 11, orders: int = 1500) -> list[demo.Order]:
    """Each order in 1 to 4 versions; versions often share a time (whole hours), so the tie
    rule (the other columns, descending, nulls last) decides many keys."""
    rng = random.Random(seed)
    rows = []
    for order_id in range(1, orders + 1):
        customer = rng.randint(1, 300)
        for _ in range(rng.randint(1, 4)):
            rows.append(
                demo.Order(
                    order_id=order_id,
                    customer_id=customer,
                    amount=Decimal(rng.randint(100, 2000)) * demo.CENT,
                    status=rng.choice(demo.STATUSES),
                    ordered_at=demo.START + timedelta(hours=rng.randint(0, 2)),
                    coupon=rng.choice((None, "WELCOME", "SPRING")),
                )
            )
    rng.shuffle(rows)
    return rows


def write_versions(rows: list[demo.Order], directory: Path, files: int = 2) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for part in range(files):
        with (directory / f"part-{part:03d}.csv").open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(demo.ORDER_HEADER)
            for o in rows[part::files]:
                out.writerow(
                    (
                        o.order_id,
                        o.customer_id,
                        f"{o.amount:.2f}",
                        o.status,
                        o.ordered_at.strftime(TIME),
                        o.coupon or "",
                    )
                )


def latest(rows: list[demo.Order]) -> list[tuple[Any, ...]]:
    """What LatestByKey must keep, computed without Spark: per order_id the greatest
    ordered_at, then the greatest of the other columns in order (a null is the least)."""

    def rank(o: demo.Order) -> tuple[Any, ...]:
        coupon = (o.coupon is not None, o.coupon or "")
        return (o.ordered_at, o.customer_id, o.amount, o.status, coupon)

    best: dict[int, demo.Order] = {}
    for o in rows:
        if o.order_id not in best or rank(o) > rank(best[o.order_id]):
            best[o.order_id] = o
    return sorted(
        (o.order_id, o.customer_id, o.amount, o.status, o.ordered_at.strftime(TIME), o.coupon)
        for o in best.values()
    )


@pytest.fixture(scope="module")
def versions(workspace: Workspace) -> tuple[list[demo.Order], Path]:
    rows = order_versions()
    data = workspace.root / "jvm-data"
    write_versions(rows, data / "order_versions")
    return rows, data


def test_the_jvm_step_keeps_each_orders_latest_version(
    workspace: Workspace, spark: Any, versions: tuple[list[demo.Order], Path]
) -> None:
    rows, data = versions
    out = workspace.root / "jvm-out"
    env_file = workspace.write_env("jvm", {"data_dir": str(data), "out_dir": str(out)})
    run = submit(workspace.generated / "orders_latest_jvm.py", env_file)
    summary = assert_success(run)
    want = latest(rows)
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["order_versions"]["records_out"] == len(rows)
    assert steps["latest"]["records_out"] == len(want) == 1500
    landed = spark.read.parquet(str(out / "orders_latest_jvm")).select(
        "order_id",
        "customer_id",
        "amount",
        "status",
        F.date_format("ordered_at", "yyyy-MM-dd'T'HH:mm:ss'Z'"),
        "coupon",
    )
    assert sorted(tuple(r) for r in landed.collect()) == want


def test_a_class_that_is_not_there_fails_once_naming_the_step(
    workspace: Workspace, tmp_path: Path, versions: tuple[list[demo.Order], Path]
) -> None:
    _, data = versions
    doc = example("orders_latest_jvm")
    doc["name"] = "orders_latest_missing_class"
    doc["transform"][0]["class"] = "com.example.steps.NoSuchStep"
    driver = compile_variant(tmp_path, doc, {"variables": {"data_dir": "d", "out_dir": "o"}})
    out = tmp_path / "out"
    env_file = workspace.write_env("jvm-missing", {"data_dir": str(data), "out_dir": str(out)})
    run = submit(driver, env_file)
    assert run.returncode == 1
    finished = run.event("run_finished")[-1]
    assert finished["status"] == "FAILED" and finished["error_kind"] == "configuration"
    assert finished["error"].startswith(
        "step `latest`: jvm class `com.example.steps.NoSuchStep`: class not found"
    ), finished["error"]
    assert len(run.event("attempt_failed")) == 1  # a configuration error is not retried
    assert "Traceback" not in run.stderr
    assert not (out / "orders_latest_jvm").exists()
