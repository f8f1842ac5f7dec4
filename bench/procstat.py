"""CPU and memory of a process tree, sampled from /proc (Linux), never estimated.

CPU is the tree's user + system time over wall time, as a share of the machine's cores
(100% = every core busy); memory is the tree's resident set, peak, against the machine's.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
CORES = os.cpu_count() or 1


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = task / "children"
        if children.exists():
            found += [int(c) for c in children.read_text().split()]
    return found


def tree(pid: int) -> list[int]:
    pids, pending = [], [pid]
    while pending:
        current = pending.pop()
        pids.append(current)
        try:
            pending += _children(current)
        except OSError:
            continue
    return pids


def _cpu_and_rss(pids: list[int]) -> tuple[float, int]:
    ticks, rss = 0, 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            # utime, stime, and cutime, cstime: children that ended and were waited for (a
            # database's per-connection processes) count in their parent once gone.
            ticks += sum(int(f) for f in fields[11:15])
            rss += int(fields[21]) * PAGE
        except (OSError, ValueError, IndexError):
            continue  # the process ended between listing and reading
    return ticks / TICKS, rss


def total_memory() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Sampler:
    """Samples the tree under ``pid`` (or ``pid`` alone) every ``every`` seconds until stopped."""

    pid: int
    every: float = 0.5
    children: bool = True
    samples: list[tuple[float, float, int]] = field(default_factory=list)  # (t, cpu s, rss)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            cpu, rss = _cpu_and_rss(tree(self.pid) if self.children else [self.pid])
            self.samples.append((time.monotonic(), cpu, rss))
            time.sleep(self.every)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        if len(self.samples) < 2:
            return {}
        (t0, c0, _), (t1, c1, _) = self.samples[0], self.samples[-1]
        peak = max(s[2] for s in self.samples)
        return {
            "cpu_avg_pct": round(100 * (c1 - c0) / max(t1 - t0, 1e-9) / CORES, 1),
            "peak_rss_mb": round(peak / 2**20, 1),
            "peak_mem_pct": round(100 * peak / max(total_memory(), 1), 1),
        }


SERVICES = {  # name -> what its main process's command line contains
    "postgres": "bin/postgres -D",
    "mariadb": "mariadbd",
    "kafka": "kafka.Kafka",
    "moto": "moto.server",
}


def services() -> dict[str, int]:
    """The local services' main processes (their children are sampled with them)."""
    found: dict[str, int] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        for name, pattern in SERVICES.items():
            if pattern in cmdline and name not in found:
                found[name] = int(proc.name)
    return found


class ServiceSamplers:
    """One sampler per running local service, so a report says which process was busy."""

    def __init__(self) -> None:
        self.samplers = {name: Sampler(pid) for name, pid in services().items()}

    def start(self) -> ServiceSamplers:
        for sampler in self.samplers.values():
            sampler.start()
        return self

    def stop(self) -> dict[str, dict[str, float]]:
        return {name: sampler.stop() for name, sampler in self.samplers.items()}
