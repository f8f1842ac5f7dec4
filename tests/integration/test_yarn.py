"""Compiled drivers on a real YARN and HDFS (`scripts/services.sh up yarn`: Hadoop's minicluster).

The project is a temporary folder outside this checkout (`etlc init`, the demo's definitions
copied in, `etlc compile`); each pipeline is submitted with its generated submit command and
`--master yarn`, reads its input from HDFS and writes its output to HDFS (or PostgreSQL), and
the test reads the result back and compares it row for row.

In cluster mode the driver runs in a YARN container: its JSON log lines are read from the
container's stdout, where YARN keeps them. The PostgreSQL run takes its password from a Hadoop
credential provider (a JCEKS keystore on HDFS, the `hadoop` vault backend), and the leak canary
then reads the submit command, the running driver's Spark UI environment (through the
ResourceManager's proxy), the event log and everything the NodeManager kept of the application.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from etlc import demo
from tests import leak_canary
from tests.integration import databases as db
from tests.integration.conftest import BIN, ROOT, submit_environ
from tests.integration.test_database_loads import Target, live, services

CONF = ROOT / ".services" / "yarn" / "conf"
TIMEOUT = 600
# The driver and executor at Spark's smallest, for a 2-core machine that runs everything else.
SPARK = {
    "spark.driver.memory": "512m",
    "spark.executor.memory": "512m",
    "spark.executor.instances": "1",
    "spark.executor.cores": "1",
    "spark.sql.shuffle.partitions": "2",
    # The containers run this interpreter (its site-packages hold pyspark and etlc's
    # dependencies); a real cluster names its nodes' Python, or ships an environment archive.
    "spark.pyspark.python": sys.executable,
}
# The application id spark-submit reports, e.g. "Submitted application application_17..._0001".
APP_ID = re.compile(r"application_\d+_\d+")


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass(frozen=True)
class Hadoop:
    """The running minicluster, as `.services/yarn/conf/cluster.properties` describes it."""

    conf_dir: Path
    fs: str
    rm_web: str
    log_dirs: list[Path]
    local_dirs: list[Path]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://{self.rm_web}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def app(self, app_id: str) -> dict[str, Any]:
        """The application once YARN has recorded its end. In client mode spark-submit returns
        when the driver stops, while the application master is still unregistering: until
        then the ResourceManager reports it RUNNING with final status UNDEFINED."""

        def ended() -> dict[str, Any] | None:
            app = dict(self.get(f"/ws/v1/cluster/apps/{app_id}")["app"])
            return app if app["state"] in ("FINISHED", "FAILED", "KILLED") else None

        return dict(wait_for(f"end of {app_id}", ended, 60))

    def attempts(self, app_id: str) -> list[dict[str, Any]]:
        return list(
            self.get(f"/ws/v1/cluster/apps/{app_id}/appattempts")["appAttempts"]["appAttempt"]
        )

    def running(self) -> list[str]:
        apps = self.get("/ws/v1/cluster/apps?states=RUNNING").get("apps") or {}
        return [a["id"] for a in apps.get("app", [])]

    def driver_log(self, app_id: str) -> Path:
        """The first attempt's first container (the application master: the driver) stdout."""
        found = [p for d in self.log_dirs for p in d.glob(f"{app_id}/container_*_01_000001/stdout")]
        assert found, f"no driver stdout for {app_id} under {self.log_dirs}"
        return found[0]

    def kept(self, app_id: str) -> dict[str, bytes]:
        """Every file the NodeManager kept of the application: logs, launch scripts, the Spark
        settings it localized, the shipped files."""
        texts: dict[str, bytes] = {}
        for d in self.log_dirs:
            texts.update(leak_canary.files(d / app_id) if (d / app_id).exists() else {})
        for d in self.local_dirs:
            kept = [*d.glob(f"usercache/*/appcache/{app_id}"), *d.glob(f"nmPrivate/{app_id}")]
            for app_dir in kept:
                texts.update(leak_canary.files(app_dir))
            for cache in d.glob("usercache/*/filecache"):
                texts.update(leak_canary.files(cache))
        # The ResourceManager's and NodeManager's own logs (the application summary, say).
        for log in ("hadoop.log", "minicluster.log"):
            texts[log] = (self.conf_dir.parent / log).read_bytes()
        return texts


@pytest.fixture(scope="module")
def hadoop() -> Hadoop:
    props = CONF / "cluster.properties"
    if not props.exists():
        pytest.fail("YARN and HDFS are not running: `scripts/services.sh up yarn` (make test does)")
    values = dict(
        line.split("=", 1) for line in props.read_text(encoding="utf-8").splitlines() if "=" in line
    )
    if not Path(f"/proc/{values['pid']}").exists():
        pytest.fail("the minicluster is not running: `scripts/services.sh up yarn`")
    return Hadoop(
        CONF,
        values["fs.defaultFS"],
        values["resourcemanager.web"],
        [Path(p) for p in values["nodemanager.log-dirs"].split(",")],
        [Path(p) for p in values["nodemanager.local-dirs"].split(",")],
    )


class Hdfs:
    """HDFS through the test session's JVM (Hadoop's own client, as Spark uses it)."""

    def __init__(self, spark: Any, hadoop: Hadoop) -> None:
        self.jvm = spark.sparkContext._jvm
        self.gateway = spark.sparkContext._gateway
        self.hadoop = hadoop
        self.uri = uri = hadoop.fs
        self.conf = self.jvm.org.apache.hadoop.conf.Configuration()
        self.fs = self.jvm.org.apache.hadoop.fs.FileSystem.get(
            self.jvm.java.net.URI.create(uri), self.conf
        )

    def path(self, path: str) -> Any:
        return self.jvm.org.apache.hadoop.fs.Path(f"{self.uri}{path}")

    def put(self, local: Path, path: str) -> None:
        self.fs.delete(self.path(path), True)
        self.fs.copyFromLocalFile(
            False, True, self.jvm.org.apache.hadoop.fs.Path(str(local)), self.path(path)
        )

    def fetch(self, path: str, local: Path) -> Path:
        shutil.rmtree(local, ignore_errors=True)
        self.fs.copyToLocalFile(
            False, self.path(path), self.jvm.org.apache.hadoop.fs.Path(str(local)), True
        )
        return local

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(self.path(path)))

    def store_secret(self, provider: str, alias: str, value: str) -> None:
        """What `hadoop credential create ALIAS -provider PROVIDER` does, then mode 0600."""
        path = self.jvm.org.apache.hadoop.fs.Path(provider.replace("jceks://hdfs@", "hdfs://"))
        self.fs.delete(path, False)
        conf = self.jvm.org.apache.hadoop.conf.Configuration()
        conf.set("hadoop.security.credential.provider.path", provider)
        factory = self.jvm.org.apache.hadoop.security.alias.CredentialProviderFactory
        store = factory.getProviders(conf).get(0)
        chars = self.gateway.new_array(self.jvm.char, len(value))
        for i, c in enumerate(value):
            chars[i] = c
        store.createCredentialEntry(alias, chars)
        store.flush()
        self.fs.setPermission(path, self.jvm.org.apache.hadoop.fs.permission.FsPermission("600"))


@pytest.fixture(scope="module")
def hdfs(spark: Any, hadoop: Hadoop) -> Hdfs:
    return Hdfs(spark, hadoop)


@dataclass(frozen=True)
class Project:
    root: Path
    environ: dict[str, str]

    def compile(self, name: str) -> Path:
        _run([str(BIN / "etlc"), "compile", f"pipelines/{name}.json"], self.root, self.environ)
        return self.root / "generated" / f"{name}.submit.sh"

    def env(self, name: str, doc: dict[str, Any]) -> Path:
        path = self.root / "pipelines" / "env" / f"{name}.json"
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return path


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, f"{cmd}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, hadoop: Hadoop) -> Project:
    """A user's project outside this checkout, with the demo's definitions and schemas."""
    root = tmp_path_factory.mktemp("yarn-project") / "project"
    environ = submit_environ("yarn")
    environ.update(HADOOP_CONF_DIR=str(hadoop.conf_dir), YARN_CONF_DIR=str(hadoop.conf_dir))
    _run([str(BIN / "etlc"), "init", str(root)], root.parent, environ)
    # The example's own environment would be checked against the demo's definitions too.
    (root / "pipelines" / "env" / "local.json").unlink()
    for name in ("orders_by_country", "orders_to_postgres"):
        shutil.copy(ROOT / "pipelines" / f"{name}.json", root / "pipelines")
    for schema in ("order.avsc", "customer.avsc"):
        shutil.copy(ROOT / "schemas" / "avro" / schema, root / "schemas" / "avro")
    return Project(root, environ)


def spark_settings(hadoop: Hadoop, **extra: str) -> dict[str, str]:
    # Spark's jars are on every node already (the same pyspark): not uploaded for each submit.
    return {**SPARK, "spark.yarn.jars": f"local:{_spark_home()}/jars/*", **extra}


@dataclass
class YarnRun:
    returncode: int
    output: str  # spark-submit's stdout and stderr
    app_id: str
    events: list[dict[str, Any]]

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def submit_yarn(
    project: Project,
    script: Path,
    env_file: Path,
    mode: str,
    *,
    extra_env: dict[str, str] | None = None,
    while_running: Callable[[str], None] | None = None,
) -> YarnRun:
    """The generated submit command with `--master yarn --deploy-mode MODE`; in cluster mode
    the driver's JSON lines come from its container's stdout, in client mode from ours."""
    environ = dict(project.environ, **(extra_env or {}))
    cmd = ["bash", str(script), "--master", "yarn", "--deploy-mode", mode, "--"]
    cmd += ["--env-file", str(env_file)]
    log = env_file.with_suffix(f".{mode}.log")
    with log.open("w+", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd, cwd=project.root, env=environ, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        watcher = None
        if while_running is not None:
            watcher = threading.Thread(target=_watch, args=(log, proc, while_running), daemon=True)
            watcher.start()
        try:
            returncode = proc.wait(TIMEOUT)
        finally:
            proc.kill()
        if watcher is not None:
            watcher.join(TIMEOUT)
    output = log.read_text(encoding="utf-8")
    ids = APP_ID.findall(output)
    assert ids, f"spark-submit reported no YARN application:\n{output[-4000:]}"
    events = json_lines(output)
    return YarnRun(returncode, output, ids[0], events)


def _watch(log: Path, proc: subprocess.Popen[str], act: Callable[[str], None]) -> None:
    """Calls ``act`` with the application id once spark-submit has reported it."""
    while proc.poll() is None:
        found = APP_ID.findall(log.read_text(encoding="utf-8", errors="replace"))
        if found:
            act(found[0])
            return
        time.sleep(0.5)


def wait_for(what: str, done: Callable[[], Any], timeout: float = 240) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = done()
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def demo_input(hdfs: Hdfs, tmp_path_factory: pytest.TempPathFactory) -> demo.DemoData:
    data = demo.generate(orders=6_000, customers=200, seed=31)
    local = tmp_path_factory.mktemp("yarn-data")
    demo.write(data, local, files=3)
    hdfs.put(local / "orders", "/etlc/in/orders")
    hdfs.put(local / "customers.json", "/etlc/in/customers.json")
    return data


def _demo_env(project: Project, hadoop: Hadoop, name: str) -> Path:
    return project.env(
        name,
        {
            "variables": {
                "data_dir": f"{hadoop.fs}/etlc/in",
                "out_dir": f"{hadoop.fs}/etlc/{name}",
            },
            "spark": spark_settings(hadoop, **{"spark.ui.enabled": "false"}),
            # No scheme: on the cluster's default file system, HDFS, where executors see it.
            "etlc": {"stage_dir": "/etlc/stage"},
            # Every environment of the project names the connections its definitions use.
            "connections": db.profiles(db.credentials()),
        },
    )


def test_cluster_mode_runs_the_demo_in_a_yarn_container_from_hdfs_to_hdfs(
    project: Project, hadoop: Hadoop, hdfs: Hdfs, demo_input: demo.DemoData, tmp_path: Path
) -> None:
    env_file = _demo_env(project, hadoop, "yarn_cluster")
    script = project.compile("orders_by_country")
    run = submit_yarn(project, script, env_file, "cluster")
    assert run.returncode == 0, run.output[-4000:]
    assert not run.events, "in cluster mode the driver's lines are in its container, not here"
    app = hadoop.app(run.app_id)
    assert (app["state"], app["finalStatus"]) == ("FINISHED", "SUCCEEDED")
    events = json_lines(hadoop.driver_log(run.app_id).read_text(encoding="utf-8"))
    [finished] = [e for e in events if e.get("event") == "run_finished"]
    assert (finished["status"], finished["attempts"]) == ("SUCCESS", 1)
    [started] = [e for e in events if e.get("event") == "run_started"]
    # The file shipped with --files, read from the container's own working directory.
    assert started["env_file"] == "yarn_cluster.json"
    out = hdfs.fetch("/etlc/yarn_cluster/orders_by_country", tmp_path / "out")
    assert demo.read_by_country(out) == demo.expected_by_country(demo_input)
    # The stage was on HDFS, and the attempt's files are gone from there after the run.
    assert hdfs.exists(f"/etlc/stage/{finished['run_id']}")
    assert not hdfs.exists(f"/etlc/stage/{finished['run_id']}/attempt-1")


def test_client_mode_runs_the_driver_here_and_its_executors_on_yarn(
    project: Project, hadoop: Hadoop, hdfs: Hdfs, demo_input: demo.DemoData, tmp_path: Path
) -> None:
    env_file = _demo_env(project, hadoop, "yarn_client")
    script = project.compile("orders_by_country")
    run = submit_yarn(project, script, env_file, "client")
    assert run.returncode == 0, run.output[-4000:]
    [finished] = run.event("run_finished")
    assert finished["status"] == "SUCCESS"
    assert run.event("run_started")[0]["env_file"] == str(env_file)
    assert hadoop.app(run.app_id)["finalStatus"] == "SUCCEEDED"
    out = hdfs.fetch("/etlc/yarn_client/orders_by_country", tmp_path / "out")
    assert demo.read_by_country(out) == demo.expected_by_country(demo_input)


def test_a_one_pass_run_publishes_into_hdfs_only_what_it_validated(
    project: Project, hadoop: Hadoop, hdfs: Hdfs, demo_input: demo.DemoData, tmp_path: Path
) -> None:
    """filter_orders reads its source once (its load's job validates it) and moves the files
    into the HDFS target by rename; a source with one bad record leaves that target as the
    first run wrote it."""
    shutil.copy(ROOT / "pipelines" / "filter_orders.json", project.root / "pipelines")
    env_file = _demo_env(project, hadoop, "yarn_one_pass")
    script = project.compile("filter_orders")
    run = submit_yarn(project, script, env_file, "client")
    assert run.returncode == 0, run.output[-4000:]
    [orders] = [e for e in run.event("step_finished") if e["step"] == "orders"]
    assert orders["validated_with"] == "load_1_large_paid"
    target = "/etlc/yarn_one_pass/filter_orders"
    out = hdfs.fetch(target, tmp_path / "out")
    large_paid = [o for o in demo_input.orders if o.status == "PAID" and o.amount >= 500]
    spark = SparkSession.getActiveSession()
    assert spark is not None
    assert spark.read.parquet(str(out)).count() == len(large_paid) > 0
    written = sorted(p.name for p in out.iterdir())
    assert not [n for n in written if n.startswith("_etlc_pending")]

    bad = tmp_path / "bad"
    demo.write(demo_input, bad, files=1)
    csv = bad / "orders" / "part-000.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[3] = ",".join(f if i != 3 else "REFUNDED" for i, f in enumerate(lines[3].split(",")))
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    hdfs.put(bad / "orders", "/etlc/bad/orders")
    doc = json.loads(env_file.read_text(encoding="utf-8"))
    doc["variables"]["data_dir"] = f"{hadoop.fs}/etlc/bad"
    failed = submit_yarn(project, script, project.env("yarn_one_pass_bad", doc), "client")
    assert failed.returncode == 2, failed.output[-4000:]
    [halted] = failed.event("validation_failed")
    assert (halted["step"], halted["invalid"]) == ("orders", 1)
    assert [r["status"] for r in halted["sample"]] == ["REFUNDED"]
    again = hdfs.fetch(target, tmp_path / "again")
    assert sorted(p.name for p in again.iterdir()) == written
    assert spark.read.parquet(str(again)).count() == len(large_paid)


@dataclass
class Observed:
    environment: dict[str, Any] | None = None
    restarted: bool = False


def _observe(hadoop: Hadoop, seen: Observed) -> Callable[[str], None]:
    """While the driver runs: read its Spark UI environment through the ResourceManager's
    proxy, and bring PostgreSQL back once the first attempt has failed."""

    def act(app_id: str) -> None:
        def environment() -> dict[str, Any] | None:
            try:
                return dict(hadoop.get(f"/proxy/{app_id}/api/v1/applications/{app_id}/environment"))
            except (urllib.error.URLError, ValueError, OSError):
                return None

        def failed_once() -> bool:
            try:
                log = hadoop.driver_log(app_id).read_text(encoding="utf-8")
            except AssertionError:
                return False
            return '"event": "attempt_failed"' in log or '"event":"attempt_failed"' in log

        try:
            seen.environment = wait_for("Spark UI environment", environment, 180)
            wait_for("failed first attempt", failed_once, 180)
        finally:
            services("up", "postgres")
            seen.restarted = True

    return act


def _postgres_env(project: Project, hdfs: Hdfs, event_log: str, marker: str) -> Path:
    """An environment whose password is in a JCEKS keystore on HDFS (the `hadoop` backend)."""
    hadoop = hdfs.hadoop
    creds = db.credentials()
    user = os.environ.get("USER", "root")
    provider = f"jceks://hdfs@{hadoop.fs.removeprefix('hdfs://')}/user/{user}/etlc.jceks"
    hdfs.store_secret(provider, "etlc.services.postgres.password", creds["postgres"]["password"])
    hdfs.fs.mkdirs(hdfs.path(event_log))
    spark = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": f"{hadoop.fs}{event_log}",
        # Spark 4 compresses it (zstd) by default; plain, the scan reads its text.
        "spark.eventLog.compress": "false",
        # Not a secret: a value the scan must find where Spark settings end up.
        "spark.etlc.test.marker": marker,
    }
    return project.env(
        "yarn_postgres",
        {
            "variables": {"data_dir": f"{hadoop.fs}/etlc/in-postgres"},
            "spark": spark_settings(hadoop, **spark),
            # Both without a scheme: on HDFS, which outlives the driver's container.
            "etlc": {"stage_dir": "/etlc/stage", "dead_letter_dir": "/etlc/dead-letter"},
            "vault": {"backend": "hadoop", "provider_path": provider},
            "connections": db.profiles(creds),
        },
    )


def test_cluster_mode_postgres_load_reads_its_password_from_a_hadoop_credential_provider(
    project: Project,
    hdfs: Hdfs,
    demo_input: demo.DemoData,
    creds: dict[str, Any],
    tmp_path: Path,
) -> None:
    """PostgreSQL is down when the run starts: the first attempt fails and etlc retries it in
    the same driver. The table refuses one row, so the run ends PARTIAL (exit 3), the YARN
    application FAILED, and YARN makes no second attempt (which would append every row again).
    The password is only ever in the keystore and the driver's memory."""
    hadoop = hdfs.hadoop
    target = Target("postgres", creds)
    target.reset([], primary_key=False)
    fraud = replace(demo_input.orders[0], order_id=len(demo_input.orders) + 1, status="PAID")
    fraud = replace(fraud, coupon="FRAUD")  # the table's CHECK refuses it
    orders = [*demo_input.orders, fraud]
    demo.write(demo.DemoData(orders, []), tmp_path / "in", files=2)
    hdfs.put(tmp_path / "in" / "orders", "/etlc/in-postgres/orders")
    event_log = f"/etlc/event-log-{uuid.uuid4().hex[:8]}"
    marker = leak_canary.Canary("spark.etlc.test.marker", leak_canary.canary_value(special=False))
    env_file = _postgres_env(project, hdfs, event_log, marker.value)
    script = project.compile("orders_to_postgres")
    seen = Observed()
    services("crash", "postgres")
    try:
        run = submit_yarn(
            project, script, env_file, "cluster", while_running=_observe(hadoop, seen)
        )
    finally:
        services("up", "postgres")
    assert run.returncode != 0, "a PARTIAL run fails its YARN application"
    assert hadoop.app(run.app_id)["finalStatus"] == "FAILED"
    assert len(hadoop.attempts(run.app_id)) == 1  # spark.yarn.maxAppAttempts=1
    assert seen.restarted and seen.environment is not None
    events = json_lines(hadoop.driver_log(run.app_id).read_text(encoding="utf-8"))
    [failed] = [e for e in events if e.get("event") == "attempt_failed"]
    assert (failed["attempt"], failed["error_kind"]) == (1, "transient")
    [finished] = [e for e in events if e.get("event") == "run_finished"]
    assert (finished["status"], finished["attempts"]) == ("PARTIAL", 2)
    want = live(orders)
    del want[fraud.order_id]
    assert target.rows() == sorted(want.values())
    # The refused row's key is on HDFS, where the container's disk would have lost it.
    folder = hdfs.fetch(
        f"/etlc/dead-letter/orders_to_postgres/{finished['run_id']}", tmp_path / "dlq"
    )
    [written_file] = folder.glob("load_1_live-*.jsonl")  # one file per write on HDFS
    letters = written_file.read_text(encoding="utf-8")
    [letter] = json_lines(letters)
    # An append has no key: the row is named by its number in the load's input.
    assert (list(letter["key"]), letter["constraint"]) == (["_etlc_row"], "no_fraud")
    assert "FRAUD" not in letters
    [written] = [e for e in events if e.get("event") == "dead_letters_written"]
    assert (
        written["path"] == f"{hadoop.fs}/etlc/dead-letter/orders_to_postgres/{finished['run_id']}"
    )
    _assert_no_leak(project, hdfs, run, seen, Scanned(event_log, marker, tmp_path))


@dataclass(frozen=True)
class Scanned:
    event_log: str  # on HDFS
    marker: leak_canary.Canary  # a setting's value, which the scan must find
    tmp: Path


def _assert_no_leak(
    project: Project, hdfs: Hdfs, run: YarnRun, seen: Observed, scanned: Scanned
) -> None:
    """The password in none of the places a secret could reach on YARN."""
    hadoop, event_log, marker, tmp_path = (
        hdfs.hadoop,
        scanned.event_log,
        scanned.marker,
        scanned.tmp,
    )
    password = db.credentials()["postgres"]["password"]
    canary = leak_canary.Canary("vault://services/postgres#password", password)
    spec = subprocess.run(
        [
            *(str(BIN / "etlc"), "submit-spec", "pipelines/orders_to_postgres.json"),
            *("--env", "yarn_postgres", "--master", "yarn", "--deploy-mode", "cluster"),
        ],
        cwd=project.root,
        env=project.environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )
    assert spec.returncode == 0, spec.stderr
    logs = hdfs.fetch(event_log, tmp_path / "event-log")
    texts: dict[str, str | bytes] = {
        "submit command (etlc submit-spec)": spec.stdout,
        "spark-submit's output": run.output,
        "Spark UI environment (REST, through the ResourceManager proxy)": json.dumps(
            seen.environment
        ),
        "ResourceManager's application report": json.dumps(hadoop.app(run.app_id)),
        **hadoop.kept(run.app_id),
        **leak_canary.files(logs),
        **leak_canary.files(project.root),
    }
    # What the scan covers, so it cannot pass by reading nothing.
    names = "\n".join(texts)
    for must in ("launch_container.sh", "__spark_conf__.properties", "/stdout", "/stderr"):
        assert must in names, must
    assert "yarn_postgres.json" in names and "hadoop.log" in names
    assert any(name.startswith(str(tmp_path / "event-log")) for name in texts)
    # The scan finds what is there: the marker setting in the places a --conf value reaches.
    found = leak_canary.find_leaks(texts, [marker])
    for place in ("__spark_conf__.properties", "Spark UI environment", "event-log", "submit-spec"):
        assert any(place in hit for hit in found), (place, found)
    leak_canary.assert_no_leak(texts, [canary])
