"""The benchmark report: a Markdown table per scenario and one PNG chart, from a run's JSON.

Every figure printed is one the run measured; a scenario the run skipped is said to be
missing, never filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

BATCH = {  # scenario -> (title, seed floor in records/s, target)
    "simple_batch": (
        "Simple batch: files -> validate -> filter + derive -> files",
        100_000,
        1_000_000,
    ),
    "complex_batch": (
        "Complex batch: CSV in S3 + MySQL -> join, aggregate -> S3 overwrite",
        10_000,
        200_000,
    ),
    "upsert": ("Upsert: into PostgreSQL and MySQL, half of the rows updates", None, None),
}
JOB_ORDER = ("handwritten", "etlc", "etlc_no_avro_boundary", "floor", "sdp")


def bound(job: Mapping[str, Any]) -> str:
    """What held a job back, read off its samples: the cores, a service, or neither."""
    cpu = job.get("cpu_avg_pct") or 0
    services = job.get("services_cpu_pct") or {}
    busiest = max(services.items(), key=lambda kv: kv[1], default=None)
    if busiest and busiest[1] >= 30 and busiest[1] >= cpu / 2:
        return f"{busiest[0]} ({busiest[1]}% of the machine) with the job at {cpu}%"
    if cpu >= 85:
        return f"CPU: the job's JVM keeps both cores busy ({cpu}%)"
    return f"neither the cores ({cpu}%) nor one service: waits (I/O, round trips)"


def _usage(job: Mapping[str, Any]) -> str:
    services = job.get("services_cpu_pct") or {}
    busy = ", ".join(f"{k} {v}%" for k, v in services.items() if v >= 1)
    return busy or "-"


def _batch(result: Mapping[str, Any]) -> list[str]:
    title, floor, target = BATCH[result["scenario"]]
    lines = [f"## {title}", ""]
    size = f"{result['records']:,} records"
    if result["scenario"] == "upsert":
        size += f" ({result['updates']:,} of the keys already in each table)"
    if floor:
        size += f"; seed floor {floor:,} records/s, target {target:,}"
    lines += [size + ".", ""]
    timed = {"wall_s", "records_per_s"}
    parts = sorted({k for j in result["jobs"] for k in j if k.endswith("_s") and k not in timed})
    head = [
        "job",
        "seconds",
        "records/s",
        *(p.replace("_s", " s") for p in parts),
        "wall s (with JVM)",
        "CPU avg %",
        "peak RSS MB",
    ]
    head += ["services' CPU", "bound by"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for job in result["jobs"]:
        cells = [
            job["job"],
            job["seconds"],
            f"{job['records_per_s']:,}",
            *(job.get(p, "-") for p in parts),
            job["wall_s"],
            job.get("cpu_avg_pct", "-"),
            job.get("peak_rss_mb", "-"),
            _usage(job),
            bound(job) if "cpu_avg_pct" in job else "-",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines.append("")
    ratio, cost = result.get("etlc_over_handwritten"), result.get("avro_boundary_cost")
    if ratio is not None:
        lines.append(f"etlc / hand-written: **{ratio}** (target <= 1.00; the seed's: 1.15).")
    if cost is not None:
        lines.append(f"Avro stage boundary cost: **{cost:+.1%}** (target <= 10%; the seed's: 20%).")
    if result.get("etlc_over_sdp") is not None:
        lines.append(
            f"etlc / Spark Declarative Pipelines: **{result['etlc_over_sdp']}** (target <= 1.00; "
            "SDP's time is from its own log, to the second, and it refuses an invalid record "
            "by failing its flow at the first one, with no count)."
        )
    elif result["scenario"] in SDP_NOT_RUN:
        lines.append(f"Spark Declarative Pipelines: {SDP_NOT_RUN[result['scenario']]}.")
    lines += _passes(result)
    if result.get("etlc_of_floor") is not None and result["scenario"] != "upsert":
        lines.append(
            f"etlc's records/s: **{result['etlc_of_floor']:.0%}** of the floor's (the same "
            "reads and writes with nothing in between; target >= 75%)."
        )
    for system in ("postgres", "mysql"):
        faster, over = (
            result.get(f"{system}_over_handwritten"),
            result.get(f"{system}_etlc_over_floor"),
        )
        if faster is not None:
            lines.append(
                f"Into {system}: etlc **{faster}x** the hand-written job's rows/s (target >= 2)"
                + (f"; etlc's time **{over}x** the floor's (target <= 1.5)." if over else ".")
            )
    return lines


def _streaming(results: list[Mapping[str, Any]]) -> list[str]:
    first = results[0]
    lines = [
        "## Streaming: Kafka -> 1-minute windows per status -> PostgreSQL",
        "",
        f"{first['rate_target']:,} events/s produced for {first['produced']['seconds']} s; "
        "figures after the warm-up. Latency: a record's Kafka timestamp to its batch's commit. "
        "Seed floor p95 < 5,000 ms; target 2,000 ms. Start-up, in seconds from the driver's "
        "launch: the query started, and the end of the batch from which every later batch's p95 "
        "stayed under 5 s and under 2 s (events are produced from the query's start on).",
        "",
        "| job | events/s consumed | p50 ms (median) | p95 ms (median) | p95 of the batches' "
        "p95 | max ms | batch ms (median) | kept up | query started s | p95 < 5 s from s | "
        "p95 < 2 s from s | driver CPU % | driver RSS MB | generator CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        usage, gen = r.get("driver_usage", {}), r.get("generator_usage", {})
        steady = r.get("steady_after_s", {})
        cells = [
            r.get("job", "etlc"),
            f"{r.get('events_per_s', 0):,}",
            r.get("latency_p50_ms_median"),
            r.get("latency_p95_ms_median"),
            r.get("latency_p95_ms_p95"),
            r.get("latency_max_ms"),
            r.get("batch_duration_ms_median"),
            "yes" if r.get("sustained") else "no",
            r.get("query_started_after_s", "-"),
            _settled(steady, "p95_under_5000_ms"),
            _settled(steady, "p95_under_2000_ms"),
            usage.get("cpu_avg_pct"),
            usage.get("peak_rss_mb"),
            gen.get("cpu_avg_pct"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    by = {r.get("job", "etlc"): r for r in results}
    if "etlc" in by and "handwritten" in by:
        e, h = by["etlc"], by["handwritten"]
        if e.get("latency_p95_ms_median") and h.get("latency_p95_ms_median"):
            ratio = e["latency_p95_ms_median"] / h["latency_p95_ms_median"]
            lines += ["", f"etlc / hand-written, median p95: **{ratio:.3f}**."]
    return lines


def _settled(steady: Mapping[str, Any], limit: str) -> Any:
    """A start-up figure: seconds, "never" (still over the limit at the end), "-" (a result
    from before the figure was measured)."""
    if limit not in steady:
        return "-"
    return "never" if steady[limit] is None else steady[limit]


def _restarts(results: list[Mapping[str, Any]]) -> list[str]:
    first = results[0]
    lines = [
        "## Streaming: a restart on the checkpoint with a backlog",
        "",
        f"{first['rate_target']:,} events/s produced for {first['produced'].get('seconds')} s; "
        f"the driver stopped a third of the way in and launched again {first['down_s']} s "
        "after it exited, the events produced meanwhile waiting; each micro-batch may take "
        f"{first.get('max_offsets_per_trigger', 0):,} events. Seconds from the second launch.",
        "",
        "| job | down s (stop requested to relaunch) | first batches' rows | query started s "
        "| p95 < 5 s from s | p95 < 2 s from s | exit codes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        steady = r.get("steady_after_s", {})
        cells = [
            r["job"],
            r.get("down_measured_s", "-"),
            ", ".join(f"{n:,}" for n in r.get("first_batches_rows", [])),
            r.get("query_started_after_s"),
            _settled(steady, "p95_under_5000_ms"),
            _settled(steady, "p95_under_2000_ms"),
            ", ".join(str(c) for c in r.get("driver_exit", [])),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def _rate_search(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Streaming: the highest steady rate (etlc)",
        "",
        "Each rate for a fresh topic and driver; kept up = consumed >= 97% of the rate, p95 of "
        "the batches' p95 < 5 s, and the last third's median p95 within 1.5x the first third's.",
        "",
        "| rate | events/s consumed | p95 ms (median) | p95 of p95 ms | kept up | driver CPU % "
        "| generator CPU % |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in result["steps"]:
        cells = [
            f"{s['rate_target']:,}",
            f"{s.get('events_per_s', 0):,}",
            s.get("latency_p95_ms_median"),
            s.get("latency_p95_ms_p95"),
            "yes" if s.get("sustained") else "no",
            s.get("driver_usage", {}).get("cpu_avg_pct"),
            s.get("generator_usage", {}).get("cpu_avg_pct"),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    top = result.get("highest_sustained_rate")
    found = f"**{top:,} events/s**" if top else "none of the rates tried"
    lines += ["", f"Highest rate kept up: {found} (target {result['target_rate']:,})."]
    return lines


def _hostile(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Compiler on hostile inputs",
        "",
        "Each input is as expensive as it can be made within the size limit; each command is a "
        f"fresh interpreter. Bound: {result['bound_seconds']:g} s and "
        f"{result['bound_peak_rss_mb']:g} MB per command.",
        "",
        "| input | bytes | lint s | lint MB | compile s | compile MB | exit codes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in result["inputs"]:
        lint, comp = row["lint"], row["compile"]
        lines.append(
            f"| {row['input']} | {row['bytes']:,} | {lint['seconds']} | {lint['peak_rss_mb']} | "
            f"{comp['seconds']} | {comp['peak_rss_mb']} | {lint['exit']}, {comp['exit']} |"
        )
    lines += [
        "",
        f"Worst: {result['worst_seconds']} s, {result['worst_peak_rss_mb']} MB.",
    ]
    return lines


def _soak(result: Mapping[str, Any]) -> list[str]:
    kinds = ", ".join(f"{f['kind']} at {f['at_s']} s" for f in result["faults"])
    lines = [
        "## Soak: the seed's stream under faults",
        "",
        f"{result['rate_target']:,} events/s for {result['minutes']} minutes; faults: {kinds}. "
        "Every (window, status) row of the sink compared with what Kafka acknowledged.",
        "",
        f"- events acknowledged {result['events_acknowledged']:,}, landed "
        f"{result['events_landed']:,}: **lost {result['lost']}, duplicated "
        f"{result['duplicated']}** ({result['windows']} window rows; produce failures "
        f"{result['produce_failures']}; dropped by the window as later than its watermark: "
        f"{result.get('late_rows_dropped', 'not counted in this run')})",
        f"- faults survived by the stream alone: {result['faults_survived']} of "
        f"{len(result['faults'])} (driver deaths: {result['driver_deaths']}); failed attempts "
        f"{result['attempts_failed']}, retry budget resets {result['retry_budget_resets']}; "
        f"drained {result['drained_s']} s after the producer stopped; driver exit "
        f"{result['driver_exit']}",
        "",
        "| phase | batches | p95 ms (median) | p95 ms (max) |",
        "|---|---|---|---|",
    ]
    for phase, figures in result["phases"].items():
        lines.append(
            f"| {phase} | {figures['batches']} | {figures['p95_ms_median']} | "
            f"{figures['p95_ms_max']} |"
        )
    return lines


SDP_NOT_RUN = {
    "upsert": "not run: a pipeline's flows replace or append to its own tables, and append to "
    "sinks, so an upsert by key into a PostgreSQL or MySQL table cannot be expressed",
    "complex_batch": "not run yet: only the simple batch has an SDP project so far (bench/sdp/)",
}


def _passes(result: Mapping[str, Any]) -> list[str]:
    """How etlc's job read its sources: once, validated by its load's own job, or staged."""
    etlc = next((j for j in result.get("jobs", []) if j["job"] == "etlc"), None)
    extracts = [s for s in (etlc or {}).get("steps", []) if s.get("stage") == "extract"]
    if not extracts:
        return []
    if all("validated_with" in s.get("extra", {}) for s in extracts):
        return [
            "etlc read each source once: its load's job validated the records as it wrote them "
            "(one pass; the Avro boundary inside the plan)."
        ]
    return ["etlc staged each source as Avro files before its transforms (two passes)."]


def markdown(report: Mapping[str, Any]) -> str:
    lines = [
        f"# etlc benchmarks, {report['started']}",
        "",
        f"Machine: {report['machine']}. Every service runs on the same machine. Ratios compare "
        "jobs of this run only. Each job is timed inside itself, its SparkSession already up; "
        "the wall time includes JVM start-up. CPU is the job's process tree over the machine's "
        "cores, sampled from /proc; the services' CPU is each local service's share meanwhile.",
        "",
    ]
    by_run: dict[str, list[str]] = {}
    for r in report["scenarios"]:
        if r.get("run"):
            by_run.setdefault(r["run"], []).append(r["scenario"])
    if len(by_run) > 1:
        each = "; ".join(f"{run}: {', '.join(names)}" for run, names in sorted(by_run.items()))
        lines += [f"Scenarios from more than one run (each section from one run): {each}.", ""]
    if report.get("chart"):
        lines += [f"![benchmarks]({report['chart']})", ""]
    streams = [r for r in report["scenarios"] if r["scenario"] == "streaming"]
    restarts = [r for r in report["scenarios"] if r["scenario"] == "streaming_restart"]
    for result in report["scenarios"]:
        name = result["scenario"]
        if name in BATCH:
            lines += _batch(result)
        elif name == "compiler":
            lines += [
                "## Compiler",
                "",
                f"{result['definitions']} definitions: lint {result['lint_s']} s, compile "
                f"{result['compile_s']} s, together {result['lint_plus_compile_s']} s "
                f"(target < {result['target_s']} s).",
            ]
        elif name == "hostile_inputs":
            lines += _hostile(result)
        elif name == "streaming" and result is streams[0]:
            lines += _streaming(streams)
        elif name == "streaming_restart" and result is restarts[0]:
            lines += _restarts(restarts)
        elif name == "streaming_rate_search":
            lines += _rate_search(result)
        elif name == "soak":
            lines += _soak(result)
        else:
            continue
        lines.append("")
    if report.get("missing"):
        lines.append("Not run in this report: " + ", ".join(report["missing"]) + ".")
    return "\n".join(lines).rstrip() + "\n"


COLOURS = {
    "handwritten": "#7f7f7f",
    "etlc": "#1f77b4",
    "etlc_no_avro_boundary": "#9ecae1",
    "floor": "#2ca02c",
    "sdp": "#ff7f0e",
}
FLOOR_LINE = {"color": "#d62728", "linestyle": "--", "linewidth": 1}


def _batch_panel(ax: Any, result: Mapping[str, Any]) -> None:
    jobs = sorted(result["jobs"], key=lambda j: JOB_ORDER.index(j["job"]))
    names = [j["job"].replace("_no_avro_boundary", "\nno Avro boundary") for j in jobs]
    values = [j["records_per_s"] for j in jobs]
    ax.bar(names, values, color=[COLOURS.get(j["job"], "#333") for j in jobs])
    _, floor, _ = BATCH[result["scenario"]]
    if floor:
        ax.axhline(floor, label="seed floor", **FLOOR_LINE)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{result['scenario']} ({result['records']:,} records)", fontsize=10)
    ax.set_ylabel("records/s")
    for x, v in enumerate(values):
        ax.annotate(f"{v:,}", (x, v), ha="center", va="bottom", fontsize=8)


def _stream_panel(ax: Any, streams: list[Mapping[str, Any]]) -> None:
    marks = ("latency_p50_ms_median", "latency_p95_ms_median", "latency_max_ms")
    width = 0.8 / len(streams)
    for i, r in enumerate(streams):
        job = r.get("job", "etlc")
        xs = [k + i * width for k in range(len(marks))]
        ax.bar(xs, [r.get(m) or 0 for m in marks], width, label=job, color=COLOURS.get(job))
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(marks))], ["p50", "p95", "max"])
    ax.axhline(5_000, label="seed floor p95", **FLOOR_LINE)
    ax.set_title(f"streaming at {streams[0]['rate_target']:,} events/s", fontsize=10)
    ax.set_ylabel("end-to-end latency, ms")
    ax.legend(fontsize=8)


def _search_panel(ax: Any, search: Mapping[str, Any]) -> None:
    steps = sorted(search["steps"], key=lambda s: s["rate_target"])  # tried out of order
    rates = [s["rate_target"] for s in steps]
    ax.plot(rates, [s.get("latency_p95_ms_median") or 0 for s in steps], marker="o", label="p95")
    ax.axhline(5_000, label="5 s", **FLOOR_LINE)
    ax.set_xlabel("events/s produced")
    ax.set_ylabel("p95 latency, ms (median of batches)")
    consumed = ax.twinx()
    consumed.plot(rates, [s.get("events_per_s", 0) for s in steps], "s--", color="#2ca02c")
    consumed.plot(rates, rates, ":", color="#2ca02c", linewidth=0.8)
    consumed.set_ylabel("events/s consumed (dotted: produced)", color="#2ca02c")
    ax.set_title("streaming: rate search (etlc)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")


def _compiler_panel(ax: Any, compiler: Mapping[str, Any]) -> None:
    ax.bar(["100 definitions"], [compiler["lint_s"]], color="#9ecae1", label="lint")
    ax.bar(
        ["100 definitions"],
        [compiler["compile_s"]],
        bottom=[compiler["lint_s"]],
        color=COLOURS["etlc"],
        label="compile",
    )
    ax.axhline(compiler["target_s"], label="target", **FLOOR_LINE)
    ax.set_title(f"compiler: lint + compile, {compiler['definitions']} definitions", fontsize=10)
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)


def chart(report: Mapping[str, Any], path: Path) -> bool:
    """A PNG of the run's figures; False when the run has nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display here
    import matplotlib.pyplot as plt

    results = report["scenarios"]
    streams = [r for r in results if r["scenario"] == "streaming"]
    panels: list[tuple[Callable[[Any, Any], None], Any]] = [
        (_batch_panel, r) for r in results if r["scenario"] in BATCH
    ]
    if streams:
        panels.append((_stream_panel, streams))
    for r in results:
        if r["scenario"] == "streaming_rate_search":
            panels.append((_search_panel, r))
        elif r["scenario"] == "compiler":
            panels.append((_compiler_panel, r))
    if not panels:
        return False
    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
    cells = list(axes.flat)
    for (draw, data), ax in zip(panels, cells, strict=False):
        draw(ax, data)
    for ax in cells[len(panels) :]:
        ax.axis("off")
    fig.suptitle(f"etlc benchmarks {report['started']} ({report['machine']})", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
