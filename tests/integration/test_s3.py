"""S3 through compiled drivers against moto: S3A committers, write modes, errors, no leaks.

Every write is checked three ways: the rows (read back and compared exactly with what plain
Python computes from the generated data), the objects (boto3 listing) and the `_SUCCESS`
manifest the S3A committer writes, whose `committer` field and file list prove which committer
committed which files.

The S3A committers need Spark's `PathOutputCommitProtocol` (spark-hadoop-cloud_2.13; 4.1.2 is
the newest release on Maven Central and links against Spark 4.2.0); the plugin table ships it
with the S3A jars.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.plugins import MavenArtifact
from etlc.profiles import S3Profile
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import TerminalError, TransientError
from etlc.runtime.graph import DatasetSchema
from etlc.vault import FileVault, MasterKey, Reference, Secret
from tests.integration import databases as db
from tests.integration import objectstore as store
from tests.integration.conftest import (
    ROOT,
    Submission,
    Workspace,
    compile_definitions,
    submit,
)
from tests.leak_canary import FAST_KDF, Canary, assert_no_leak, canary_value, files

CLOUD = MavenArtifact("org.apache.spark", "spark-hadoop-cloud_2.13", "4.1.2")
RAW, CURATED = "raw", "curated"
CUSTOMERS_DDL = (
    "CREATE TABLE customers (customer_id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "country VARCHAR(8) NOT NULL, segment VARCHAR(16) NOT NULL)"
)
SLIM_DDL = "order_id BIGINT, customer_id BIGINT, amount DECIMAL(12,2), status STRING"
FORMATS = ("csv", "json", "avro", "parquet")
# name -> (write mode, partition_by, the S3A committer that must commit it)
MODES = {
    "append": ("append", [], "magic"),
    "overwrite": ("overwrite", [], "magic"),
    "partitioned": ("overwrite", ["status"], "partitioned"),
}

Row = tuple[int, int, Decimal, str]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(creds: dict[str, Any]) -> Any:
    client = store.connect(creds)
    store.ensure_buckets(client, RAW, CURATED)
    return client


@pytest.fixture(scope="module")
def submit_env(workspace: Workspace) -> dict[str, str]:
    """Extra environment for spark-submit: none, the generated command ships every jar."""
    script = (workspace.generated / "orders_s3_append.submit.sh").read_text(encoding="utf-8")
    assert CLOUD.jar_name in script, "the S3 submit command must ship spark-hadoop-cloud"
    return {}


@dataclass(frozen=True)
class Lake:
    creds: dict[str, Any]
    s3: Any
    vault: Path
    password: str
    submit_env: dict[str, str]

    def env(self, ws: Workspace, name: str, **kwargs: Any) -> Path:
        return env_for(ws, self.creds, self.vault, name, **kwargs)

    def run(self, driver: Path, env_file: Path) -> Submission:
        return run(driver, env_file, self.password, self.submit_env)


@pytest.fixture(scope="module")
def lake(
    creds: dict[str, Any], s3: Any, vault: tuple[Path, str], submit_env: dict[str, str]
) -> Lake:
    return Lake(creds, s3, vault[0], vault[1], submit_env)


def lake_profile(endpoint: str) -> dict[str, Any]:
    return {
        "system": "s3",
        "endpoint": endpoint,
        "region": "us-east-1",
        "path_style_access": True,
        "access_key": "vault://services/s3#access_key",
        "secret_key": "vault://services/s3#secret_key",
    }


def env_for(
    ws: Workspace,
    creds: dict[str, Any],
    vault: Path,
    name: str,
    *,
    endpoint: str | None = None,
    variables: dict[str, str] | None = None,
) -> Path:
    path = ws.write_env(
        name, {"data_dir": str(ws.data), "out_dir": str(ws.out), **(variables or {})}
    )
    doc = json.loads(path.read_text())
    doc["connections"] = {
        **db.profiles(creds),
        "lake": lake_profile(endpoint or creds["s3"]["endpoint"]),
    }
    doc["vault"] = {"backend": "file", "path": str(vault)}
    path.write_text(json.dumps(doc))
    return path


def run(driver: Path, env_file: Path, password: str, submit_env: dict[str, str]) -> Submission:
    return submit(driver, env_file, extra_env={"ETLC_VAULT_PASSWORD": password, **submit_env})


def failure(run: Submission) -> str:
    return json.dumps(run.events[-3:]) + "\n" + run.stderr[-3000:]


def load_events(run: Submission) -> list[dict[str, Any]]:
    return [e for e in run.event("step_finished") if e.get("stage") == "load"]


def committer_checked(
    s3: Any, prefix: str, expected: str, files_written: set[str] | None = None
) -> list[str]:
    """Assert the manifest names ``expected`` and lists only existing data files; return them."""
    manifest = store.success(s3, CURATED, prefix)
    assert manifest.get("committer") == expected, (prefix, manifest.get("committer"))
    written = store.committed(manifest)
    assert written, f"{prefix}: the manifest lists no files; they were not committed by it"
    present = set(store.data_files(s3, CURATED, prefix))
    assert set(written) <= present, (prefix, sorted(set(written) - present))
    if files_written is not None:
        assert set(written) == files_written, prefix
    assert store.pending_uploads(s3, CURATED, prefix) == []
    return written


# --- expectations, in plain Python -------------------------------------------------------------


def seed_customers(creds: dict[str, Any], data: demo.DemoData) -> None:
    db.my_execute(
        creds,
        ["DROP TABLE IF EXISTS customers", CUSTOMERS_DDL],
        [(c.customer_id, c.name, c.country, c.segment) for c in data.customers],
        "INSERT INTO customers VALUES (%s, %s, %s, %s)",
    )


def revenue_by_segment(
    customers: list[demo.Customer], orders: list[demo.Order]
) -> dict[tuple[str, str, str], tuple[Decimal, int, int]]:
    known = {c.customer_id: c for c in customers}
    revenue: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    count: Counter[tuple[str, str, str]] = Counter()
    buyers: dict[tuple[str, str, str], set[int]] = defaultdict(set)
    for o in orders:
        c = known.get(o.customer_id)
        if o.status == "CANCELLED" or c is None:
            continue
        key = (c.country, c.segment, o.status)
        revenue[key] += o.amount
        count[key] += 1
        buyers[key].add(o.customer_id)
    return {k: (revenue[k], count[k], len(buyers[k])) for k in revenue}


def landed_revenue(spark: Any, path: str) -> dict[tuple[str, str, str], tuple[Decimal, int, int]]:
    df = spark.read.parquet(path)
    return {
        (r["country"], r["segment"], r["status"]): (r["revenue"], r["orders"], r["customers"])
        for r in df.collect()
    }


def slim(orders: list[demo.Order]) -> Counter[Row]:
    return Counter((o.order_id, o.customer_id, o.amount, o.status) for o in orders)


def landed_slim(spark: Any, fmt: str, path: str) -> Counter[Row]:
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", True).schema(SLIM_DDL)
    elif fmt == "json":
        reader = reader.schema(SLIM_DDL)
    df = reader.load(path).select("order_id", "customer_id", "amount", "status")
    return Counter((int(r[0]), int(r[1]), Decimal(r[2]), str(r[3])) for r in df.collect())


# --- the examples in pipelines/ ---------------------------------------------------------------


def test_orders_joined_with_mysql_overwrite_only_the_partitions_they_write(
    workspace: Workspace, lake: Lake, spark: Any
) -> None:
    creds, s3 = lake.creds, lake.s3
    data = workspace.data_set
    seed_customers(creds, data)
    store.put_orders(s3, RAW, "orders/", data.orders)
    prefix = "revenue_by_segment/"
    store.clear(s3, CURATED, prefix)
    env_file = lake.env(workspace, "s3_enriched")
    driver = workspace.generated / "orders_s3_enriched.py"

    first = lake.run(driver, env_file)
    assert first.returncode == 0, failure(first)
    [load] = load_events(first)
    assert load["committer"] == "partitioned" and load["system"] == "s3"
    full = revenue_by_segment(data.customers, data.orders)
    store.point_spark_at(spark, creds, CURATED)
    path = f"s3a://{CURATED}/{prefix}"
    assert landed_revenue(spark, path) == full
    assert load["records_out"] == len(full)
    committer_checked(s3, prefix, "partitioned", set(store.data_files(s3, CURATED, prefix)))

    # A second run over the orders of two countries only replaces those two partitions.
    country = {c.customer_id: c.country for c in data.customers}
    some = [o for o in data.orders if country.get(o.customer_id) in ("DE", "FR")]
    some = [replace(o, amount=o.amount + Decimal("1.00")) for o in some]
    store.put_orders(s3, RAW, "orders/", some)
    untouched = {
        k: set(store.data_files(s3, CURATED, f"{prefix}country={k}/"))
        for k in {key[0] for key in full} - {"DE", "FR"}
    }
    second = lake.run(driver, env_file)
    assert second.returncode == 0, failure(second)
    partial = revenue_by_segment(data.customers, some)
    assert {k[0] for k in partial} == {"DE", "FR"}
    want = {k: v for k, v in full.items() if k[0] not in ("DE", "FR")} | partial
    assert landed_revenue(spark, path) == want
    replaced = {
        k
        for k in store.data_files(s3, CURATED, prefix)
        if k.startswith((f"{prefix}country=DE/", f"{prefix}country=FR/"))
    }
    committer_checked(s3, prefix, "partitioned", replaced)
    for k, objects in untouched.items():
        assert set(store.data_files(s3, CURATED, f"{prefix}country={k}/")) == objects


def test_upsert_into_a_delta_table_merges_by_key_and_keeps_the_latest_row(
    workspace: Workspace, lake: Lake, spark: Any
) -> None:
    creds, s3 = lake.creds, lake.s3
    orders = demo.generate(orders=2_000, customers=50, seed=61).orders
    store.clear(s3, CURATED, "orders_delta/")
    store.put_orders(s3, RAW, "order_updates/", orders)
    driver = workspace.generated / "orders_s3_delta_upsert.py"
    env_file = lake.env(workspace, "s3_delta")
    first = lake.run(driver, env_file)
    assert first.returncode == 0, failure(first)

    # The second delivery: later versions of 100 orders, 100 new ones, and 50 stale versions
    # (older than what the table holds) that must not replace anything.
    live = [o for o in orders if o.status != "CANCELLED"]
    later = [
        replace(
            o, status="SHIPPED", amount=o.amount + 1, ordered_at=o.ordered_at + timedelta(hours=1)
        )
        for o in live[:100]
    ]
    stale = [
        replace(
            o, status="NEW", amount=Decimal("0.01"), ordered_at=o.ordered_at - timedelta(hours=1)
        )
        for o in live[100:150]
    ]
    new = [replace(o, order_id=o.order_id + 100_000, status="PAID") for o in orders[:100]]
    store.put_orders(s3, RAW, "order_updates/", later + stale + new)
    second = lake.run(driver, env_file)
    assert second.returncode == 0, failure(second)
    [load] = load_events(second)
    assert (load["format"], load["mode"], load["records_in"]) == ("delta", "upsert", 250)

    want = {o.order_id: o for o in live}
    want.update({o.order_id: o for o in later + new})
    store.point_spark_at(spark, creds, CURATED)
    table = spark.read.format("delta").load(f"s3a://{CURATED}/orders_delta/")
    got = {
        r["order_id"]: (r["status"], r["amount"], r["ordered_at"].replace(tzinfo=None))
        for r in table.collect()
    }
    assert table.count() == len(got)  # one row per key
    assert got == {
        k: (o.status, o.amount, o.ordered_at.replace(tzinfo=None)) for k, o in want.items()
    }
    history = spark.sql(f"DESCRIBE HISTORY delta.`s3a://{CURATED}/orders_delta/`").collect()
    assert [h["operation"] for h in history] == ["MERGE", "WRITE"]


def test_appending_twice_doubles_and_each_run_commits_its_own_files(
    workspace: Workspace, lake: Lake
) -> None:
    s3 = lake.s3
    data = workspace.data_set
    store.put_orders(s3, RAW, "orders/", data.orders)
    prefix = "new_orders/"
    store.clear(s3, CURATED, prefix)
    env_file = lake.env(workspace, "s3_append")
    driver = workspace.generated / "orders_s3_append.py"
    fresh = Counter(
        (o.order_id, o.customer_id, o.amount, o.coupon) for o in data.orders if o.status == "NEW"
    )

    def landed() -> Counter[tuple[Any, ...]]:
        rows = store.json_lines(s3, CURATED, store.data_files(s3, CURATED, prefix))
        return Counter(
            (r["order_id"], r["customer_id"], r["amount"], r.get("coupon")) for r in rows
        )

    before: set[str] = set()
    for times in (1, 2):
        done = lake.run(driver, env_file)
        assert done.returncode == 0, failure(done)
        [load] = load_events(done)
        assert (load["committer"], load["mode"]) == ("magic", "append")
        assert load["records_out"] == sum(fresh.values())
        now = set(store.data_files(s3, CURATED, prefix))
        committer_checked(s3, prefix, "magic", now - before)
        assert landed() == Counter({k: n * times for k, n in fresh.items()})
        before = now


# --- every format and write mode, committed by the S3A committers -----------------------------


def matrix_definition() -> dict[str, Any]:
    loads = []
    for fmt in FORMATS:
        for name, (mode, parts, _) in MODES.items():
            load: dict[str, Any] = {
                "input": "slim",
                "type": "s3",
                "connection": "lake",
                "path": f"s3a://{CURATED}/${{matrix_out}}/{fmt}/{name}/",
                "format": fmt,
                "mode": mode,
            }
            if parts:
                load["partition_by"] = parts
            if fmt == "csv":
                load["options"] = {"header": True}
            loads.append(load)
    return {
        "name": "s3_matrix",
        "extract": [
            {
                "id": "orders",
                "type": "s3",
                "connection": "lake",
                "path": f"s3a://{RAW}/${{matrix_in}}/*.csv",
                "format": "csv",
                "schema": "order.avsc",
                "options": {"header": True},
            }
        ],
        "transform": [
            {
                "id": "slim",
                "type": "select",
                "input": "orders",
                "columns": {c: c for c in ("order_id", "customer_id", "amount", "status")},
            }
        ],
        "load": loads,
        "retry": {"max_retries": 0, "delay_seconds": 1},
    }


def test_every_format_appends_overwrites_and_replaces_partitions_through_s3a_committers(
    workspace: Workspace, lake: Lake, spark: Any, tmp_path: Path
) -> None:
    creds, s3 = lake.creds, lake.s3
    defs = tmp_path / "defs"
    (defs / "env").mkdir(parents=True)
    variables = {"matrix_in": "matrix", "matrix_out": "matrix"}
    check_env = {"variables": variables, "connections": {"lake": lake_profile("http://x")}}
    (defs / "env" / "check.json").write_text(json.dumps(check_env))
    (defs / "s3_matrix.json").write_text(json.dumps(matrix_definition()))
    compile_definitions([defs / "s3_matrix.json"], tmp_path / "generated")
    driver = tmp_path / "generated" / "s3_matrix.py"

    run_id = uuid.uuid4().hex[:8]
    out = f"matrix-{run_id}"
    a = demo.generate(orders=3_000, customers=100, seed=11).orders
    b = [
        replace(o, order_id=o.order_id + 1_000_000)
        for o in demo.generate(orders=1_500, customers=100, seed=12).orders
        if o.status == "PAID"
    ]
    store.put_orders(s3, RAW, f"matrix-{run_id}-a/", a)
    store.put_orders(s3, RAW, f"matrix-{run_id}-b/", b)
    store.point_spark_at(spark, creds, CURATED)
    without_paid = [o for o in a if o.status != "PAID"]
    # input, then per mode what each path must hold after the run
    runs = [
        ("a", {"append": slim(a), "overwrite": slim(a), "partitioned": slim(a)}),
        ("a", {"append": slim(a + a), "overwrite": slim(a), "partitioned": slim(a)}),
        (
            "b",
            {
                "append": slim(a + a + b),
                "overwrite": slim(b),
                "partitioned": slim(without_paid + b),
            },
        ),
    ]
    seen: dict[str, set[str]] = defaultdict(set)
    try:
        for number, (source, want) in enumerate(runs, start=1):
            env_file = lake.env(
                workspace,
                f"matrix{number}",
                variables={"matrix_in": f"matrix-{run_id}-{source}", "matrix_out": out},
            )
            started = time.monotonic()
            done = lake.run(driver, env_file)
            assert done.returncode == 0, failure(done)
            loads = load_events(done)
            assert len(loads) == len(FORMATS) * len(MODES)
            by_path = {e["path"]: e for e in loads}
            for fmt in FORMATS:
                for name, (mode, _, committer) in MODES.items():
                    prefix = f"{out}/{fmt}/{name}/"
                    event = by_path[f"s3a://{CURATED}/{prefix}"]
                    assert (event["committer"], event["mode"]) == (committer, mode)
                    now = set(store.data_files(s3, CURATED, prefix))
                    if name == "append":
                        written = now - seen[prefix]
                    elif name == "overwrite":
                        written = now
                    else:
                        statuses = {o.status for o in (a if source == "a" else b)}
                        written = {
                            k for k in now if k.split("/")[-2].removeprefix("status=") in statuses
                        }
                    committer_checked(s3, prefix, committer, written)
                    seen[prefix] = now
                    got = landed_slim(spark, fmt, f"s3a://{CURATED}/{prefix}")
                    assert got == want[name], (number, fmt, name, sum(got.values()))
            assert time.monotonic() - started < 300
    finally:
        store.clear(s3, CURATED, out + "/")
        store.clear(s3, RAW, f"matrix-{run_id}")


# --- failures ----------------------------------------------------------------------------------


def test_a_wrong_secret_key_fails_at_once_as_authentication_and_never_leaks(
    workspace: Workspace, creds: dict[str, Any], submit_env: dict[str, str], tmp_path: Path
) -> None:
    with store.moto_with_iam(tmp_path / "moto.log") as iam:
        good = store.client(iam.endpoint, iam.access_key, iam.secret_key)
        good.create_bucket(Bucket=RAW)
        store.put_orders(good, RAW, "orders/", workspace.data_set.orders[:500])
        path = tmp_path / "vault.json"
        master = secrets.token_urlsafe(16)
        vault = FileVault.create(path, MasterKey.from_password(master), FAST_KDF)
        wrong = canary_value(special=True)
        vault.put(Reference.entry("services/s3#access_key", str(path)), Secret(iam.access_key))
        vault.put(Reference.entry("services/s3#secret_key", str(path)), Secret(wrong))
        env_file = env_for(workspace, creds, path, "s3_wrong_key", endpoint=iam.endpoint)
        done = run(workspace.generated / "orders_s3_append.py", env_file, master, submit_env)
    assert done.returncode == 1, failure(done)
    finished = done.event("run_finished")[-1]
    assert finished["error_kind"] == "authentication", failure(done)
    assert "lake" in finished["error"] and "s3a://raw/orders/*.csv" in finished["error"]
    assert len(done.event("attempt_started")) == 1  # authentication failures are not retried
    texts = [json.dumps(e) for e in done.events] + [done.stderr]
    texts += [c.decode("utf-8", "replace") for c in files(workspace.generated).values()]
    texts += [c.decode("utf-8", "replace") for c in files(workspace.root / "stage").values()]
    assert_no_leak(texts, [Canary("vault://services/s3#secret_key", wrong)])


def test_an_unreachable_endpoint_is_transient_retried_and_bounded(
    workspace: Workspace, lake: Lake
) -> None:
    endpoint = f"http://127.0.0.1:{store.free_port()}"  # nothing listens there
    env_file = lake.env(workspace, "s3_down", endpoint=endpoint)
    started = time.monotonic()
    done = lake.run(workspace.generated / "orders_s3_append.py", env_file)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, failure(done)
    finished = done.event("run_finished")[-1]
    assert finished["error_kind"] == "transient", failure(done)
    assert "unreachable" in finished["error"] and "ConnectException" in finished["error"]
    attempts = done.event("attempt_failed")
    assert [a["error_kind"] for a in attempts] == ["transient", "transient"]  # max_retries: 1
    assert elapsed < 120, elapsed


# --- in-process, with the test session --------------------------------------------------------


def connection(creds: dict[str, Any], endpoint: str | None = None) -> S3Profile:
    values = {
        "vault://services/s3#access_key": creds["s3"]["access_key"],
        "vault://services/s3#secret_key": creds["s3"]["secret_key"],
    }
    return open_profile(
        "lake",
        lake_profile(endpoint or creds["s3"]["endpoint"]),
        "test",
        lambda ref: Secret(values[ref]),
        S3Profile,
    )


ID_ONLY = DatasetSchema(
    {"type": "record", "name": "row", "fields": [{"name": "id", "type": "long"}]}, "`id` BIGINT"
)


def test_a_missing_bucket_or_path_is_terminal_and_names_it(
    creds: dict[str, Any], s3: Any, spark: Any
) -> None:
    from etlc.connectors.s3 import S3Extractor, S3Loader

    schema = ID_ONLY
    missing = f"s3a://{CURATED}/nothing-{uuid.uuid4().hex[:8]}/*.csv"
    with pytest.raises(TerminalError, match="does not exist") as err:
        S3Extractor(connection(creds), missing, "csv", schema).extract(spark)
    assert missing in str(err.value) and type(err.value) is TerminalError
    bucket = f"etlc-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(TerminalError, match="bucket") as err:
        S3Extractor(connection(creds), f"s3a://{bucket}/x/*.csv", "csv", schema).extract(spark)
    assert bucket in str(err.value)
    loader = S3Loader(connection(creds), f"s3a://{bucket}/out/", "csv")
    with pytest.raises(TerminalError, match="bucket"):
        loader.load(spark.range(3), "append")


def test_an_unreachable_endpoint_fails_in_seconds(creds: dict[str, Any], spark: Any) -> None:
    from etlc.connectors.s3 import S3Extractor

    bucket = f"etlc-down-{uuid.uuid4().hex[:8]}"
    conn = connection(creds, endpoint=f"http://127.0.0.1:{store.free_port()}")
    started = time.monotonic()
    with pytest.raises(TransientError, match="unreachable"):
        S3Extractor(conn, f"s3a://{bucket}/x/*.csv", "csv", ID_ONLY).extract(spark)
    assert time.monotonic() - started < 30


def test_the_loader_commits_with_the_committer_it_reports(
    creds: dict[str, Any], s3: Any, spark: Any
) -> None:
    """In this session spark-hadoop-cloud is on the class path only if jars/ has it: either way
    the committer the loader reports is the one whose manifest lands, and the data is exact."""
    from etlc.connectors.s3 import S3Loader, s3a_committers_available

    prefix = f"inproc-{uuid.uuid4().hex[:8]}/"
    path = f"s3a://{CURATED}/{prefix}"
    before = spark.conf.get("spark.sql.sources.commitProtocolClass")
    df = spark.createDataFrame([(i, f"n{i}") for i in range(50)], "id bigint, name string")
    loader = S3Loader(connection(creds), path, "csv", options={"header": "true"})
    try:
        for _ in range(2):
            loader.load(df, "append")
        expected = "magic" if s3a_committers_available(spark) else "file"
        assert loader.describe()["committer"] == expected
        manifest = store.success(s3, CURATED, prefix)
        if expected == "file":
            assert manifest == {}  # FileOutputCommitter's empty marker: no S3A committer ran
        else:
            assert manifest["committer"] == "magic"
        assert spark.conf.get("spark.sql.sources.commitProtocolClass") == before
        store.point_spark_at(spark, creds, CURATED)
        back = spark.read.option("header", True).schema("id BIGINT, name STRING").csv(path)
        assert sorted(tuple(r) for r in back.collect()) == sorted(
            [(i, f"n{i}") for i in range(50)] * 2
        )
    finally:
        store.clear(s3, CURATED, prefix)


@pytest.fixture(autouse=True)
def _no_stray_staging() -> Iterator[None]:
    yield
    assert not (ROOT / "tmp").exists(), "a staging committer wrote under the working directory"
