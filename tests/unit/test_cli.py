"""The command line, in process: lint, compile, explain, jars, and their --help."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
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


@pytest.mark.parametrize("where", ["a-file", "a-file/sub", "/proc/version/sub"])
def test_compile_to_an_impossible_folder_is_one_line_and_writes_nothing(
    tmp_path: Path, where: str
) -> None:
    # Run as root, permissions stop nothing: a path under a file or under /proc does.
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / where if not where.startswith("/") else Path(where)
    result = runner.invoke(
        app, ["compile", str(ROOT / "pipelines" / "filter_orders.json"), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out}: ") and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_compile_refuses_a_link_planted_in_the_output_folder(tmp_path: Path) -> None:
    victim = tmp_path / "victim.sh"
    victim.write_text("echo mine\n")
    out = tmp_path / "gen"
    out.mkdir()
    (out / "filter_orders.submit.sh").symlink_to(victim)
    result = runner.invoke(
        app, ["compile", str(ROOT / "pipelines" / "filter_orders.json"), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "symbolic link" in result.stderr and "Traceback" not in result.output
    assert victim.read_text() == "echo mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["filter_orders.submit.sh"]


def test_lint_output_cannot_forge_lines_or_drive_the_terminal(tmp_path: Path) -> None:
    hostile = "x\n::error file=a.py::forged\r\x1b[2J\u2028\x85\u202e"
    bad = tmp_path / "::error::bad.json"
    bad.write_text(json.dumps({"name": "ok", "extract": [], "load": [], hostile: 1}))
    result = runner.invoke(app, ["lint", str(bad)])
    assert result.exit_code == 1
    for line in result.stderr.splitlines():
        assert not line.lstrip().startswith("::"), line
        assert line.isprintable(), repr(line)
    assert "x\\n::error file=a.py::forged\\r\\x1b[2J\\u2028\\x85\\u202e" in result.stderr
    rows = json.loads(runner.invoke(app, ["lint", "--format", "json", str(bad)]).stdout)
    assert any(hostile in r["message"] for r in rows)  # json holds the text, escaped by json


def test_a_file_name_that_looks_like_a_ci_command_is_prefixed(tmp_path: Path) -> None:
    from etlc.dsl.diagnostics import shown_path

    assert shown_path("::error::x.json") == "./::error::x.json"
    assert shown_path("##[error]x.json") == "./##[error]x.json"
    assert shown_path("pipelines/x.json") == "pipelines/x.json"
    assert shown_path("/abs/x\n.json") == "/abs/x\\n.json"


def test_the_caret_stays_under_an_escaped_span() -> None:
    from etlc.dsl.diagnostics import Span, diag, render

    source = '{"a\\u001b": 1, "\x1bb": 2}'
    d = diag("E101", "unknown key", Span("f.json", 1, 16, 1, 20), "remove it")
    text_line, caret_line = render(d, source).splitlines()[1:3]
    start = caret_line.index("^")
    assert text_line[start : start + len(caret_line) - start] == '"\\x1bb"'


def test_explain_escapes_what_comes_from_the_definition(tmp_path: Path) -> None:
    result = runner.invoke(app, ["explain", str(ROOT / "pipelines" / "orders_by_country.json")])
    assert result.exit_code == 0 and all(line.isprintable() for line in result.stdout.splitlines())


def test_lint_of_an_unlistable_folder_is_one_line(tmp_path: Path) -> None:
    # Root may list every folder: one that vanishes between the check and the listing
    # stands in for one it may not open.
    from etlc import cli

    class Vanishing(type(tmp_path)):  # type: ignore[misc]
        def is_dir(self) -> bool:
            return True

    with pytest.raises(typer.Exit) as caught:
        cli._expand([Vanishing(tmp_path / "gone")])
    assert caught.value.exit_code == 1


def test_lint_shows_a_window_of_a_long_line_and_caps_the_diagnostics(tmp_path: Path) -> None:
    # One line of about 1 MB with 1,000 unknown keys: quoting the line whole in each of them
    # would print a gigabyte.
    keys = ", ".join(f'"k{i:04d}": {i}' for i in range(1000))
    bad = tmp_path / "wide.json"
    bad.write_text('{"name": "wide", ' + keys + ", " + '"x": "' + "y" * 1_000_000 + '"}')
    result = runner.invoke(app, ["lint", str(bad)])
    assert result.exit_code == 1
    assert max(len(line) for line in result.output.splitlines()) < 400
    excerpts = [line for line in result.output.splitlines() if line.startswith("   1 | ")]
    assert len(excerpts) == 200 and all(line.endswith("...") for line in excerpts)
    assert result.output.count(": error[E1") == 200
    rows = json.loads(runner.invoke(app, ["lint", "--format", "json", str(bad)]).stdout)
    assert len(rows) > 1000  # as data, every one of them
    shown = f"{len(rows) - 200} more diagnostic(s) not shown (`--format json` lists every one)"
    assert shown in result.output


def test_lint_of_a_folder_without_definitions_fails(tmp_path: Path) -> None:
    # A CI step must not pass for having checked nothing (an empty folder, or one named *.json).
    empty = tmp_path / "looks.json"
    empty.mkdir()
    result = runner.invoke(app, ["lint", str(empty)])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "holds no definitions" in result.output
