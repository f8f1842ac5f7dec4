"""A short smoke of each benchmark scenario (`make bench` runs them full size).

These are not timed unit tests: each asserts only the seed's floor for its scenario, the one
pass/fail line of the benchmarks, plus that the jobs did what they claim (every record read).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import compiler, complex_batch, hostile, sdp_jobs, simple_batch, stream_seed, upsert

pytestmark = pytest.mark.integration  # spark-submit and the local services


# Both batch scenarios read the same 2 million generated orders: large enough that the jobs'
# fixed costs (S3 and JDBC connections, the first query's planning) do not decide the rate
# (at 200,000 the complex batch made 13,000 records/s against its floor of 10,000).
BATCH_RECORDS = 2_000_000
UPSERT_RECORDS = 200_000


@pytest.fixture(scope="module")
def orders() -> None:
    """The batch scenarios' input, every size made by one child Spark (one JVM start)."""
    simple_batch.generate(BATCH_RECORDS, UPSERT_RECORDS)


def _best_of_two(run: Callable[[Path], dict[str, Any]], tmp_path: Path) -> None:
    """etlc's rate against the scenario's seed floor, as its best of at most two submissions.

    A timing on a shared two-core machine is noisy: a second, fresh submission is made only
    when the first falls below the floor, and the floor must hold for the faster of the two
    (as a benchmark takes the fastest repeat). Both results are in the failure message."""
    results = []
    for attempt in range(2):
        result = run(tmp_path / f"attempt-{attempt}")
        results.append(result)
        [etlc] = result["jobs"]
        if etlc["records_per_s"] >= result["seed_floor_records_per_s"]:
            return
    rates = [r["jobs"][0]["records_per_s"] for r in results]
    floor = results[0]["seed_floor_records_per_s"]
    pytest.fail(f"etlc below the seed floor of {floor} records/s twice: {rates}\n{results}")


@pytest.mark.usefixtures("orders")
def test_simple_batch_stays_above_the_seed_floor(tmp_path: Path) -> None:
    # etlc alone (`make bench` runs the hand-written job and the rest beside it).
    _best_of_two(lambda work: simple_batch.run(BATCH_RECORDS, work, names=("etlc",)), tmp_path)


@pytest.mark.usefixtures("orders")
def test_the_declarative_peer_writes_the_pipelines_rows_and_refuses_an_invalid_record(
    tmp_path: Path, spark: Any
) -> None:
    work = tmp_path / "sdp"
    simple_batch.run(UPSERT_RECORDS, work, names=("sdp",))
    theirs = spark.read.parquet(str(work / "sdp" / "spark-warehouse" / "sized"))
    # What simple_batch.json makes of the same orders, every one valid (etlc's own runs of
    # it are checked by the tests of its steps).
    source = str(simple_batch.generate(UPSERT_RECORDS))
    schema = "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING, "
    schema += "ordered_at TIMESTAMP, coupon STRING"
    want = (
        spark.read.option("header", True)
        .schema(schema)
        .csv(source)
        .where("status <> 'CANCELLED'")
        .selectExpr(
            "*",
            "CASE WHEN amount >= 500 THEN 'large' WHEN amount >= 100 THEN 'medium' "
            "ELSE 'small' END AS size_band",
            "to_date(ordered_at) AS order_day",
        )
    )
    columns = sorted(want.columns)
    assert sorted(theirs.columns) == columns
    assert theirs.count() == want.count() > 0
    assert theirs.select(columns).exceptAll(want.select(columns)).isEmpty()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "part-0.csv").write_text(
        "order_id,customer_id,amount,status,ordered_at,coupon\n"
        "1,7,10.00,PAID,2026-01-07T17:08:46.000Z,\n"
        "2,7,10.00,REFUNDED,2026-01-07T17:08:46.000Z,\n",
        encoding="utf-8",
    )
    conf = {simple_batch.SOURCE_CONF: str(bad)}
    code, home, _, _, text = sdp_jobs.run_project("simple_batch", tmp_path / "refused", conf)
    assert code != 0 and "a record violates the schema" in text, text[-3000:]
    assert not list((home / "spark-warehouse").glob("sized/*.parquet"))


@pytest.mark.usefixtures("orders")
def test_complex_batch_stays_above_the_seed_floor(tmp_path: Path) -> None:
    _best_of_two(lambda work: complex_batch.run(BATCH_RECORDS, work, names=("etlc",)), tmp_path)


@pytest.mark.usefixtures("orders")
def test_upsert_lands_every_row_once_in_both_databases(tmp_path: Path) -> None:
    # The scenario itself checks both tables after the job: every key once, the input's rows.
    result = upsert.run(UPSERT_RECORDS, tmp_path, names=("etlc",))
    [etlc] = result["jobs"]
    assert etlc["to_postgres_s"] > 0 and etlc["to_mysql_s"] > 0, result


def test_the_compiler_compiles_a_hundred_definitions(tmp_path: Path) -> None:
    result = compiler.run(100, tmp_path)
    assert len(list((tmp_path / "generated").glob("*.py"))) == 100, result


def test_the_compiler_stays_bounded_on_hostile_inputs(tmp_path: Path) -> None:
    # The bound for any input up to the size limit: 10 s and 500 MB per command, and a
    # diagnostic (exit 0 or 1), never a traceback, for every one of them.
    # Two commands at a time: the bounds hold alone if they hold sharing the two cores.
    result = hostile.run(tmp_path, parallel=2)
    for row in result["inputs"]:
        for command in ("lint", "compile"):
            run = row[command]
            assert run["exit"] in (0, 1) and not run["traceback"], (row["input"], command, run)
    assert result["worst_peak_rss_mb"] <= result["bound_peak_rss_mb"], result
    assert result["worst_seconds"] <= result["bound_seconds"], result


def test_streaming_stays_under_the_seed_latency_floor() -> None:
    # As the batch floors: a second, fresh stream only when the first's p95 is over the floor
    # (alone on this machine its median p95 is about a third of it), and both in the message.
    results = []
    for _ in range(2):
        result = stream_seed.run(rate=20_000, seconds=40, warmup=15)
        assert result["driver_exit"] == 0 and result["batches"] > 0, result
        results.append(result)
        if result["latency_p95_ms_median"] < result["seed_floor_p95_ms"]:
            return
    p95s = [r["latency_p95_ms_median"] for r in results]
    floor = results[0]["seed_floor_p95_ms"]
    pytest.fail(f"median p95 over the seed floor of {floor} ms twice: {p95s}\n{results}")
