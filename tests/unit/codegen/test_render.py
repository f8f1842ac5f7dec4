"""Codegen: golden drivers, byte-identical recompiles, formatter- and linter-clean output."""

from __future__ import annotations

import ast
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from etlc.codegen.literals import literal, string
from etlc.codegen.output import write
from etlc.codegen.render import (
    STAGE_LISTENER,
    jvm_jar_name,
    render,
    runtime_zip,
    runtime_zip_name,
)
from etlc.dsl.checker import check_file

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "generated"
DEFINITIONS = sorted((ROOT / "pipelines").glob("*.json"))
BIN = Path(sys.executable).parent


def compile_all(out: Path) -> list[Path]:
    paths: list[Path] = []
    for definition in DEFINITIONS:
        result = check_file(definition)
        assert result.plan is not None, result.diagnostics
        outputs = render(result.plan, Path("generated"))
        for o in outputs:
            target = out / o.path.name
            target.write_bytes(o.content)
            paths.append(target)
    return paths


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    compile_all(out)
    return out


@pytest.mark.parametrize("definition", DEFINITIONS, ids=lambda p: p.stem)
def test_drivers_match_the_golden_files(compiled: Path, definition: Path) -> None:
    for suffix in (".py", ".submit.sh"):
        name = definition.stem + suffix
        golden = GOLDEN / name
        assert golden.exists(), f"run `etlc compile pipelines/*.json` to create {golden}"
        assert (compiled / name).read_bytes() == golden.read_bytes(), (
            f"{name} differs from the golden file; if intended, recompile and commit generated/"
        )


def test_recompiling_is_byte_identical(tmp_path: Path, compiled: Path) -> None:
    again = tmp_path / "again"
    again.mkdir()
    compile_all(again)
    for path in sorted(compiled.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name


def test_drivers_compile_and_pass_the_formatter_and_linter(compiled: Path) -> None:
    drivers = sorted(str(p) for p in compiled.glob("*.py"))
    for d in drivers:
        py_compile.compile(d, doraise=True)
    config = ["--config", str(ROOT / "pyproject.toml")]
    fmt = subprocess.run(
        [str(BIN / "ruff"), "format", "--check", *config, *drivers],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    lint = subprocess.run(
        [str(BIN / "ruff"), "check", *config, "--per-file-ignores", "*.py:E501", *drivers],
        capture_output=True,
        text=True,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_drivers_import_only_the_runtime(compiled: Path) -> None:
    for driver in compiled.glob("*.py"):
        imports = [
            line
            for line in driver.read_text().splitlines()
            if line.startswith(("from ", "import "))
        ]
        assert imports
        for line in imports:
            module = line.split()[1]
            # etlc.profiles: the connection profiles' types, shared with the compiler.
            runtime = ("etlc.runtime", "etlc.connectors", "etlc.transforms")
            # __future__: annotations stay text on the oldest Python a Spark line runs.
            assert module.startswith(runtime) or module in ("etlc.profiles", "__future__"), line


def test_submit_command_ships_jars_or_packages_and_the_runtime(compiled: Path) -> None:
    text = (compiled / "orders_by_country.submit.sh").read_text()
    assert f'etlc_jar="$jars_dir"/{jvm_jar_name()}' in text
    # etlc's JVM module is shipped in both branches: no cluster can resolve it from Maven.
    assert '--jars "$etlc_jar" --packages org.apache.spark:spark-avro_2.13:4.2.0)' in text
    assert '--jars "$etlc_jar","$jars_dir"/org.apache.spark.spark-avro_2.13-4.2.0.jar)' in text
    assert f"--conf spark.extraListeners={STAGE_LISTENER} " in text
    assert f'--py-files "$here"/{runtime_zip_name()} ' in text
    assert (
        subprocess.run(
            ["bash", "-n", str(compiled / "orders_by_country.submit.sh")], check=False
        ).returncode
        == 0
    )


@pytest.mark.parametrize("packages", ["0", "1"])
def test_submit_command_without_the_jvm_jar_says_to_run_etlc_jars(
    compiled: Path, tmp_path: Path, packages: str
) -> None:
    done = subprocess.run(
        ["bash", str(compiled / "orders_by_country.submit.sh")],
        env={
            "PATH": "/usr/bin:/bin",
            "ETLC_JARS_DIR": str(tmp_path),
            "ETLC_USE_PACKAGES": packages,
            "SPARK_SUBMIT": "false",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"etlc: {tmp_path}/{jvm_jar_name()} is missing: run `etlc jars` in the project"
    )


def test_runtime_zip_is_deterministic_and_holds_the_runtime_only() -> None:
    first = runtime_zip()
    assert runtime_zip() == first
    import io

    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert "etlc/runtime/driver.py" in names and "etlc/transforms/join.py" in names
    assert not any(n.startswith(("etlc/dsl", "etlc/codegen")) or n == "etlc/cli.py" for n in names)
    # A driver in a cluster's container imports from this zip only: all it imports is there.
    for driver in sorted((ROOT / "generated").glob("*.py")):
        for line in driver.read_text().splitlines():
            if line.startswith("from etlc"):
                module = line.split()[1].replace(".", "/")
                assert f"{module}.py" in names or f"{module}/__init__.py" in names, line
    # ... and all that the zip's own modules import, at any depth.
    archive = zipfile.ZipFile(io.BytesIO(first))
    for name in (n for n in names if n.endswith(".py")):
        tree = ast.parse(archive.read(name).decode("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("etlc"):
                module = str(node.module).replace(".", "/")
                found = f"{module}.py" in names or f"{module}/__init__.py" in names
                assert found, f"{name} imports {node.module}, which the zip lacks"


def test_write_only_touches_changed_files(tmp_path: Path) -> None:
    result = check_file(DEFINITIONS[0])
    assert result.plan is not None
    outputs = render(result.plan, tmp_path)
    assert write(outputs) == [o.path for o in outputs]
    assert write(outputs) == []
    assert (tmp_path / f"{result.plan.name}.submit.sh").stat().st_mode & 0o111


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"', "'say \"hi\"'"),
        ("both ' and \"", '"both \' and \\""'),
        ("tab\tnew\nline\\", '"tab\\tnew\\nline\\\\"'),
    ],
)
def test_string_literals_follow_the_formatter(value: str, expected: str) -> None:
    assert string(value) == expected
    assert eval(expected) == value


def test_literals_inline_when_they_fit_and_explode_otherwise() -> None:
    assert literal(("a",)) == '("a",)'
    assert literal({"k": [1, None, True]}) == '{"k": [1, None, True]}'
    long = {f"key{i}": "x" * 20 for i in range(6)}
    assert literal(long).startswith('{\n    "key0"')
    assert literal(()) == "()" and literal({}) == "{}" and literal([]) == "[]"
    with pytest.raises(TypeError):
        literal(object())


def test_only_pipelines_with_jvm_steps_ship_extra_jars(compiled: Path) -> None:
    jvm = (compiled / "orders_latest_jvm.submit.sh").read_text()
    assert 'etlc_jar="$etlc_jar,$ETLC_EXTRA_JARS"' in jvm
    assert "ETLC_EXTRA_JARS" not in (compiled / "derive_orders.submit.sh").read_text()
