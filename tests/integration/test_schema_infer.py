"""`etlc schema infer` on the demo's generated orders CSV gives a schema with which the demo
pipeline lints, compiles and runs to the same result as with the hand-written one."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from etlc import demo
from tests.integration.conftest import Workspace, submit

ROOT = Path(__file__).resolve().parents[2]
ETLC = Path(sys.executable).parent / "etlc"


def etlc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(ETLC), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_the_demo_runs_alike_on_the_schema_inferred_from_its_orders(
    workspace: Workspace, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    etlc("init", str(project), cwd=tmp_path)
    shutil.copy(ROOT / "pipelines" / "orders_by_country.json", project / "pipelines")
    avro = project / "schemas" / "avro"
    shutil.copy(ROOT / "schemas" / "avro" / "customer.avsc", avro)
    inferred = avro / "order.avsc"
    etlc(
        "schema",
        "infer",
        str(workspace.data / "orders"),
        "--name",
        "Order",
        "-o",
        str(inferred),
        cwd=project,
    )
    fields = {f["name"]: f["type"] for f in json.loads(inferred.read_text())["fields"]}
    assert fields["order_id"] == "long"
    assert fields["amount"]["logicalType"] == "decimal" and fields["amount"]["scale"] == 2
    assert fields["status"]["symbols"] == ["CANCELLED", "NEW", "PAID", "SHIPPED"]
    assert fields["ordered_at"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert fields["coupon"][0] == "null"

    etlc("lint", "pipelines/orders_by_country.json", cwd=project)
    etlc("compile", "pipelines/orders_by_country.json", cwd=project)
    out = tmp_path / "out"
    env = workspace.write_env("inferred", {"data_dir": str(workspace.data), "out_dir": str(out)})
    run = submit(project / "generated" / "orders_by_country.py", env)
    assert run.returncode == 0, (run.events[-5:], run.stderr[-3000:])
    assert demo.read_by_country(out / "orders_by_country") == demo.expected_by_country(
        workspace.data_set
    )
