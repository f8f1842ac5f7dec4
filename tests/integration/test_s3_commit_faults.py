"""The S3 endpoint lost while a write is committing: the run fails or retries, and the target
holds either the old data or the complete new data, never a partial set.

moto keeps its objects in memory, so stopping it would lose the evidence. A TCP proxy in the
test stands between S3A and moto instead: the drivers' profile points at it, and it cuts the
connection at an exact moment of the commit, right after moto has answered the first
CompleteMultipartUpload (``POST /<bucket>/<key>?uploadId=...``) of the job commit: one file of
the write is visible, the others are still pending. Every other request that reaches the proxy
after that first one is held back until the cut, so the partial state does not depend on how
the committer's threads race. A cut closes every open connection and the listening socket (new
connections are refused, as from a stopped server); a restore listens again on the same port.

The writes are JSON lines (the test session has no Parquet reader outside Spark), four input
files make four tasks and so four files per write, and the rows are read back with boto3, file
by file, and compared with the generated data.

An append retried after a partial commit would keep the file attempt 1 committed beside
attempt 2's (those rows twice): the loader removes what the failed job made visible first (see
etlc.connectors.magic_jobs). An overwrite whose endpoint stays down through every attempt
cannot keep the old data (Spark deletes it before the job runs) and may hold part of the new:
the run fails saying so.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests.integration import objectstore as store
from tests.integration.conftest import Submission, Workspace, compile_variant, submit
from tests.integration.test_s3 import CURATED, env_for, failure, lake_profile

Row = tuple[int, int, Decimal, str]

FILES = 4  # input files, so tasks, so output files of one write (see Scenario)
ATTEMPTS = 4  # max_retries 3
# A first POST ...?uploadId= is a CompleteMultipartUpload (CreateMultipartUpload is ?uploads).
COMPLETE = re.compile(rb"(?:^|\r\n)POST /([^ ?]+)\?uploadId=[^ ]* HTTP/1\.1\r\n")
CHUNK = 65536


# --- the proxy -------------------------------------------------------------------------------


class CuttingProxy:
    """Forwards 127.0.0.1:<port> to moto; cuts every connection at the first job commit."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = store.free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.armed = False
        self.chosen: socket.socket | None = None  # the connection whose commit goes through
        self.completed_key: str | None = None
        self.down = False
        self.cut_done = threading.Event()
        self.errors: list[BaseException] = []
        self._listen()

    # The test's side.

    def arm(self) -> None:
        with self.lock:
            self.armed = True

    def cut(self) -> None:
        with self.lock:
            if self.down:
                return
            self.down = True
            self.armed = False
            if self.listener is not None:
                self.listener.close()
                self.listener = None
            for s in list(self.sockets):
                _close(s)
            self.sockets.clear()
        self.cut_done.set()

    def restore(self) -> None:
        with self.lock:
            if not self.down:
                return
            self.down = False
            self.chosen = None
        self._listen()

    def close(self) -> None:
        self.cut()

    # The proxy's side.

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        with self.lock:
            self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by a cut
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError as exc:
                self.errors.append(exc)
                _close(client)
                continue
            with self.lock:
                if self.down:
                    _close(client)
                    _close(server)
                    continue
                self.sockets.update((client, server))
            threading.Thread(target=self._requests, args=(client, server), daemon=True).start()
            threading.Thread(target=self._responses, args=(server, client), daemon=True).start()

    def _requests(self, client: socket.socket, server: socket.socket) -> None:
        """Client to moto: spots the first CompleteMultipartUpload and holds back the rest."""
        tail = b""
        while True:
            try:
                data = client.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            window, tail = tail + data, (tail + data)[-1024:]
            with self.lock:
                if self.down:
                    break
                if self.armed and self.chosen is None:
                    match = COMPLETE.search(window)
                    if match is not None:
                        self.chosen = client
                        self.completed_key = match.group(1).decode("ascii", "replace")
                held = self.chosen is not None and self.chosen is not client
            if held:
                self.cut_done.wait(60)
                break
            try:
                server.sendall(data)
            except OSError:
                break
        _close(client)
        _close(server)

    def _responses(self, server: socket.socket, client: socket.socket) -> None:
        """Moto to client: once moto answers the chosen commit, the endpoint goes down."""
        while True:
            try:
                data = server.recv(CHUNK)
            except OSError:
                data = b""
            if not data:
                break
            try:
                client.sendall(data)
            except OSError:
                break
            with self.lock:
                answered = self.chosen is client and not self.down
            if answered:
                # The rest of the answer (headers and body may come apart) gets a moment.
                threading.Timer(0.5, self.cut).start()
        _close(client)
        _close(server)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


@pytest.fixture
def proxy(creds: dict[str, Any]) -> Iterator[CuttingProxy]:
    endpoint = creds["s3"]["endpoint"].removeprefix("http://")
    host, port = endpoint.split(":")
    p = CuttingProxy((host, int(port)))
    try:
        yield p
    finally:
        p.close()
        assert p.errors == [], p.errors


# --- pipeline, data and what the bucket holds -----------------------------------------------


def definition(mode: str) -> dict[str, Any]:
    return {
        "name": f"s3_commit_fault_{mode}",
        "extract": [
            {
                "id": "orders",
                "type": "files",
                "path": "${in_dir}/orders/*.csv",
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
        "load": [
            {
                "input": "slim",
                "type": "s3",
                "connection": "lake",
                "path": f"s3a://{CURATED}/${{target}}/",
                "format": "json",
                "mode": mode,
            }
        ],
        "retry": {"max_retries": ATTEMPTS - 1, "delay_seconds": 5},
    }


@pytest.fixture
def s3(creds: dict[str, Any]) -> Any:
    client = store.connect(creds)
    store.ensure_buckets(client, CURATED)
    return client


@pytest.fixture
def prefix(s3: Any) -> Iterator[str]:
    name = f"commit-faults-{uuid.uuid4().hex[:8]}"
    yield name + "/"
    abort_pending(s3, name + "/")
    store.clear(s3, CURATED, name + "/")


def abort_pending(s3: Any, prefix: str) -> None:
    listed = s3.list_multipart_uploads(Bucket=CURATED, Prefix=prefix)
    for upload in listed.get("Uploads", []):
        s3.abort_multipart_upload(Bucket=CURATED, Key=upload["Key"], UploadId=upload["UploadId"])


def orders(seed: int, first_id: int, count: int = 3_000) -> list[demo.Order]:
    generated = demo.generate(orders=count, customers=100, seed=seed).orders
    return [
        demo.Order(o.order_id + first_id, o.customer_id, o.amount, o.status, o.ordered_at, None)
        for o in generated
    ]


def write_input(directory: Path, rows: list[demo.Order]) -> None:
    folder = directory / "orders"
    folder.mkdir(parents=True)
    for part in range(FILES):
        with (folder / f"part-{part:03d}.csv").open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(demo.ORDER_HEADER)
            for o in rows[part::FILES]:
                stamp = o.ordered_at.strftime("%Y-%m-%dT%H:%M:%SZ")
                out.writerow((o.order_id, o.customer_id, f"{o.amount:.2f}", o.status, stamp, ""))


def seed_target(s3: Any, prefix: str, rows: list[demo.Order]) -> None:
    """The target's old data: two JSON lines files and an empty _SUCCESS marker."""
    for part in range(2):
        body = "".join(
            json.dumps(
                {
                    "order_id": o.order_id,
                    "customer_id": o.customer_id,
                    "amount": str(o.amount),
                    "status": o.status,
                }
            )
            + "\n"
            for o in rows[part::2]
        )
        s3.put_object(Bucket=CURATED, Key=f"{prefix}old-{part}.json", Body=body.encode())
    s3.put_object(Bucket=CURATED, Key=f"{prefix}{store.SUCCESS}", Body=b"")


def slim(rows: list[demo.Order]) -> Counter[Row]:
    return Counter((o.order_id, o.customer_id, o.amount, o.status) for o in rows)


def data_files(s3: Any, prefix: str) -> list[str]:
    """Data objects under ``prefix``, not under a hidden folder (the magic committer's
    ``__magic_job-*`` folders hold its pending-upload manifests until the job is cleaned up)."""
    return [
        k
        for k in store.data_files(s3, CURATED, prefix)
        if not any(part.startswith(("_", ".")) for part in k.removeprefix(prefix).split("/"))
    ]


def landed(s3: Any, prefix: str) -> dict[str, Counter[Row]]:
    """The rows of each data file under ``prefix``."""
    out: dict[str, Counter[Row]] = {}
    for key in data_files(s3, prefix):
        out[key] = Counter(
            (int(r["order_id"]), int(r["customer_id"]), Decimal(r["amount"]), str(r["status"]))
            for r in store.json_lines(s3, CURATED, [key])
        )
    return out


def total(files: dict[str, Counter[Row]]) -> Counter[Row]:
    out: Counter[Row] = Counter()
    for rows in files.values():
        out.update(rows)
    return out


def describe(files: dict[str, Counter[Row]], s3: Any, prefix: str) -> str:
    """What the bucket holds, for an assertion message."""
    lines = [f"{key}: {sum(rows.values())} rows" for key, rows in sorted(files.items())]
    lines.append(f"all keys: {store.keys(s3, CURATED, prefix)}")
    lines.append(f"pending uploads: {store.pending_uploads(s3, CURATED, prefix)}")
    return "\n".join(lines)


def attempts(done: Submission) -> list[tuple[str | None, int | None]]:
    return [(a.get("error_kind"), a.get("retrying_in_s")) for a in done.event("attempt_failed")]


class Scenario:
    """One pipeline, its input and an environment whose lake endpoint is the proxy."""

    def __init__(
        self,
        *,
        tmp: Path,
        workspace: Workspace,
        creds: dict[str, Any],
        vault: tuple[Path, str],
        proxy: CuttingProxy,
        prefix: str,
        mode: str,
    ) -> None:
        variables = {"in_dir": str(tmp / "in"), "target": prefix.rstrip("/")}
        check_env = {"variables": variables, "connections": {"lake": lake_profile("http://x")}}
        self.driver = compile_variant(tmp, definition(mode), check_env)
        self.env_file = env_for(
            workspace,
            creds,
            vault[0],
            f"commit-faults-{uuid.uuid4().hex[:8]}",
            endpoint=proxy.endpoint,
            variables=variables,
        )
        doc = json.loads(self.env_file.read_text(encoding="utf-8"))
        # Each input file its own task (Spark packs small files two to a core otherwise).
        doc["spark"]["spark.sql.files.maxPartitionBytes"] = "64k"
        # S3A's own retries of a refused connection, tightened (the profile may): an attempt
        # fails in seconds, not the minute the connector's defaults allow.
        doc["connections"]["lake"]["properties"] = {
            "attempts.maximum": "1",
            "retry.limit": "1",
            "retry.interval": "50ms",
        }
        self.env_file.write_text(json.dumps(doc), encoding="utf-8")
        self.password = vault[1]
        self.tmp = tmp

    def submit(self, proxy: CuttingProxy, restore_after_s: float | None) -> Submission:
        """Submit with the proxy armed; with ``restore_after_s``, the endpoint comes back that
        long after the first failed attempt (the retry follows 5 s after it), else only once
        the run has ended."""
        timers: list[threading.Timer] = []

        def on_event(event: dict[str, Any]) -> None:
            if (
                event.get("event") == "attempt_failed"
                and restore_after_s is not None
                and not timers
            ):
                timers.append(threading.Timer(restore_after_s, proxy.restore))
                timers[-1].start()

        proxy.arm()
        try:
            done = submit(
                self.driver,
                self.env_file,
                extra_env={"ETLC_VAULT_PASSWORD": self.password},
                on_event=on_event,
            )
            return done
        finally:
            for t in timers:
                t.join()
            proxy.restore()


@pytest.fixture
def scenario_args(
    *,
    tmp_path: Path,
    workspace: Workspace,
    creds: dict[str, Any],
    vault: tuple[Path, str],
    proxy: CuttingProxy,
    prefix: str,
) -> dict[str, Any]:
    return {
        "tmp": tmp_path,
        "workspace": workspace,
        "creds": creds,
        "vault": vault,
        "proxy": proxy,
        "prefix": prefix,
    }


OLD = orders(seed=71, first_id=0, count=1_000)
NEW = orders(seed=72, first_id=1_000_000)


# --- the scenarios -----------------------------------------------------------------------------


def test_an_overwrite_cut_mid_commit_and_back_before_the_retry_lands_exactly_the_new_data(
    scenario_args: dict[str, Any], s3: Any, proxy: CuttingProxy, prefix: str
) -> None:
    scenario = Scenario(**scenario_args, mode="overwrite")
    write_input(scenario.tmp / "in", NEW)
    seed_target(s3, prefix, OLD)

    done = scenario.submit(proxy, restore_after_s=2.0)

    assert proxy.cut_done.is_set() and proxy.completed_key is not None, failure(done)
    assert proxy.completed_key.startswith(f"{CURATED}/{prefix}"), proxy.completed_key
    assert done.returncode == 0, failure(done)
    assert attempts(done) == [("transient", 5)], failure(done)
    assert len(done.event("attempt_started")) == 2
    [finished] = done.event("run_finished")
    assert (finished["status"], finished["attempts"]) == ("SUCCESS", 2), finished
    files = landed(s3, prefix)
    assert total(files) == slim(NEW), describe(files, s3, prefix)
    assert len(files) == FILES, describe(files, s3, prefix)
    manifest = store.success(s3, CURATED, prefix)
    assert manifest["committer"] == "magic"
    assert store.committed(manifest) == sorted(files)
    assert store.pending_uploads(s3, CURATED, prefix) == []


def test_an_append_cut_mid_commit_and_back_before_the_retry_adds_every_new_row_once(
    scenario_args: dict[str, Any], s3: Any, proxy: CuttingProxy, prefix: str
) -> None:
    scenario = Scenario(**scenario_args, mode="append")
    write_input(scenario.tmp / "in", NEW)
    seed_target(s3, prefix, OLD)

    done = scenario.submit(proxy, restore_after_s=2.0)

    assert proxy.cut_done.is_set() and proxy.completed_key is not None, failure(done)
    assert done.returncode == 0, failure(done)
    assert attempts(done) == [("transient", 5)], failure(done)
    [finished] = done.event("run_finished")
    assert (finished["status"], finished["attempts"]) == ("SUCCESS", 2), finished
    files = landed(s3, prefix)
    # A partial commit of attempt 1 plus the whole write of attempt 2 would double some rows.
    doubled = {k: n for k, n in total(files).items() if n > 1}
    assert len(doubled) == 0, (
        f"{len(doubled)} rows landed twice; the file attempt 1 committed before the cut, "
        f"{proxy.completed_key}, stayed beside attempt 2's files:\n" + describe(files, s3, prefix)
    )
    assert total(files) == slim(OLD) + slim(NEW), describe(files, s3, prefix)
    assert store.pending_uploads(s3, CURATED, prefix) == []


def test_an_overwrite_whose_endpoint_stays_down_fails_after_four_attempts_saying_so(
    scenario_args: dict[str, Any], s3: Any, proxy: CuttingProxy, prefix: str
) -> None:
    """Files on S3 cannot be replaced in one step: Spark deletes the old files before the job,
    and a commit cut part way leaves part of the new ones. The run says so, and the target
    never mixes old and new rows nor holds a row twice; a table replaced atomically is what
    `"format": "delta"` is for."""
    scenario = Scenario(**scenario_args, mode="overwrite")
    write_input(scenario.tmp / "in", NEW)
    seed_target(s3, prefix, OLD)

    done = scenario.submit(proxy, restore_after_s=None)

    assert proxy.cut_done.is_set() and proxy.completed_key is not None, failure(done)
    assert done.returncode == 1, failure(done)
    assert attempts(done) == [("transient", 5)] * (ATTEMPTS - 1) + [("transient", None)], failure(
        done
    )
    assert len(done.event("attempt_started")) == ATTEMPTS
    [finished] = done.event("run_finished")
    assert (finished["status"], finished["error_kind"]) == ("FAILED", "transient"), finished
    path = f"s3a://{CURATED}/{prefix}"
    assert "unreachable" in finished["error"] and path in finished["error"]
    assert f"the overwrite may have left {path}" in finished["error"], finished["error"]
    assert "incomplete" in finished["error"] and '"format": "delta"' in finished["error"]
    rows = total(landed(s3, prefix))
    assert rows & slim(OLD) == Counter() or rows == slim(OLD), describe(
        landed(s3, prefix), s3, prefix
    )
    assert rows <= slim(NEW) or rows == slim(OLD), describe(landed(s3, prefix), s3, prefix)
