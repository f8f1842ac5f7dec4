"""Compiled drivers through pyspark's own spark-submit, locally and on a standalone cluster."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from tests.integration.conftest import Workspace, submit, submit_jvm_opts


def assert_success(run: Any) -> dict[str, Any]:
    finished = run.event("run_finished")
    assert run.returncode == 0, (run.events[-5:], run.stderr[-3000:])
    assert finished and finished[-1]["status"] == "SUCCESS"
    return dict(finished[-1])


def test_demo_driver_runs_locally_and_matches_the_expected_rows(workspace: Workspace) -> None:
    run = submit(workspace.generated / "orders_by_country.py", workspace.env_file)
    summary = assert_success(run)
    expected = demo.expected_by_country(workspace.data_set)
    assert demo.read_by_country(workspace.out / "orders_by_country") == expected
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["orders"]["records_in"] == len(workspace.data_set.orders)
    assert steps["customers"]["records_in"] == len(workspace.data_set.customers)
    assert steps["load_1_by_country"]["records_out"] == len(expected)
    live = sum(1 for o in workspace.data_set.orders if o.status != "CANCELLED")
    assert steps["live_orders"]["records_out"] == live


def test_demo_driver_runs_unmodified_on_a_standalone_cluster(
    workspace: Workspace, standalone_master: str
) -> None:
    out = workspace.root / "cluster-out"
    env_file = workspace.write_env(
        "cluster", {"data_dir": str(workspace.data), "out_dir": str(out)}
    )
    run = submit(workspace.generated / "orders_by_country.py", env_file, master=standalone_master)
    assert_success(run)
    assert demo.read_by_country(out / "orders_by_country") == demo.expected_by_country(
        workspace.data_set
    )


def _expected_counts(data: demo.DemoData) -> dict[str, dict[str, int]]:
    known = {c.customer_id for c in data.customers}
    business = {c.customer_id for c in data.customers if c.segment == "BUSINESS"}
    orders = data.orders
    return {
        "filter_orders": {
            "large_paid": sum(1 for o in orders if o.status == "PAID" and o.amount >= Decimal(500))
        },
        "select_orders": {"slim": len(orders)},
        "derive_orders": {"sized": len(orders)},
        "aggregate_customers": {"per_customer": len({o.customer_id for o in orders})},
        "join_segments": {
            "business_orders": sum(
                1 for o in orders if o.customer_id in business and o.status != "CANCELLED"
            ),
            "orders_without_customer": sum(1 for o in orders if o.customer_id not in known),
        },
        "window_orders": {
            "hourly": len({(o.ordered_at.replace(minute=0, second=0), o.status) for o in orders}),
            "every_100": math.ceil(len(orders) / 100),
        },
    }


@pytest.mark.parametrize(
    "pipeline",
    [
        "filter_orders",
        "select_orders",
        "derive_orders",
        "aggregate_customers",
        "join_segments",
        "window_orders",
    ],
)
def test_each_transform_example_runs(workspace: Workspace, spark: Any, pipeline: str) -> None:
    run = submit(workspace.generated / f"{pipeline}.py", workspace.env_file)
    summary = assert_success(run)
    produced = {s["step"]: s["records_out"] for s in summary["steps"]}
    for step, count in _expected_counts(workspace.data_set)[pipeline].items():
        assert produced[step] == count, step
    # Read every output back: what landed is exactly what the log counted.
    loads = [e for e in run.event("step_finished") if e["stage"] == "load"]
    assert loads
    for load in loads:
        landed = spark.read.format(load["format"]).load(load["path"]).count()
        assert landed == load["records_out"] == load["records_in"], load["step"]


def test_records_violating_the_schema_halt_the_run_before_any_transform(
    workspace: Workspace,
) -> None:
    bad = workspace.root / "bad-data"
    demo.write(workspace.data_set, bad, files=1)
    csv = bad / "orders" / "part-000.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    fields = lines[5].split(",")
    fields[3] = "REFUNDED"  # not a symbol of the status enum
    lines[5] = ",".join(fields)
    lines[6] = "not-a-number," + lines[6].split(",", 1)[1]
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = workspace.root / "bad-out"
    env_file = workspace.write_env("bad", {"data_dir": str(bad), "out_dir": str(out)})
    run = submit(workspace.generated / "orders_by_country.py", env_file)
    assert run.returncode == 2
    failed = run.event("validation_failed")
    assert len(failed) == 1 and failed[0]["step"] == "orders"
    assert failed[0]["invalid"] == 2
    # The unparseable id also leaves order_id null: every rule a record fails is counted.
    assert failed[0]["violations"] == {"parse": 1, "not_null:order_id": 1, "enum:status": 1}
    assert {r["_etlc_violation"] for r in failed[0]["sample"]} == {"enum:status", "parse"}
    attempts = run.event("attempt_failed")
    assert [(e["attempt"], e["error_kind"]) for e in attempts] == [(1, "validation")]
    assert "retrying_in_s" not in attempts[0]
    assert len(run.event("attempt_started")) == 1  # not retried
    assert not any(e.get("stage") == "transform" for e in run.events)
    assert not out.exists()


def test_the_expectations_example_drops_warns_and_fails_as_declared(
    workspace: Workspace, spark: Any
) -> None:
    orders = workspace.data_set.orders
    aside_dir = workspace.root / "quarantine"
    variables = {"data_dir": str(workspace.data), "out_dir": str(workspace.out)}
    env = workspace.write_env("quality", variables, quarantine_dir=str(aside_dir))
    run = submit(workspace.generated / "orders_quality.py", env)
    assert run.returncode == 3, (run.events[-5:], run.stderr[-3000:])  # PARTIAL: records dropped
    [finished] = run.event("run_finished")
    assert finished["status"] == "PARTIAL"
    large = [o for o in orders if o.amount >= Decimal(900)]
    steps = {e["step"]: e for e in run.event("step_finished")}
    assert steps["orders"]["expectations"] == {
        "small_order": {"policy": "drop", "failed": len(large)},
        "has_coupon": {"policy": "warn", "failed": sum(1 for o in orders if o.coupon is None)},
    }
    assert steps["orders"]["dropped"] == len(large) > 0
    assert steps["orders"]["records_out"] == len(orders) - len(large)
    paid = [o for o in orders if o.status == "PAID" and o.amount < 900]
    spring = {o.order_id for o in paid if o.coupon == "SPRING"}
    assert steps["paid"]["quarantined"] == len(spring) > 0
    [aside] = run.event("records_quarantined")
    assert aside["path"] == str(aside_dir / "orders_quality" / "paid" / finished["run_id"])
    held = spark.read.format("avro").load(aside["path"]).collect()
    assert {(r.order_id, r._etlc_rule, r._etlc_step) for r in held} == {
        (i, "known_coupon", "paid") for i in spring
    }
    out = workspace.out / "orders_quality"
    landed = {r.order_id for r in spark.read.parquet(str(out)).select("order_id").collect()}
    assert landed == {o.order_id for o in paid} - spring

    # A paid order of 0.00 breaks the transform's fail rule: the run halts before the load,
    # and the last run's output stays as it was.
    bad = workspace.root / "quality-bad"
    demo.write(workspace.data_set, bad, files=1)
    csv = bad / "orders" / "part-000.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    fields = lines[1].split(",")
    fields[2], fields[3] = "0.00", "PAID"
    lines[1] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file = workspace.write_env("quality-bad", {**variables, "data_dir": str(bad)})
    failed = submit(workspace.generated / "orders_quality.py", env_file)
    assert failed.returncode == 2, failed.events[-5:]
    [invalid] = failed.event("validation_failed")
    assert (invalid["stage"], invalid["step"], invalid["invalid"]) == ("transform", "paid", 1)
    assert invalid["violations"] == {"expect:positive_amount": 1}
    assert [r["order_id"] for r in invalid["sample"]] == [int(fields[0])]
    assert not any(e.get("stage") == "load" for e in failed.events)
    again = {r.order_id for r in spark.read.parquet(str(out)).select("order_id").collect()}
    assert again == landed


def test_a_file_whose_csv_header_is_reordered_fails_naming_it_not_read_by_position(
    workspace: Workspace,
) -> None:
    src = workspace.root / "reordered-data"
    demo.write(workspace.data_set, src, files=2)
    csv = sorted((src / "orders").glob("*.csv"))[-1]
    header, *rows = csv.read_text(encoding="utf-8").splitlines()
    cols = header.split(",")
    swap = [1, 0, *range(2, len(cols))]  # customer_id before order_id: both are longs
    reordered = [",".join(line.split(",")[i] for i in swap) for line in [header, *rows]]
    csv.write_text("\n".join(reordered) + "\n", encoding="utf-8")
    out = workspace.root / "reordered-out"
    env_file = workspace.write_env("reordered", {"data_dir": str(src), "out_dir": str(out)})
    run = submit(workspace.generated / "orders_by_country.py", env_file)
    assert run.returncode != 0
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "schema_incompatible", finished
    assert csv.name in finished["error"] and "another order" in finished["error"], finished
    assert "Traceback" not in run.stderr
    assert not out.exists()


def test_a_transient_extract_failure_is_retried_and_logged(workspace: Workspace) -> None:
    out = workspace.root / "retry-out"
    env_file = workspace.write_env("retry", {"data_dir": str(workspace.data), "out_dir": str(out)})
    run = submit(
        workspace.generated / "orders_by_country.py",
        env_file,
        faults="extract:customers:2",
    )
    summary = assert_success(run)
    assert summary["attempts"] == 3
    failed = run.event("attempt_failed")
    assert [
        (e["attempt"], e["of"], e["step"], e["error_kind"], e["retrying_in_s"]) for e in failed
    ] == [
        (1, 4, "customers", "transient", 5.0),
        (2, 4, "customers", "transient", 5.0),
    ]
    assert demo.read_by_country(out / "orders_by_country") == demo.expected_by_country(
        workspace.data_set
    )


def test_a_driver_with_a_missing_environment_variable_fails_clearly(workspace: Workspace) -> None:
    env_file = workspace.write_env("empty", {})
    run = submit(workspace.generated / "filter_orders.py", env_file)
    assert run.returncode == 1
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "configuration"
    assert "data_dir" in finished["error"] and "empty.json" in finished["error"]
    assert "Traceback" not in run.stderr


def test_a_driver_whose_environment_the_scala_classes_refuse_exits_1_before_any_job(
    workspace: Workspace,
) -> None:
    """Through spark-submit: the etlc-jvm jar the submit command ships reads the file first."""
    env_file = workspace.write_env("typed", {"data_dir": str(workspace.data), "out_dir": "o"})
    doc = json.loads(env_file.read_text(encoding="utf-8"))
    # A port the schema bounds (1..65535); the Python side checks it only when it connects.
    warehouse = {"system": "postgres", "host": "h", "database": "d", "user": "u", "port": 70000}
    doc["connections"] = {"warehouse": {**warehouse, "password": "vault://db#password"}}
    env_file.write_text(json.dumps(doc), encoding="utf-8")
    run = submit(workspace.generated / "filter_orders.py", env_file)
    assert run.returncode == 1
    finished = run.event("run_finished")[-1]
    assert finished["error_kind"] == "configuration"
    assert finished["error"] == (f"{env_file}: $.connections.warehouse.port: must be at most 65535")
    assert not run.event("spark_stage_completed") and not run.event("step_started")
    assert "Traceback" not in run.stderr


def test_submit_script_help_answers_the_question(workspace: Workspace) -> None:
    text = Path(workspace.generated / "orders_by_country.submit.sh").read_text()
    assert "--jars" in text and "--packages" in text and "--py-files" in text


def test_the_readme_demo_command_succeeds(tmp_path: Path) -> None:
    """`etlc demo` (what `make demo` runs): generate, compile, submit, compare."""
    import subprocess
    import sys

    from etlc.cli import local_submit_env

    environ = local_submit_env("local[2]", "local")
    environ["SPARK_SUBMIT_OPTS"] = (
        f"{environ.get('SPARK_SUBMIT_OPTS', '')} {submit_jvm_opts()}".strip()
    )
    done = subprocess.run(
        [str(Path(sys.executable).parent / "etlc"), "demo", "--orders", "5000"],
        cwd=Path(__file__).resolve().parents[2],
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "demo: OK - 8 rows equal the expected result" in done.stdout
