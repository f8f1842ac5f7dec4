"""Drivers compiled for each other Spark line etlc supports, run by that line's own pyspark on
the lowest Python it supports, with that line's jars and etlc's JVM module built for its Scala.
The rest of the suite runs on the default line (the project's venv)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from etlc import demo
from etlc.spark_targets import DEFAULT_LINE, TARGETS
from tests.integration import databases
from tests.integration.conftest import BIN, ROOT, Workspace, submit
from tests.integration.spark_lines import LineRuntime, line_runtime

OTHER_LINES = [line for line in TARGETS if line != DEFAULT_LINE]


@pytest.fixture(scope="module", params=OTHER_LINES)
def line(request: pytest.FixtureRequest) -> LineRuntime:
    return line_runtime(request.param)


def compile_for(line: str, definition: str, out: Path) -> Path:
    done = subprocess.run(
        [str(BIN / "etlc"), "compile", definition, "--out", str(out), "--spark-version", line],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out / f"{Path(definition).stem}.py"


def env_file(tmp_path: Path, variables: dict[str, str]) -> Path:
    path = tmp_path / "env.json"
    doc: dict[str, Any] = {
        "variables": variables,
        "spark": dict(databases.TEST_SPARK_CONF),
        "etlc": {"stage_dir": str(tmp_path / "stage")},
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_the_demo_pipeline_gives_the_same_rows_on_each_line(
    line: LineRuntime, workspace: Workspace, tmp_path: Path
) -> None:
    driver = compile_for(line.target.line, "pipelines/orders_by_country.json", tmp_path / "gen")
    out = tmp_path / "out"
    env = env_file(tmp_path, {"data_dir": str(workspace.data), "out_dir": str(out)})
    run = submit(driver, env, extra_env=line.environ())
    assert run.returncode == 0, run.stderr[-3000:]
    [finished] = run.event("run_finished")
    assert finished["status"] == "SUCCESS"
    actual = demo.read_by_country(out / "orders_by_country")
    assert actual == demo.expected_by_country(workspace.data_set)
    assert len(actual) > 1


def test_a_driver_compiled_for_another_line_stops_before_its_session(
    workspace: Workspace, tmp_path: Path
) -> None:
    spark_35 = line_runtime("3.5")
    env = env_file(tmp_path, {"data_dir": str(workspace.data), "out_dir": str(tmp_path / "out")})
    # The driver's own jars (the default line's), run by Spark 3.5's spark-submit and pyspark.
    environ = {**spark_35.environ(), "ETLC_JARS_DIR": str(ROOT / "jars")}
    run = submit(workspace.generated / "orders_by_country.py", env, extra_env=environ)
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(run.event("run_finished")) == 1, run.stderr[-3000:]
    [finished] = run.event("run_finished")
    assert finished["error_kind"] == "configuration"
    assert finished["error"].startswith(
        f"this driver was compiled for Spark {DEFAULT_LINE} (its jars and etlc's JVM module are "
        f"built for it), but runs on Spark {spark_35.target.release}"
    )
    assert not (tmp_path / "out").exists()
