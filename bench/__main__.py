"""`make bench`: run the benchmark scenarios and write the report under bench/results/.

Each run writes ``<UTC time>.json`` and ``<UTC time>.md`` and copies them to ``latest.json``
and ``latest.md``. Figures are what this run measured on this machine; compare ratios within a
run, not times across runs. Scenarios not implemented yet are listed as such in the report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import compiler, simple_batch, stream_seed

RESULTS = Path(__file__).resolve().parent / "results"
NOT_YET = ["complex_batch (S3 + MySQL join, aggregate, S3 overwrite)", "upsert (1M rows, PG/MySQL)"]


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# etlc benchmarks, {report['started']}",
        "",
        f"Machine: {report['machine']}. Ratios compare jobs of this run only.",
        "",
    ]
    for result in report["scenarios"]:
        name = result["scenario"]
        lines.append(f"## {name}")
        lines.append("")
        if name == "simple_batch":
            lines.append(f"{result['records']:,} records; seed floor 100,000 records/s.")
            lines.append("")
            lines.append(
                "| job | seconds | records/s | wall s (with JVM) | CPU avg % | peak RSS MB |"
            )
            lines.append("|---|---|---|---|---|---|")
            for job in result["jobs"]:
                lines.append(
                    f"| {job['job']} | {job['seconds']} | {job['records_per_s']:,} | "
                    f"{job['wall_s']} | {job.get('cpu_avg_pct')} | {job.get('peak_rss_mb')} |"
                )
            lines.append("")
            lines.append(
                f"etlc / hand-written: {result['etlc_over_handwritten']} (target <= 1.15);"
            )
            cost = result["avro_boundary_cost"]
            lines.append(
                f"Avro stage boundary cost: {cost:+.1%} (target <= 20%)."
                if cost is not None
                else ""
            )
        elif name == "compiler":
            lines.append(
                f"{result['definitions']} definitions: lint {result['lint_s']} s, compile "
                f"{result['compile_s']} s, together {result['lint_plus_compile_s']} s "
                f"(target < {result['target_s']} s)."
            )
        elif name == "streaming":
            usage = result.get("driver_usage", {})
            produced = result["produced"]
            lines += [
                f"{result['rate_target']:,} events/s produced for {produced['seconds']} s "
                f"({produced['sent']:,} events): {result.get('events_per_s', 0):,} events/s "
                "consumed after warm-up.",
                "",
                "| latency | ms |",
                "|---|---|",
                f"| p50 (median of batches) | {result.get('latency_p50_ms_median')} |",
                f"| p95 (median of batches) | {result.get('latency_p95_ms_median')} |",
                f"| p95 of the batches' p95 | {result.get('latency_p95_ms_p95')} |",
                f"| max | {result.get('latency_max_ms')} |",
                "",
                f"Driver CPU avg {usage.get('cpu_avg_pct')}%, peak RSS {usage.get('peak_rss_mb')} "
                "MB. Seed floor: p95 < 5,000 ms; target 2,000 ms.",
            ]
        lines.append("")
    lines.append("Not measured yet: " + "; ".join(report["not_yet"]) + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="simple_batch,compiler,streaming")
    parser.add_argument("--records", type=int, default=10_000_000, help="simple batch size")
    parser.add_argument("--definitions", type=int, default=100)
    parser.add_argument("--rate", type=int, default=50_000, help="streaming events/s")
    parser.add_argument("--seconds", type=float, default=210, help="streaming load time")
    parser.add_argument("--warmup", type=float, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    work = Path(tempfile.mkdtemp(prefix="etlc-bench-"))
    stamp = time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    report: dict[str, Any] = {
        "started": stamp,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "scenarios": [],
        "not_yet": NOT_YET,
    }
    for name in wanted:
        if name == "simple_batch":
            result = simple_batch.run(args.records, work / name)
        elif name == "compiler":
            result = compiler.run(args.definitions, work / name)
        elif name == "streaming":
            result = stream_seed.run(args.rate, args.seconds, args.warmup)
        else:
            parser.error(f"unknown scenario {name}")
        report["scenarios"].append(result)
        print(json.dumps(result), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{stamp}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (args.out / f"{stamp}.md").write_text(markdown(report), encoding="utf-8")
    shutil.copy(args.out / f"{stamp}.json", args.out / "latest.json")
    shutil.copy(args.out / f"{stamp}.md", args.out / "latest.md")
    print(f"report: {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
