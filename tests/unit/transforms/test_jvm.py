"""JVM steps through the shared SparkSession, whose classpath has jars/etlc-jvm-<version>.jar:
etlc.jvm.transform.LatestByKey row by row, and every way a step can be misconfigured."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from etlc.runtime.errors import ConfigurationError, TerminalError, classify
from etlc.transforms.jvm import jvm_error, jvm_transform

ROOT = Path(__file__).resolve().parents[3]
LATEST = "etlc.jvm.transform.LatestByKey"
T = dt.datetime(2026, 1, 1)

ROWS = [
    # order_id, version time, status, amount, note
    (1, T, "NEW", 10, None),
    (1, T + dt.timedelta(hours=2), "PAID", 10, None),
    (1, T + dt.timedelta(hours=1), "SHIPPED", 10, None),
    # tied on the time: the other columns decide (descending, nulls last): "b" beats "a"...
    (2, T, "PAID", 20, "a"),
    (2, T, "PAID", 20, "b"),
    # ... and a value beats null
    (3, T, "NEW", 30, None),
    (3, T, "NEW", 30, "x"),
    # a null time loses to any time
    (4, None, "CANCELLED", 40, None),
    (4, T, "NEW", 40, None),
    (5, None, "NEW", 50, None),
]
DDL = "order_id long, at timestamp, status string, amount int, note string"


def step(options: dict[str, Any], class_name: str = LATEST) -> dict[str, Any]:
    return {"id": "latest", "type": "jvm", "input": "o", "class": class_name, "options": options}


def expected(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The latest row per order_id, computed without Spark."""

    def rank(r: tuple[Any, ...]) -> tuple[Any, ...]:
        # Descending with nulls last: a present value beats null, then the greater value.
        return tuple((v is not None, v) if v is not None else (False, 0) for v in (r[1], *r[2:]))

    best: dict[int, tuple[Any, ...]] = {}
    for r in rows:
        if r[0] not in best or rank(r) > rank(best[r[0]]):
            best[r[0]] = r
    return sorted(best.values())


@pytest.fixture(scope="module")
def orders(spark: Any) -> Any:
    return spark.createDataFrame(ROWS, DDL)


def test_latest_by_key_keeps_each_keys_latest_row(orders: Any) -> None:
    fn = jvm_transform(LATEST, step({"keys": ["order_id"], "order_by": "at"}))
    out = fn(orders)
    assert out.columns == orders.columns
    assert sorted(tuple(r) for r in out.collect()) == expected(ROWS)
    assert [r[2] for r in expected(ROWS)] == ["PAID", "PAID", "NEW", "NEW", "NEW"]
    # The same winners whatever order the rows come in.
    shuffled = orders.repartition(3, "status")
    assert sorted(tuple(r) for r in fn(shuffled).collect()) == expected(ROWS)


def test_latest_by_key_runs_in_the_jvm_without_python(orders: Any) -> None:
    out = jvm_transform(LATEST, step({"keys": ["order_id", "status"], "order_by": "at"}))(orders)
    plan = str(out._jdf.queryExecution().executedPlan().toString())
    assert "Window" in plan
    assert "Python" not in plan and "ArrowEval" not in plan
    assert out.count() == len({(r[0], r[2]) for r in ROWS})


def test_the_class_declares_the_schema_etlc_lint_checks(spark: Any) -> None:
    declared = spark._jvm.etlc.jvm.transform.JvmSteps.optionsSchema(LATEST)
    file = ROOT / "schemas" / "jvm" / f"{LATEST}.json"
    assert declared == file.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("class_name", "options", "says"),
    [
        ("com.example.NoSuchStep", {}, "class not found on the JVM's classpath"),
        ("java.lang.String", {}, "does not implement etlc.jvm.transform.Transform"),
        (LATEST, {"keys": "order_id", "order_by": "at"}, "$.options.keys: expected array"),
        (LATEST, {"keys": ["order_id"]}, '$.options: missing required key "order_by"'),
        (LATEST, {"keys": ["id"], "order_by": "at"}, "$.options: the input has no column `id`"),
    ],
)
def test_a_misconfigured_step_is_one_configuration_error(
    orders: Any, class_name: str, options: dict[str, Any], says: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        jvm_transform(class_name, step(options, class_name))(orders)
    error = classify(caught.value, "latest")
    assert str(error).startswith(f"step `latest`: jvm class `{class_name}`: ")
    assert says in str(error)
    assert not error.transient


def test_other_jvm_failures_are_classified_as_usual() -> None:
    error = jvm_error(RuntimeError("boom"), LATEST)
    assert isinstance(error, TerminalError) and "boom" in str(error)
