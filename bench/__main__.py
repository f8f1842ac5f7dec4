"""`make bench`: run the benchmark scenarios and write the report under bench/results/.

Each run writes ``<UTC time>.json``, ``<UTC time>.md`` and ``<UTC time>.png`` and copies them
to ``latest.*``. Figures are what this run measured on this machine; compare ratios within a
run, not times across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import (
    compiler,
    complex_batch,
    hostile,
    report,
    simple_batch,
    soak,
    stream_seed,
    upsert,
)

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = (
    "simple_batch",
    "complex_batch",
    "upsert",
    "compiler",
    "hostile_inputs",
    "streaming",
    "restart",
    "rate_search",
)
# Run only when named: the soak takes half an hour and crashes the services under it.
ON_REQUEST = ("soak",)


def _name(result: dict[str, Any]) -> str:
    """The scenario (as --scenarios names it) a result belongs to."""
    renamed = {"streaming_rate_search": "rate_search", "streaming_restart": "restart"}
    scenario = str(result["scenario"])
    return renamed.get(scenario, scenario)


@contextmanager
def progress(name: str, at: int, of: int, every: float = 60.0) -> Iterator[None]:
    """Lines on stderr while a scenario runs (some take half an hour): its start, a line
    each ``every`` seconds, and its end; stdout keeps the results' JSON lines."""
    started = time.monotonic()
    done = threading.Event()

    def say(what: str) -> None:
        clock = time.strftime("%H:%M:%S")
        print(f"{clock} [{at}/{of}] {name}: {what}", file=sys.stderr, flush=True)

    def tick() -> None:
        while not done.wait(every):
            say(f"running for {time.monotonic() - started:.0f} s")

    say("started")
    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
        say(f"finished in {time.monotonic() - started:.0f} s")


def _rates(text: str) -> list[int]:
    return [int(r) for r in text.split(",") if r.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"any of {', '.join(SCENARIOS + ON_REQUEST)} (default: all but "
        f"{', '.join(ON_REQUEST)})",
    )
    parser.add_argument("--records", type=int, default=10_000_000, help="simple batch size")
    parser.add_argument("--complex-records", type=int, default=2_000_000)
    parser.add_argument("--upsert-records", type=int, default=1_000_000)
    parser.add_argument("--definitions", type=int, default=100)
    parser.add_argument("--rate", type=int, default=50_000, help="streaming events/s")
    parser.add_argument("--seconds", type=float, default=210, help="streaming load time")
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument(
        "--search-rates",
        type=_rates,
        default=[100_000, 150_000, 200_000],
        help="rates the search tries, ascending, stopping at the first not kept up",
    )
    parser.add_argument("--search-seconds", type=float, default=100)
    parser.add_argument(
        "--restart-seconds", type=float, default=120, help="streaming load time of a restart"
    )
    parser.add_argument(
        "--restart-down",
        type=float,
        default=20,
        help="seconds a restarted stream is down while the events wait for it",
    )
    parser.add_argument("--soak-minutes", type=float, default=30, help="how long the soak runs")
    parser.add_argument(
        "--fault-every", type=float, default=240, help="seconds between the soak's faults"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--merge",
        type=Path,
        help="an earlier run's JSON: its scenarios this run does not repeat join the report, "
        "each marked with the run it came from",
    )
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SCENARIOS + ON_REQUEST))
    if unknown:
        parser.error(
            f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS + ON_REQUEST)}"
        )
    work = Path(tempfile.mkdtemp(prefix="etlc-bench-"))
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    runs: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "simple_batch": lambda: [simple_batch.run(args.records, work / "simple_batch")],
        "complex_batch": lambda: [complex_batch.run(args.complex_records, work / "complex")],
        "upsert": lambda: [upsert.run(args.upsert_records, work / "upsert")],
        "compiler": lambda: [compiler.run(args.definitions, work / "compiler")],
        "hostile_inputs": lambda: [hostile.run(work / "hostile")],
        "streaming": lambda: [
            stream_seed.run(args.rate, args.seconds, args.warmup, job=job)
            for job in ("etlc", "handwritten")
        ],
        "restart": lambda: [
            stream_seed.restart(args.rate, args.restart_seconds, args.restart_down, job=job)
            for job in ("etlc", "handwritten")
        ],
        "rate_search": lambda: [
            stream_seed.rate_search(args.search_rates, args.search_seconds, args.warmup)
        ],
        "soak": lambda: [soak.run(args.rate, args.soak_minutes, args.fault_every)],
    }
    results: dict[str, Any] = {
        "started": stamp,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "scenarios": [],
        "missing": [s for s in SCENARIOS if s not in wanted],
    }
    for at, name in enumerate(wanted, 1):
        with progress(name, at, len(wanted)):
            measured = runs[name]()
        for result in measured:
            result.pop("p95_series", None)
            result["run"] = stamp
            results["scenarios"].append(result)
            print(json.dumps(result), flush=True)
    if args.merge:
        earlier = json.loads(args.merge.read_text(encoding="utf-8"))
        repeated = {r["scenario"] for r in results["scenarios"]}
        for result in earlier["scenarios"]:
            if result["scenario"] not in repeated:
                result.setdefault("run", earlier["started"])
                results["scenarios"].append(result)
        results["missing"] = [
            s for s in results["missing"] if s not in {_name(r) for r in results["scenarios"]}
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    if report.chart(results, args.out / f"{stamp}.png"):
        results["chart"] = f"{stamp}.png"
    (args.out / f"{stamp}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (args.out / f"{stamp}.md").write_text(report.markdown(results), encoding="utf-8")
    for suffix in (".json", ".md", ".png"):
        if (args.out / f"{stamp}{suffix}").exists():
            shutil.copy(args.out / f"{stamp}{suffix}", args.out / f"latest{suffix}")
    # latest.md shows latest.png, not the stamped copy.
    latest = (args.out / "latest.md").read_text(encoding="utf-8")
    (args.out / "latest.md").write_text(latest.replace(f"]({stamp}.png)", "](latest.png)"))
    print(f"report: {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
