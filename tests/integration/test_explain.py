"""`etlc explain --format dot|html` through the real renderers: Graphviz's `dot -Tsvg` and
headless Chromium (both Debian packages, installed by scripts/tools.sh, which `make test`
runs). No server is needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.codegen import explain
from etlc.dsl.checker import check_file, default_options
from etlc.project import find_project

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(ROOT.glob("pipelines/*.json"))
runner = CliRunner()


def tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"`{name}` is missing: run scripts/tools.sh (make test does)"
    return found


def steps_of(path: Path) -> int:
    result = check_file(path, default_options(path, find_project(path.parent)))
    assert result.plan is not None
    return len(result.plan.steps)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_graphviz_renders_every_examples_dag(path: Path) -> None:
    made = runner.invoke(app, ["explain", "--format", "dot", str(path)])
    assert made.exit_code == 0, made.output
    dot = [tool("dot"), "-Tsvg"]
    svg = subprocess.run(
        dot, input=made.stdout, capture_output=True, text=True, timeout=60, check=False
    )
    assert svg.returncode == 0 and svg.stderr == "", svg.stderr
    assert svg.stdout.count('<g id="node') == steps_of(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_graphviz_renders_every_examples_column_edges(path: Path) -> None:
    made = runner.invoke(app, ["explain", "--format", "dot", "--columns", str(path)])
    assert made.exit_code == 0, made.output
    svg = subprocess.run(
        [tool("dot"), "-Tsvg"],
        input=made.stdout,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert svg.returncode == 0 and svg.stderr == "", svg.stderr
    # A node per column the graph reaches, an edge per dependency: as many as etlc drew.
    nodes = re.findall(r'^    ".*" \[label=".*"\];$', made.stdout, re.MULTILINE)
    edges = re.findall(r'^  ".*" -> ".*" \[.*\];$', made.stdout, re.MULTILINE)
    assert svg.stdout.count('<g id="node') == len(nodes) > 0
    assert svg.stdout.count('<g id="edge') == len(edges) > 0


def test_the_html_page_opens_in_chromium_with_a_node_per_step(tmp_path: Path) -> None:
    chromium = tool("chromium")
    for path in EXAMPLES:
        page = tmp_path / f"{path.stem}.html"
        made = runner.invoke(app, ["explain", "--format", "html", str(path)])
        assert made.exit_code == 0, made.output
        page.write_text(made.stdout, encoding="utf-8")
        dom = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        # The DOM Chromium built, not the file: the page parsed into one node per step.
        assert dom.stdout.count('<g class="node"') == steps_of(path), path.name
        assert dom.stdout.count('<path class="edge"') > 0


def test_every_format_is_offered() -> None:
    assert explain.FORMATS == ("text", "json", "dot", "mermaid", "html")
