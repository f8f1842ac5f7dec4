"""The command line, in process: lint, compile, explain, jars, and their --help."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from etlc.cli import app
from etlc.spark_targets import spark_target

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_lint_of_the_examples_passes() -> None:
    result = runner.invoke(app, ["lint", str(ROOT / "pipelines")])
    assert result.exit_code == 0, result.output
    count = len(list((ROOT / "pipelines").glob("*.json")))
    envs = len(list((ROOT / "pipelines" / "env").glob("*.json")))
    assert f"{count} definition(s) and {envs} environment file(s) checked: 0 error(s)" in (
        result.output
    )


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
        "etlc-log4j2.properties",
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
    from etlc.plugins import core_jars

    dest = tmp_path / "jars"
    dest.mkdir()
    jar = dest / "org.apache.spark.spark-avro_2.13-4.2.0.jar"
    jar.write_bytes(b"not the real jar")
    sums = {jar.name: "0" * 64}
    with pytest.raises(JarResolutionError, match="sha256 mismatch"):
        resolve(core_jars(spark_target()), dest, sums)
    assert not jar.exists()  # a bad jar is removed, never run


def test_jars_accepts_matching_checksums(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from etlc.dsl import resources
    from etlc.jars import all_artifacts

    dest = tmp_path / "jars"
    dest.mkdir()
    lines = []
    for artifact in all_artifacts(spark_target()):
        content = f"stand-in for {artifact.coordinate}".encode()
        (dest / artifact.jar_name).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  {artifact.jar_name}\n")
    sums = tmp_path / "sums"
    sums.write_text("".join(lines))
    jvm_jar = tmp_path / "build" / "etlc-jvm-0.1.0.jar"
    jvm_jar.parent.mkdir()
    jvm_jar.write_bytes(b"etlc's JVM module")
    monkeypatch.setattr(resources, "jvm_jar_path", lambda target=None: jvm_jar)
    result = runner.invoke(app, ["jars", "--dest", str(dest), "--checksums", str(sums)])
    assert result.exit_code == 0, result.output
    assert (dest / jvm_jar.name).read_bytes() == b"etlc's JVM module"
    # Jars present and matching are counted, not listed: etlc-jvm (copied), and the total.
    assert result.output.splitlines() == [
        "etlc-jvm-0.1.0.jar ok (not pinned: built in this checkout, " + f"{jvm_jar.parent})",
        f"{len(all_artifacts(spark_target())) + 1} jars for Spark 4.2 (Scala 2.13) in {dest}, "
        f"each checked against {sums}",
    ]


def test_jars_without_a_pinned_checksum_is_refused(tmp_path: Path) -> None:
    from etlc.jars import JarResolutionError, resolve
    from etlc.plugins import core_jars

    dest = tmp_path / "jars"
    dest.mkdir()
    (dest / "org.apache.spark.spark-avro_2.13-4.2.0.jar").write_bytes(b"x")
    with pytest.raises(JarResolutionError, match="no pinned sha256"):
        resolve(core_jars(spark_target()), dest, {})


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


# --- the project: version, completion, choices, folders, init ---------------------------------


def test_version_prints_the_version() -> None:
    import etlc

    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"etlc {etlc.__version__}\n")


def test_shell_completion_is_offered() -> None:
    result = runner.invoke(app, ["--help"])
    assert "--install-completion" in result.output and "--show-completion" in result.output


def plain(output: str) -> str:
    """Help and usage errors without rich's box lines and wrapping."""
    return " ".join(output.replace("│", " ").split())


def test_an_unknown_format_is_a_usage_error_naming_the_choices(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lint", "--format", "xml", str(tmp_path / "x.json")])
    assert result.exit_code == 2
    assert "'xml' is not one of 'text', 'json'" in plain(result.output)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project made by `etlc init`, the working directory, with no project file above it."""
    monkeypatch.setenv("HOME", str(tmp_path))
    root = tmp_path / "repo"
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(root)
    return root


def test_init_creates_a_project_that_lint_and_compile_pass(project: Path) -> None:
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        ".gitignore",
        "README.md",
        "data/sales.csv",
        "etlc.toml",
        "pipelines/env/local.json",
        "pipelines/example.json",
        "schemas/avro/sale.avsc",
        "schemas/environment.schema.json",
        "schemas/pipeline.schema.json",
        "schemas/pipeline_test.schema.json",
        "tests/pipelines/example.test.json",
    ]
    for name in (
        "pipelines/example.json",
        "pipelines/env/local.json",
        "tests/pipelines/example.test.json",
    ):
        target = json.loads((project / name).read_text())["$schema"]
        assert (project / name).parent.joinpath(target).resolve().is_file(), name
    lint = runner.invoke(app, ["lint"])  # no arguments: the project's definitions
    assert lint.exit_code == 0, lint.output
    summary = "1 definition(s), 1 test file(s) and 1 environment file(s) checked"
    assert f"{summary}: 0 error(s), 0 warning(s)" in lint.output
    compiled = runner.invoke(app, ["compile"])
    assert compiled.exit_code == 0, compiled.output
    assert "pipelines/example.json -> generated/example.py (written)" in compiled.output
    assert (project / "generated" / "example.submit.sh").is_file()


def test_init_lists_what_it_created_and_refuses_a_project(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text("mine\n")
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    assert (
        "created etlc.toml" in result.output and "created pipelines/example.json" in result.output
    )
    assert "kept    README.md (it exists; left as it was)" in result.output
    assert (root / "README.md").read_text() == "mine\n"  # never overwritten
    again = runner.invoke(app, ["init", str(root)])
    assert again.exit_code == 1
    assert again.output == f"error: {root}: is an etlc project already (it has a project file)\n"


def test_init_does_not_write_through_a_link(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "pipelines").symlink_to(elsewhere)
    result = runner.invoke(app, ["init", str(root)])
    assert result.exit_code == 1 and "does not write through links" in result.output
    assert list(elsewhere.iterdir()) == [] and list(root.iterdir()) == [root / "pipelines"]


def yaml_copy(source: Path, target: Path, name: str) -> None:
    import yaml

    doc = json.loads(source.read_text())
    doc["name"] = name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc))


def test_lint_of_a_folder_recurses_into_subfolders_and_yaml(project: Path) -> None:
    example = project / "pipelines" / "example.json"
    yaml_copy(example, project / "pipelines" / "sales" / "daily.yaml", "daily")
    yaml_copy(example, project / "pipelines" / "sales" / "eu" / "weekly.yml", "weekly")
    (project / "pipelines" / ".drafts").mkdir()
    (project / "pipelines" / ".drafts" / "broken.json").write_text("{")
    (project / "pipelines" / "notes.txt").write_text("not a definition")
    result = runner.invoke(app, ["lint", "--format", "json", "pipelines"])
    assert (result.exit_code, json.loads(result.stdout)) == (0, [])
    text = runner.invoke(app, ["lint", "pipelines/"])
    # example, daily, weekly (not the hidden folder's draft), and the environment file once
    assert "3 definition(s) and 1 environment file(s) checked: 0 error(s)" in text.output
    compiled = runner.invoke(app, ["compile", "pipelines"])
    assert compiled.exit_code == 0, compiled.output
    assert [line.split(" -> ")[0] for line in compiled.stdout.splitlines()] == [
        "pipelines/example.json",
        "pipelines/sales/daily.yaml",
        "pipelines/sales/eu/weekly.yml",
    ]


def test_a_definition_in_a_subfolder_uses_the_projects_environments(project: Path) -> None:
    (project / "etlc.toml").write_text('environments = "config/env"\n')
    (project / "config").mkdir()
    (project / "pipelines" / "env").rename(project / "config" / "env")
    nested = project / "pipelines" / "sales" / "x.json"
    nested.parent.mkdir()
    nested.write_text((project / "pipelines" / "example.json").read_text())
    result = runner.invoke(app, ["lint"])
    assert result.exit_code == 0, result.output
    assert "2 definition(s), 1 test file(s) and 1 environment file(s) checked: 0 error(s)" in (
        result.output
    )
    env = json.loads((project / "config" / "env" / "local.json").read_text())
    del env["variables"]["data_dir"]
    (project / "config" / "env" / "local.json").write_text(json.dumps(env))
    result = runner.invoke(app, ["lint", "--format", "json", "pipelines/sales"])
    rows = json.loads(result.stdout)
    assert [(r["code"], r["file"]) for r in rows] == [("E207", "pipelines/sales/x.json")]
    assert "`data_dir`" in rows[0]["message"]


def test_run_help_names_the_projects_environments_folder(project: Path) -> None:
    (project / "etlc.toml").write_text('environments = "conf/envs"\n')
    result = runner.invoke(app, ["run", "--help"])
    assert result.exit_code == 0
    assert "conf/envs/<env>.json, the project's environments folder" in plain(result.output)


def test_lint_without_files_and_without_a_definitions_folder_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["lint"])
    assert result.exit_code == 1
    assert result.output.startswith("error: no definitions folder `pipelines` in the project at ")


def test_a_bad_project_file_is_one_line_naming_its_place(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "etlc.toml").write_text('definitions = "pipelines"\ngenrated = "x"\n')
    monkeypatch.chdir(project / "pipelines")
    for command in (["lint"], ["compile"], ["explain", "example.json"], ["lint", "example.json"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert result.output == (
            f"error: {project / 'etlc.toml'}:2:1: unknown key `genrated`; "
            "did you mean `generated`?\n"
        )


def test_compile_writes_into_the_projects_generated_folder_from_anywhere_in_it(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "etlc.toml").write_text('generated = "build/drivers"\n')
    monkeypatch.chdir(project / "pipelines")
    result = runner.invoke(app, ["compile", "example.json"])
    assert result.exit_code == 0, result.output
    assert "example.json -> " in result.output
    assert (project / "build" / "drivers" / "example.py").is_file()
    for path in (project / "build" / "drivers").iterdir():
        assert str(project).encode() not in path.read_bytes(), path.name


def test_lint_checks_the_projects_environment_files(project: Path) -> None:
    env = project / "pipelines" / "env" / "prod.json"
    env.write_text(
        "{\n"
        '  "variables": {"data_dir": "/data", "out_dir": "/out"},\n'
        '  "sprak": {"spark.sql.shuffle.partitions": "200"},\n'
        '  "connections": {"events": {"system": "kafka"}}\n'
        "}\n"
    )
    result = runner.invoke(app, ["lint"])
    assert result.exit_code == 1
    assert "pipelines/env/prod.json:3:3: error[E601]: unknown key `sprak`" in result.output
    assert "hint: did you mean `spark`?" in result.output
    assert (
        "pipelines/env/prod.json:4:29: error[E603]: missing required key `bootstrap_servers` "
        "in `connections.events`"
    ) in result.output
    summary = "1 definition(s), 1 test file(s) and 2 environment file(s) checked"
    assert f"{summary}: 2 error(s)" in result.output
    as_json = runner.invoke(app, ["lint", "--format", "json"])
    rows = json.loads(as_json.stdout)
    assert [(r["file"].endswith("prod.json"), r["line"], r["code"]) for r in rows] == [
        (True, 3, "E601"),
        (True, 4, "E603"),
    ]
    compiled = runner.invoke(app, ["compile"])  # compile lints first: nothing is written
    assert compiled.exit_code == 1 and not (project / "generated").exists()


def test_jars_refuses_a_default_folder_linked_out_of_the_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no project file, a `jars` link committed to the checkout had `etlc jars` write the
    # jars wherever it pointed.
    monkeypatch.setenv("HOME", str(tmp_path))
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "jars").symlink_to(outside)
    monkeypatch.chdir(repo)
    result = runner.invoke(app, ["jars"])
    assert result.exit_code == 1
    assert result.output.startswith("error: jars: the project's jars folder is, or lies in, a ")
    assert result.output.count("\n") == 1
    assert list(outside.iterdir()) == []


def test_lint_never_shows_a_committed_secret_in_its_excerpts(project: Path) -> None:
    secret = "Hunter2-s3cr3t"
    (project / "pipelines" / "env" / "prod.json").write_text(
        "{\n"
        '  "variables": {"data_dir": "/d", "out_dir": "/o"},\n'
        '  "connections": {"db": {"system": "postgres", "host": "db", "database": "x", '
        f'"user": "etl", "password": "{secret}", "port": 99999}}}}\n'
        "}\n"
    )
    definition = json.loads((project / "pipelines" / "example.json").read_text())
    definition["extract"][0]["options"]["password"] = secret  # E501, and E101 on the same line
    definition["load"][0]["options"]["token"] = f"vault://{secret}"  # E502: may be the secret
    (project / "pipelines" / "example.json").write_text(json.dumps(definition, indent=2))
    text = runner.invoke(app, ["lint"])
    codes = {
        line.split("[")[1].split("]")[0] for line in text.output.splitlines() if "error[" in line
    }
    assert {"E501", "E502", "E604"} <= codes, text.output
    assert secret not in text.output
    assert '"password": ****************' in text.output  # masked where it stood, quotes too
    as_json = runner.invoke(app, ["lint", "--format", "json"])
    assert secret not in as_json.output and json.loads(as_json.stdout)


@pytest.fixture
def jars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Stand-ins for the jars orders_to_postgres ships (the submit script checks etlc's own)."""
    from etlc.codegen.render import jvm_jar_name

    folder = tmp_path / "jars"
    folder.mkdir()
    for name in (
        jvm_jar_name(),
        "org.apache.spark.spark-avro_2.13-4.2.0.jar",
        "org.postgresql.postgresql-42.7.14.jar",
    ):
        (folder / name).write_bytes(b"")
    monkeypatch.setenv("ETLC_JARS_DIR", str(folder))
    return folder


def test_submit_spec_prints_what_the_submit_script_hands_spark_submit(
    tmp_path: Path, jars: Path
) -> None:
    out = tmp_path / "generated"
    definition = str(ROOT / "pipelines" / "orders_to_postgres.json")
    args = ["submit-spec", definition, "--master", "yarn", "--deploy-mode", "cluster"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    spec = json.loads(result.stdout)
    assert spec["application"] == str(out / "orders_to_postgres.py")
    assert (spec["master"], spec["deploy_mode"], spec["name"]) == (
        "yarn",
        "cluster",
        "etlc:orders_to_postgres",
    )
    # In cluster mode the environment file travels with the job, named in the working dir.
    assert spec["application_args"] == ["--env-file", "local.json"]
    assert [Path(f).name for f in spec["files"]] == ["local.json"]
    # A cluster's own Java options and logging are left as they are.
    assert "spark.driver.extraJavaOptions" not in spec["conf"]
    assert [Path(j).name for j in spec["jars"]] == sorted(p.name for p in jars.iterdir())
    assert spec["py_files"] == [str(out / "etlc-runtime-0.1.0.zip")]
    assert spec["conf"]["spark.sql.shuffle.partitions"] == "4"  # the environment file's
    assert spec["argv"][0] == "spark-submit" and spec["argv"][-3:] == [
        spec["application"],
        *spec["application_args"],
    ]


def test_submit_spec_fails_with_the_submit_scripts_own_message(tmp_path: Path, jars: Path) -> None:
    definition = str(ROOT / "pipelines" / "orders_to_postgres.json")
    args = ["submit-spec", definition, "--env", "nowhere", "--out", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "environment file" in result.stderr and "nowhere.json not found" in result.stderr


def test_a_local_run_binds_spark_to_loopback_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from etlc.cli import local_submit_env

    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    assert local_submit_env("local[2]", "dev")["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert "SPARK_LOCAL_IP" not in local_submit_env("spark://host:7077", "dev")
    monkeypatch.setenv("SPARK_LOCAL_IP", "10.0.0.5")
    assert local_submit_env("local[*]", "dev")["SPARK_LOCAL_IP"] == "10.0.0.5"


@pytest.mark.parametrize(
    ("command", "driver_args"),
    [
        (["state", "show"], ["--state", "show"]),
        (["state", "reset"], ["--state", "reset"]),
        (
            ["state", "reset", "--extract", "orders", "--to", "2026-01-31T00:00:00Z"],
            ["--state", "reset", "--extract", "orders", "--to", "2026-01-31T00:00:00Z"],
        ),
    ],
)
def test_state_commands_run_the_pipelines_driver_with_its_state_arguments(
    tmp_path: Path,
    jars: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
    driver_args: list[str],
) -> None:
    record, stand_in = tmp_path / "argv", tmp_path / "spark-submit"
    stand_in.write_text('#!/bin/sh\nprintf \'%s\\0\' "$@" > "$ETLC_SPEC_RECORD"\n')
    stand_in.chmod(0o700)
    monkeypatch.setenv("SPARK_SUBMIT", str(stand_in))
    monkeypatch.setenv("ETLC_SPEC_RECORD", str(record))
    definition = str(ROOT / "pipelines" / "orders_incremental.json")
    out = tmp_path / "generated"
    result = runner.invoke(app, [*command, definition, "--out", str(out)])
    assert result.exit_code == 0, result.output
    argv = record.read_text(encoding="utf-8").split("\0")[:-1]
    driver = argv.index(str(out / "orders_incremental.py"))
    env_flag, env_file, *rest = argv[driver + 1 :]
    assert (env_flag, os.path.realpath(env_file), rest) == (
        "--env-file",
        str(ROOT / "pipelines" / "env" / "local.json"),
        driver_args,
    )


def test_state_reset_says_what_it_takes(tmp_path: Path) -> None:
    result = runner.invoke(app, ["state", "reset", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--extract" in text and "--to" in text and "reads every row" in text
