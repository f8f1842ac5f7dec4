"""End-to-end fixtures: compiled drivers, generated data, spark-submit, a standalone cluster."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.cli import local_submit_env
from tests.integration import databases

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SUBMIT_TIMEOUT = 600
# The drivers the tests submit are short-lived JVMs on a small CI machine: the C1 compiler
# alone starts them much faster (C2's background compilation competes for the few cores).
# Only for the tests' own submissions: the benchmarks under bench/ submit without it, and
# `Background` (which bench/stream_seed.py runs etlc's stream with) adds it only when asked.
# ETLC_TEST_JVM_OPTS replaces them (empty: none), to compare.
TEST_JVM_OPTS = os.environ.get("ETLC_TEST_JVM_OPTS", "-XX:TieredStopAtLevel=1")
# A JVM whose class path is not the archive's starts without it; it need not say so.
_CDS_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"
_CDS_JOB = """
import sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false").getOrCreate()
df = spark.range(1000).selectExpr("id", "id % 7 AS k", "CAST(id AS DECIMAL(12,2)) AS amount")
df.groupBy("k").sum("amount").write.mode("overwrite").json(sys.argv[1])
spark.read.json(sys.argv[1]).count()
spark.stop()
"""


@functools.cache
def submit_jvm_opts() -> str:
    """TEST_JVM_OPTS, and the archive of Spark's classes made once per test session (class
    data sharing): a test's spark-submit then starts its JVM without loading and verifying
    Spark's classes again (a trivial job took 5.1 s instead of 9.1 s here). Without an archive
    (ETLC_TEST_JVM_OPTS set, or making it failed), TEST_JVM_OPTS alone."""
    if "ETLC_TEST_JVM_OPTS" in os.environ:
        return TEST_JVM_OPTS
    work = Path(tempfile.mkdtemp(prefix="etlc-cds-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # 150 MB: gone with the session
    archive, job = work / "spark-classes.jsa", work / "job.py"
    job.write_text(_CDS_JOB, encoding="utf-8")
    environ = local_submit_env("local[2]", "local")
    environ.update(SPARK_LOCAL_IP="127.0.0.1", ETLC_JARS_DIR=str(ROOT / "jars"))
    environ["SPARK_SUBMIT_OPTS"] = f"{TEST_JVM_OPTS} -XX:ArchiveClassesAtExit={archive}"
    done = subprocess.run(
        [environ["SPARK_SUBMIT"], str(job), str(work / "out")],
        env=environ,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0 or not archive.exists():
        print(f"tests: no class data archive ({done.stderr[-500:]})", file=sys.stderr)
        return TEST_JVM_OPTS
    return f"{TEST_JVM_OPTS} -XX:SharedArchiveFile={archive} {_CDS_QUIET}"


def submit_environ(
    master: str, extra_env: dict[str, str] | None = None, jvm_opts: str | None = None
) -> dict[str, str]:
    """The environment a generated submit script runs in, with ``jvm_opts`` for its JVM
    (default: :func:`submit_jvm_opts`)."""
    jvm_opts = submit_jvm_opts() if jvm_opts is None else jvm_opts
    environ = local_submit_env(master, "local")
    environ.update(ETLC_JARS_DIR=str(ROOT / "jars"), SPARK_LOCAL_IP="127.0.0.1")
    if jvm_opts:
        environ["SPARK_SUBMIT_OPTS"] = f"{environ.get('SPARK_SUBMIT_OPTS', '')} {jvm_opts}".strip()
    environ.update(extra_env or {})
    return environ


def submit_script(driver: Path, faults: str | None = None) -> Path:
    """The driver's generated submit script; with ``faults``, a copy beside it that submits
    ``tests/faults.py`` (the test-only fault injector) running the driver, the command
    otherwise unchanged. Production drivers carry no fault injection at all."""
    script = driver.with_suffix(".submit.sh")
    if faults is None:
        return script
    main = f'"$here"/{driver.name} "${{driver_args[@]}}"'
    text = script.read_text(encoding="utf-8")
    assert text.count(main) == 1, f"{script} does not end by submitting {driver.name}"
    entry = f"{shlex.quote(str(ROOT / 'tests' / 'faults.py'))} {shlex.quote(faults)} "
    faulted = script.with_name(f"{driver.stem}.faults-{uuid.uuid4().hex[:8]}.submit.sh")
    faulted.write_text(text.replace(main, entry + main), encoding="utf-8")
    return faulted


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Workspace:
    root: Path
    generated: Path
    data: Path
    out: Path
    env_file: Path
    data_set: demo.DemoData

    def write_env(self, name: str, variables: dict[str, str], **settings: Any) -> Path:
        path = self.root / f"{name}.json"
        doc = {
            "variables": variables,
            "spark": dict(databases.TEST_SPARK_CONF),
            "etlc": {"stage_dir": str(self.root / "stage"), **settings},
        }
        path.write_text(json.dumps(doc), encoding="utf-8")
        return path


@dataclass
class Submission:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]


def compile_definitions(paths: list[Path], out: Path, spark_version: str | None = None) -> None:
    line = ["--spark-version", spark_version] if spark_version else []
    done = subprocess.run(
        [str(BIN / "etlc"), "compile", *map(str, paths), "--out", str(out), *line],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="session")
def creds() -> dict[str, Any]:
    """The local services' settings and passwords (``.services/credentials.json``)."""
    return databases.credentials()


@pytest.fixture(scope="session")
def vault(tmp_path_factory: pytest.TempPathFactory, creds: dict[str, Any]) -> tuple[Path, str]:
    """A vault holding the services' secrets, and its master password."""
    path = tmp_path_factory.mktemp("vault") / "vault.json"
    return path, databases.seed_vault(path, creds)


@pytest.fixture(scope="session")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("e2e")
    generated = root / "generated"
    compile_definitions(sorted((ROOT / "pipelines").glob("*.json")), generated)
    data_set = demo.generate(orders=20_000, customers=500, seed=7)
    data = root / "data"
    demo.write(data_set, data, files=3)
    ws = Workspace(root, generated, data, root / "out", root / "env.json", data_set)
    ws.env_file = ws.write_env("env", {"data_dir": str(data), "out_dir": str(root / "out")})
    return ws


def submit(
    driver: Path,
    env_file: Path,
    master: str = "local[2]",
    extra_env: dict[str, str] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    *,
    faults: str | None = None,
    args: Sequence[str] = (),
) -> Submission:
    """Run a generated submit script exactly as a user would, and parse its JSON log lines.

    ``on_event`` sees each log event as the driver writes it, so a test can act mid-run
    (crash a server once an attempt has failed, say). ``faults``: see ``submit_script``.
    ``args``: more of the driver's arguments.
    """
    environ = submit_environ(master, extra_env)
    script = submit_script(driver, faults)
    events: list[dict[str, Any]] = []
    with tempfile.TemporaryFile("w+", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            ["bash", str(script), "--env-file", str(env_file), *args],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        watchdog = threading.Timer(SUBMIT_TIMEOUT, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("{"):
                    events.append(json.loads(line))
                    if on_event is not None:
                        on_event(events[-1])
            returncode = proc.wait()
        finally:
            watchdog.cancel()
            proc.kill()
        stderr.seek(0)
        return Submission(returncode, events, stderr.read())


_STARTED: list[Background] = []  # the submissions the running test started


@pytest.fixture(autouse=True)
def _no_stream_outlives_its_test() -> Iterator[None]:
    """A test that fails before it stops its stream would leave the driver running through
    the tests after it (holding tables, cores and ports): it is killed once the test ends."""
    yield
    while _STARTED:
        started = _STARTED.pop()
        if started.proc.poll() is None:
            started.crash()


class Background:
    """A generated submit script running in the background, as a scheduler would run a stream."""

    def __init__(
        self,
        driver: Path,
        env_file: Path,
        log: Path,
        extra_env: dict[str, str] | None = None,
        *,
        jvm_opts: str = "",
        faults: str | None = None,
    ) -> None:
        """``jvm_opts``: the tests pass TEST_JVM_OPTS; the benchmark runs the JVM's defaults."""
        environ = submit_environ("local[2]", extra_env, jvm_opts)
        self.log = log
        with log.open("w", encoding="utf-8") as out:
            self.proc = subprocess.Popen(
                ["bash", str(submit_script(driver, faults)), "--env-file", str(env_file)],
                cwd=ROOT,
                env=environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, to crash it as a whole
            )
        _STARTED.append(self)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except json.JSONDecodeError:  # a line still being written
                    continue
        return [e for e in found if name is None or e.get("event") == name]

    def wait_for(
        self, what: str, done: Callable[[], bool], timeout: float = 240, every: float = 0.5
    ) -> None:
        """``every``: seconds between two looks (a look that runs Spark here takes cores from
        the driver: look seldom)."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.proc.poll() is not None:
                pytest.fail(
                    f"the driver exited ({self.proc.returncode}) before {what}:\n"
                    + self.log.read_text()[-4000:]
                )
            if time.monotonic() > deadline:
                self.crash()
                pytest.fail(f"no {what} within {timeout:.0f} s:\n" + self.log.read_text()[-4000:])
            time.sleep(every)

    def stop(self, timeout: float = 180) -> int:
        """SIGTERM to the Python driver itself (its pid is in `run_started`), then wait."""
        [started] = self.events("run_started")
        os.kill(int(started["pid"]), signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.crash()
            raise

    def crash(self) -> None:
        """SIGKILL to every process of the submission: no shutdown hook runs."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(60)


def compile_variant(
    tmp: Path, doc: dict[str, Any], check_env: dict[str, Any], spark_version: str | None = None
) -> Path:
    """Compile the definition ``doc`` beside ``check_env`` (the environment file the checker
    reads for variables and connection profiles), for ``spark_version`` (default: the
    project's line); return the generated driver."""
    defs = tmp / "defs"
    (defs / "env").mkdir(parents=True, exist_ok=True)
    (defs / "env" / "check.json").write_text(json.dumps(check_env), encoding="utf-8")
    path = defs / f"{doc['name']}.json"
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    compile_definitions([path], tmp / "generated", spark_version)
    return tmp / "generated" / f"{doc['name']}.py"


def example(name: str) -> dict[str, Any]:
    """An example definition from pipelines/, as a document a test can vary."""
    doc: dict[str, Any] = json.loads((ROOT / "pipelines" / f"{name}.json").read_text("utf-8"))
    return doc


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def standalone_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Spark standalone cluster of one master and one worker on 127.0.0.1."""
    work = tmp_path_factory.mktemp("cluster")
    port, ui = _free_port(), _free_port()
    environ = local_submit_env("", "local")
    daemon_opts = f"{environ.get('SPARK_DAEMON_JAVA_OPTS', '')} {TEST_JVM_OPTS}".strip()
    environ.update(
        SPARK_LOCAL_IP="127.0.0.1", SPARK_LOG_DIR=str(work), SPARK_DAEMON_JAVA_OPTS=daemon_opts
    )
    spark_class = str(BIN / "spark-class")
    master = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.master.Master",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--webui-port",
            str(ui),
        ],
        env=environ,
        stdout=(work / "master.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"spark://127.0.0.1:{port}"
    worker = subprocess.Popen(
        [
            spark_class,
            "org.apache.spark.deploy.worker.Worker",
            url,
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "3g",
            "--webui-port",
            str(_free_port()),
            "--work-dir",
            str(work / "work"),
        ],
        env=environ,
        stdout=(work / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as resp:
                    state = json.load(resp)
                if state.get("aliveworkers", 0) >= 1:
                    break
            except (OSError, ValueError):
                # Not up yet; or just up, its JSON page not yet attached: the master answers
                # `/json/` with its HTML page for a moment (seen once in CI).
                pass
            if (
                time.monotonic() > deadline
                or master.poll() is not None
                or worker.poll() is not None
            ):
                logs = (work / "master.log").read_text() + (work / "worker.log").read_text()
                pytest.fail(f"standalone cluster did not come up:\n{logs[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        for proc in (worker, master):
            proc.terminate()
        for proc in (worker, master):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
