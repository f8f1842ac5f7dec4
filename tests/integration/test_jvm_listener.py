"""The JVM stage metrics listener (jvm/etlc-jvm) through a generated submit command: one
`spark_stage_completed` line per Spark stage, in the driver's own log, tagged like its lines."""

from __future__ import annotations

from tests.integration.conftest import Workspace, submit
from tests.integration.test_end_to_end import assert_success

METRICS = (
    "records_read",
    "bytes_read",
    "records_written",
    "bytes_written",
    "shuffle_records_read",
    "shuffle_bytes_read",
    "shuffle_records_written",
    "shuffle_bytes_written",
    "memory_spilled_bytes",
    "disk_spilled_bytes",
    "peak_execution_memory_bytes",
    "executor_run_time_ms",
    "executor_cpu_time_ms",
    "jvm_gc_time_ms",
)


def test_every_stage_is_logged_with_its_metrics_and_the_runs_tags(workspace: Workspace) -> None:
    out = workspace.root / "listener-out"
    env_file = workspace.write_env(
        "listener", {"data_dir": str(workspace.data), "out_dir": str(out)}
    )
    # One transient failure: the stages of the second attempt must say so.
    run = submit(
        workspace.generated / "orders_by_country.py",
        env_file,
        faults="extract:customers:1",
    )
    summary = assert_success(run)
    assert summary["attempts"] == 2

    stages = run.event("spark_stage_completed")
    python = [e for e in run.events if e["event"] != "spark_stage_completed"]
    assert stages and python
    [run_id] = {e["run_id"] for e in python}
    for stage in stages:
        assert list(stage)[:6] == ["ts", "level", "event", "run_id", "pipeline", "attempt"]
        assert (stage["run_id"], stage["pipeline"]) == (run_id, "orders_by_country")
        assert (stage["level"], stage["status"]) == ("info", "succeeded")
        assert stage["tasks"] >= 1 and stage["duration_ms"] >= 0
        assert stage["stage_name"]
        assert all(isinstance(stage[m], int) and stage[m] >= 0 for m in METRICS), stage
    assert {s["attempt"] for s in stages} <= {1, 2}
    assert 2 in {s["attempt"] for s in stages}
    assert len({(s["stage_id"], s["stage_attempt"]) for s in stages}) == len(stages)

    # The orders files are read in full by the second attempt's extract.
    second = [s for s in stages if s["attempt"] == 2]
    assert max(s["records_read"] for s in second) >= len(workspace.data_set.orders) // 3
    assert sum(s["records_read"] for s in second) >= len(workspace.data_set.orders)
    assert any(s["records_written"] > 0 and s["bytes_written"] > 0 for s in second)
    assert any(s["shuffle_records_written"] > 0 for s in second)  # the join and the aggregate
    assert sum(s["executor_run_time_ms"] for s in stages) > 0
