"""The hostile-input corpus: every case is linted and compiled as a user's CI would.

Each folder under ``corpus/`` is a tiny project (``pipelines/``, optional ``schemas/``) with
``expected.txt``: the diagnostic codes lint must report, or ``OK`` for a hostile definition the
compiler must accept and render as inert data. For every case: no traceback and no E000, the
expected codes are reported, nothing is written outside the output folder, and a driver that is
written has exactly the statements every driver has and calls only the runtime's names.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p for p in CORPUS.iterdir() if p.is_dir()) if CORPUS.is_dir() else []
DEFINITION_SUFFIXES = (".json", ".yaml", ".yml")
runner = CliRunner()


def _definitions(project: Path) -> list[Path]:
    folder = project / "pipelines"
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in DEFINITION_SUFFIXES)


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a digest of what it is (content, link target)."""
    found: dict[str, str] = {}
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "dir"
    return found


def _no_crash(result: object, what: str) -> str:
    exc = getattr(result, "exception", None)
    output = str(getattr(result, "output", ""))
    assert exc is None or isinstance(exc, SystemExit), f"{what} raised {exc!r}:\n{output}"
    assert "Traceback" not in output, output
    assert "E000" not in output, output
    return output


# The shape every generated driver has: a docstring, imports from etlc's runtime only, three
# constants, `build`, `main`, and the `__main__` guard. Injected code would add or change a
# statement.
_TOP_LEVEL = (
    "Expr",
    "ImportFrom",
    "Assign",
    "Assign",
    "Assign",
    "FunctionDef",
    "FunctionDef",
    "If",
)
_RUNTIME_PACKAGES = ("etlc.runtime", "etlc.connectors", "etlc.transforms")


def _check_driver(path: Path) -> None:
    tree = ast.parse(path.read_bytes(), filename=str(path))
    kinds = [type(node).__name__ for node in tree.body]
    collapsed = [k for i, k in enumerate(kinds) if k != "ImportFrom" or kinds[i - 1] != k]
    assert tuple(collapsed) == _TOP_LEVEL, kinds
    imported: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            assert [alias.name for alias in node.names] == ["annotations"]
        elif isinstance(node, ast.ImportFrom):
            assert node.module is not None and node.module.startswith(_RUNTIME_PACKAGES)
            imported.update(alias.name for alias in node.names)
    assigned = {t.id: n.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}  # type: ignore[attr-defined]
    assert list(assigned) == ["PIPELINE", "DEFINITION", "SCHEMAS"]
    # The definition as written stays data: a literal, nothing evaluated.
    assert isinstance(ast.literal_eval(assigned["DEFINITION"]), dict | None)
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["build", "main"], functions
    allowed = imported | {"SystemExit", "main"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name):
            assert func.id in allowed, f"call of {func.id} in {path.name}"
        else:
            assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name)
            assert (func.value.id, func.attr) in {("env", "interpolate"), ("env", "connection")}


def _check_submit(path: Path) -> None:
    checked = subprocess.run(["bash", "-n", str(path)], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_corpus_holds_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60, [c.name for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "project"
    shutil.copytree(case, project, symlinks=True)
    expected = (project / "expected.txt").read_text(encoding="utf-8").split()
    definitions = [str(p) for p in _definitions(project)]
    assert definitions, f"{case.name} has no definition under pipelines/"
    # Lookups relative to the working directory must find nothing of this repository's.
    monkeypatch.chdir(project)
    before = _snapshot(tmp_path)

    linted = runner.invoke(app, ["lint", "--format", "json", *definitions])
    _no_crash(linted, "lint")
    codes = {row["code"] for row in json.loads(linted.stdout)}
    if expected == ["OK"]:
        assert linted.exit_code == 0, linted.output
    else:
        assert linted.exit_code == 1, linted.output
        assert set(expected) <= codes, f"expected {expected}, got {sorted(codes)}"

    out = project / "generated"
    compiled = runner.invoke(app, ["compile", "--out", str(out), *definitions])
    _no_crash(compiled, "compile")
    assert compiled.exit_code == (0 if expected == ["OK"] else 1), compiled.output

    after = _snapshot(tmp_path)
    written = {p for p in after if after[p] != before.get(p)}
    outside = {p for p in written if not p.startswith("project/generated")}
    assert not outside, f"written outside the output folder: {sorted(outside)}"
    for driver in out.glob("*.py") if out.is_dir() else ():
        _check_driver(driver)
    for submit in out.glob("*.submit.sh") if out.is_dir() else ():
        _check_submit(submit)
