"""The benchmark report: every measured figure reaches the Markdown, the chart is drawn, and
what bounds a job is read off its samples."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import report


def job(name: str, seconds: float, records: int, cpu: float, **extra: Any) -> dict[str, Any]:
    return {
        "job": name,
        "seconds": seconds,
        "records_per_s": round(records / seconds),
        "wall_s": seconds + 6,
        "cpu_avg_pct": cpu,
        "peak_rss_mb": 1400.0,
        **extra,
    }


ONE_PASS = {"step": "orders", "stage": "extract", "extra": {"validated_with": "out"}}


def stream(name: str, p95: int) -> dict[str, Any]:
    return {
        "scenario": "streaming",
        "job": name,
        "rate_target": 50_000,
        "produced": {"sent": 10_000_000, "seconds": 210.0},
        "events_per_s": 49_990,
        "latency_p50_ms_median": p95 - 400,
        "latency_p95_ms_median": p95,
        "latency_p95_ms_p95": p95 + 100,
        "latency_max_ms": p95 + 500,
        "batch_duration_ms_median": 900,
        "sustained": True,
        "driver_usage": {"cpu_avg_pct": 45.0, "peak_rss_mb": 1400.0},
        "generator_usage": {"cpu_avg_pct": 40.0},
    }


def restart(name: str, settled: float) -> dict[str, Any]:
    return {
        "scenario": "streaming_restart",
        "job": name,
        "rate_target": 50_000,
        "down_s": 20.0,
        "down_measured_s": 23.4,
        "max_offsets_per_trigger": 150_000,
        "produced": {"sent": 4_500_000, "seconds": 90.0},
        "driver_exit": [0, 0],
        "first_batches_rows": [0, 100_000, 100_000],
        "query_started_after_s": 9.5,
        "steady_after_s": {"p95_under_5000_ms": settled, "p95_under_2000_ms": None},
    }


def sample() -> dict[str, Any]:
    return {
        "started": "2026-11-28T12-00-00Z",
        "machine": "x86_64, 2 cores, Python 3.11.7",
        "missing": [],
        "scenarios": [
            {
                "scenario": "simple_batch",
                "records": 10_000_000,
                "jobs": [
                    job("handwritten", 27.5, 10_000_000, 92.8),
                    job("etlc", 31.0, 10_000_000, 94.0, steps=[ONE_PASS]),
                    job("etlc_no_avro_boundary", 28.0, 10_000_000, 93.0),
                ],
                "etlc_over_handwritten": 1.127,
                "avro_boundary_cost": 0.107,
                "etlc_over_sdp": 0.9,
            },
            {
                "scenario": "upsert",
                "records": 1_000_000,
                "updates": 500_000,
                "jobs": [
                    job(
                        "handwritten",
                        90.0,
                        1_000_000,
                        40.0,
                        to_postgres_s=50.0,
                        services_cpu_pct={"postgres": 48.0, "mariadb": 5.0},
                    ),
                    job(
                        "etlc",
                        95.0,
                        1_000_000,
                        42.0,
                        to_postgres_s=52.5,
                        services_cpu_pct={"postgres": 47.0},
                    ),
                    {
                        "job": "floor",
                        "seconds": 30.0,
                        "records_per_s": 33_333,
                        "to_postgres_s": 25.0,
                        "wall_s": 30.0,
                    },
                ],
                "etlc_over_handwritten": 1.056,
                "avro_boundary_cost": None,
                "postgres_over_handwritten": 0.95,
                "postgres_etlc_over_floor": 2.1,
            },
            {
                "scenario": "compiler",
                "definitions": 100,
                "lint_s": 0.5,
                "compile_s": 1.2,
                "lint_plus_compile_s": 1.7,
                "target_s": 2.0,
            },
            stream("etlc", 1500)
            | {
                "query_started_after_s": 7.2,
                "steady_after_s": {"p95_under_5000_ms": 14.0, "p95_under_2000_ms": None},
            },
            stream("handwritten", 1200),
            restart("etlc", 21.5),
            restart("handwritten", 18.0),
            {
                "scenario": "streaming_rate_search",
                "steps": [
                    stream("etlc", 1800) | {"rate_target": 100_000},
                    stream("etlc", 9000) | {"rate_target": 150_000, "sustained": False},
                ],
                "highest_sustained_rate": 100_000,
                "target_rate": 150_000,
            },
        ],
    }


def test_the_markdown_carries_every_figure_and_ratio() -> None:
    text = report.markdown(sample())
    assert "| etlc | 31.0 | 322,581 |" in text
    assert "etlc / hand-written: **1.127** (target <= 1.00; the seed's: 1.15)." in text
    assert "etlc read each source once" in text
    assert "etlc / Spark Declarative Pipelines: **0.9**" in text
    assert "an upsert by key into a PostgreSQL or MySQL table cannot be expressed" in text
    assert "Avro stage boundary cost: **+10.7%**" in text
    assert "| records/s | to_postgres s | wall s" in text and "| 52.5 |" in text
    assert "| floor | 30.0 | 33,333 | 25.0 | 30.0 | - | - | - | - |" in text
    assert (
        "Into postgres: etlc **0.95x** the hand-written job's rows/s (target >= 2); "
        "etlc's time **2.1x** the floor's (target <= 1.5)."
    ) in text
    assert "together 1.7 s (target < 2.0 s)" in text
    assert "etlc / hand-written, median p95: **1.250**." in text
    # Start-up: the query at 7.2 s, p95 under 5 s from 14 s on, never under 2 s; "-" for a
    # result measured before the start-up figures were.
    assert "| yes | 7.2 | 14.0 | never | 45.0 |" in text
    assert "| yes | - | - | - | 45.0 |" in text
    assert "launched again 20.0 s after it exited" in text and "may take 150,000 events" in text
    assert "| etlc | 23.4 | 0, 100,000, 100,000 | 9.5 | 21.5 | never | 0, 0 |" in text
    assert "| handwritten | 23.4 | 0, 100,000, 100,000 | 9.5 | 18.0 | never | 0, 0 |" in text
    assert "Highest rate kept up: **100,000 events/s** (target 150,000)." in text
    assert "| 150,000 | 49,990 | 9000 |" in text and "| no |" in text


def test_what_bounds_a_job_is_read_off_its_samples() -> None:
    assert report.bound({"cpu_avg_pct": 94.0}).startswith("CPU")
    held = report.bound({"cpu_avg_pct": 40.0, "services_cpu_pct": {"postgres": 48.0}})
    assert held.startswith("postgres (48.0% of the machine)")
    assert report.bound({"cpu_avg_pct": 30.0, "services_cpu_pct": {"moto": 5.0}}).startswith(
        "neither"
    )


def test_the_chart_is_a_png_with_a_panel_per_scenario(tmp_path: Path) -> None:
    path = tmp_path / "chart.png"
    assert report.chart(sample(), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not report.chart({"scenarios": [], "started": "", "machine": ""}, tmp_path / "x.png")


def test_the_soak_section_gives_losses_faults_and_p95_per_phase() -> None:
    result = {
        "scenario": "soak",
        "rate_target": 50_000,
        "minutes": 30,
        "events_acknowledged": 76_500_000,
        "events_landed": 76_500_000,
        "produce_failures": 0,
        "lost": 0,
        "duplicated": 0,
        "windows": 124,
        "faults": [{"kind": "database", "at_s": 240}, {"kind": "broker", "at_s": 480}],
        "faults_survived": 2,
        "driver_deaths": 0,
        "attempts_failed": 2,
        "retry_budget_resets": 0,
        "drained_s": 41.5,
        "driver_exit": 0,
        "phases": {
            "steady": {"batches": 1500, "p95_ms_median": 1800, "p95_ms_max": 4000},
            "after database": {"batches": 60, "p95_ms_median": 9000, "p95_ms_max": 25000},
        },
    }
    text = report.markdown({"started": "t", "machine": "m", "scenarios": [result]})
    assert "faults: database at 240 s, broker at 480 s" in text
    assert "landed 76,500,000: **lost 0, duplicated 0** (124 window rows" in text
    assert "faults survived by the stream alone: 2 of 2 (driver deaths: 0)" in text
    assert "| steady | 1500 | 1800 | 4000 |" in text
    assert "| after database | 60 | 9000 | 25000 |" in text


def test_soak_batches_count_toward_the_fault_they_follow() -> None:
    from bench.soak import phases

    def batch(ts: str, p95: int | None) -> dict[str, Any]:
        return {"ts": ts, "latency_ms": None if p95 is None else {"p95": p95}}

    progress = [
        batch("2026-12-06T00:00:00Z", 1_000),
        batch("2026-12-06T00:00:30Z", 20_000),
        batch("2026-12-06T00:01:00Z", None),  # no new records: no latency
        batch("2026-12-06T00:05:00Z", 1_200),
    ]
    fault_at = datetime(2026, 12, 6, 0, 0, 10, tzinfo=timezone.utc).timestamp()
    assert phases(progress, [{"kind": "broker", "at": fault_at}]) == {
        "steady": {"batches": 2, "p95_ms_median": 1_100.0, "p95_ms_max": 1_200},
        "after broker": {"batches": 1, "p95_ms_median": 20_000, "p95_ms_max": 20_000},
    }
