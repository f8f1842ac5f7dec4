"""The command line, in process: lint, compile, explain, jars, and their --help."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_lint_of_the_examples_passes() -> None:
    result = runner.invoke(app, ["lint", str(ROOT / "pipelines")])
    assert result.exit_code == 0, result.output
    count = len(list((ROOT / "pipelines").glob("*.json")))
    assert f"{count} file(s) checked: 0 error(s)" in result.output


def test_lint_prints_compiler_style_diagnostics_with_a_caret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "name": "x",\n  "extract": [],\n  "lod": []\n}\n')
    result = runner.invoke(app, ["lint", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:4:3: error[E101]: " in result.output
    assert '   4 |   "lod": []' in result.output
    assert "hint: did you mean `load`?" in result.output


def test_lint_json_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": 3}')
    result = runner.invoke(app, ["lint", "--format", "json", str(bad)])
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert {r["code"] for r in rows} >= {"E102", "E103"}
    assert all({"file", "line", "col", "hint"} <= set(r) for r in rows)


def test_compile_writes_driver_submit_and_runtime(tmp_path: Path) -> None:
    out = tmp_path / "gen"
    result = runner.invoke(
        app, ["compile", str(ROOT / "pipelines" / "filter_orders.json"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "etlc-runtime-0.1.0.zip",
        "filter_orders.py",
        "filter_orders.submit.sh",
    ]
    again = runner.invoke(
        app, ["compile", str(ROOT / "pipelines" / "filter_orders.json"), "--out", str(out)]
    )
    assert "(unchanged)" in again.output


def test_compile_refuses_definitions_with_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = runner.invoke(app, ["compile", str(bad), "--out", str(tmp_path / "gen")])
    assert result.exit_code == 1
    assert not (tmp_path / "gen").exists()


def test_compile_rejects_two_definitions_with_one_name(tmp_path: Path) -> None:
    src = ROOT / "pipelines" / "filter_orders.json"
    (tmp_path / "pipelines").mkdir()
    a = tmp_path / "pipelines" / "a.json"
    b = tmp_path / "pipelines" / "b.json"
    shutil.copy(src, a)
    shutil.copy(src, b)
    shutil.copytree(ROOT / "pipelines" / "env", tmp_path / "pipelines" / "env")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    result = runner.invoke(app, ["compile", str(a), str(b), "--out", str(tmp_path / "gen")])
    assert result.exit_code == 1
    assert "also used by" in result.output


def test_explain_shows_the_dag_and_schemas() -> None:
    result = runner.invoke(app, ["explain", str(ROOT / "pipelines" / "orders_by_country.json")])
    assert result.exit_code == 0, result.output
    assert "transform enriched: join <- live_orders, customers" in result.output
    assert "    revenue: decimal(22,2)?" in result.output
    assert "    check enum:status" in result.output
    assert "load load_1_by_country: files [overwrite] <- by_country" in result.output


def test_explain_of_a_bad_definition_reports_it(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    assert runner.invoke(app, ["explain", str(bad)]).exit_code == 1


@pytest.mark.parametrize("command", ["lint", "compile", "run", "explain", "jars", "demo"])
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output) > 200


def test_jars_verifies_pinned_checksums(tmp_path: Path) -> None:
    from etlc.jars import JarResolutionError, resolve
    from etlc.plugins import CORE_ARTIFACTS

    dest = tmp_path / "jars"
    dest.mkdir()
    jar = dest / "org.apache.spark.spark-avro_2.13-4.2.0.jar"
    jar.write_bytes(b"not the real jar")
    sums = {jar.name: "0" * 64}
    with pytest.raises(JarResolutionError, match="sha256 mismatch"):
        resolve(CORE_ARTIFACTS, dest, sums)
    assert not jar.exists()  # a bad jar is removed, never run


def test_jars_accepts_matching_checksums(tmp_path: Path) -> None:
    from etlc.jars import all_artifacts

    dest = tmp_path / "jars"
    dest.mkdir()
    lines = []
    for artifact in all_artifacts():
        content = f"stand-in for {artifact.coordinate}".encode()
        (dest / artifact.jar_name).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {artifact.jar_name}\n")
    sums = tmp_path / "sums"
    sums.write_text("".join(lines))
    result = runner.invoke(app, ["jars", "--dest", str(dest), "--checksums", str(sums)])
    assert result.exit_code == 0, result.output
    assert str(dest / "org.apache.spark.spark-avro_2.13-4.2.0.jar") in result.output
    assert len(result.output.splitlines()) == len(all_artifacts())


def test_jars_without_a_pinned_checksum_is_refused(tmp_path: Path) -> None:
    from etlc.jars import JarResolutionError, resolve
    from etlc.plugins import CORE_ARTIFACTS

    dest = tmp_path / "jars"
    dest.mkdir()
    (dest / "org.apache.spark.spark-avro_2.13-4.2.0.jar").write_bytes(b"x")
    with pytest.raises(JarResolutionError, match="no pinned sha256"):
        resolve(CORE_ARTIFACTS, dest, {})


def test_lint_runs_without_pyspark_or_java(tmp_path: Path) -> None:
    """The compiler side must never import pyspark: prove it in a fresh interpreter."""
    code = (
        "import sys; sys.modules['pyspark'] = None\n"
        "from etlc.cli import app\n"
        "app(['lint', 'pipelines'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "0 error(s)" in done.stderr
