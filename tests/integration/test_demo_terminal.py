"""`make demo` at a terminal: what a person sees, and the run's files beside it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JAVA_FRAME = re.compile(r"^\s+at [\w$.]+\(|^Caused by:|^\s+\.\.\. \d+ more")


def at_terminal(command: list[str], cwd: Path, timeout: float = 600) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as its stdin, stdout and stderr, as a person
    runs it; what it printed there and its exit code."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "ETLC_LOG_FORMAT"}
    proc = subprocess.Popen(
        command, cwd=cwd, stdin=follower, stdout=follower, stderr=follower, env=environ
    )
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: every writer has exited
                break
            if not chunk:
                break
            out.extend(chunk)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    code = proc.wait(timeout=60)
    return code, out.decode("utf-8", errors="replace").replace("\r\n", "\n")


def test_make_demo_at_a_terminal_reads_as_lines_and_ends_its_run_with_a_summary() -> None:
    code, shown = at_terminal(["make", "--no-print-directory", "demo"], ROOT)
    lines = shown.rstrip("\n").splitlines()
    assert code == 0, shown
    assert len(lines) < 40, shown
    assert not [line for line in lines if JAVA_FRAME.search(line)], shown
    assert not [line for line in lines if line.lstrip().startswith("{")], shown
    [status] = [i for i, line in enumerate(lines) if " run SUCCESS in " in line]
    assert lines[status + 1].split() == ["step", "stage", "rows", "in", "rows", "out", "time"]
    table = lines[status + 3 : status + 3 + 7]
    assert [row.split()[:2] for row in table] == [
        ["orders", "extract"],
        ["customers", "extract"],
        ["live_orders", "transform"],
        ["enriched", "transform"],
        ["with_vat", "transform"],
        ["by_country", "transform"],
        ["load_1_by_country", "load"],
    ]
    assert set(lines[status + 10]) == {"-", " "}  # the table's closing rule
    # Then the demo's own check of what the run wrote.
    assert lines[-1] == "demo: OK - 8 rows equal the expected result"

    [run_id] = re.findall(
        r" run (\S+) of orders_by_country started: batch, env local$", shown, re.M
    )
    runs = ROOT / ".etlc" / "runs" / "orders_by_country"
    events = [json.loads(line) for line in (runs / f"{run_id}.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run_started" and names[-1] == "run_finished"
    # The JVM's stage lines went to the run's file, not to the terminal.
    stages = [e for e in events if e["event"] == "spark_stage_completed"]
    assert stages and all(e["run_id"] == run_id for e in stages)
    results = json.loads((runs / f"{run_id}.json").read_text())
    assert (results["status"], results["exit_code"], results["attempts"]) == ("SUCCESS", 0, 1)
    assert {s["step"]: s["records_out"] for s in results["steps"]}["load_1_by_country"] == 8
