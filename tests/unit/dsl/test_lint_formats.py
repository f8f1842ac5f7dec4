"""`etlc lint --format sarif|github|junit|json` and `--strict`.

The SARIF output is validated against the SARIF 2.1.0 JSON Schema (OASIS, the sarif-spec
repository's `sarif-2.1/schema/sarif-schema-2.1.0.json`, kept in data/ as test data).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from etlc.cli import app
from etlc.dsl import lint_formats
from etlc.dsl.diagnostics import Diagnostic, Severity, Span
from etlc.dsl.lint_formats import Checked

SARIF_SCHEMA = json.loads(
    (Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8")
)
runner = CliRunner()

# A message and a file name as a hostile pull request could make them.
HOSTILE = "bad\n::warning file=x::forged, 100%: done\r\x1b[31m"
FINDINGS = [
    Checked(
        "pipelines/a b#1.json",
        [
            Diagnostic("E101", HOSTILE, Span("pipelines/a b#1.json", 3, 5, 3, 9), "fix it"),
            Diagnostic(
                "W204",
                "a warning",
                Span("pipelines/a b#1.json", 7, 1, 7, 2),
                severity=Severity.WARNING,
            ),
        ],
    ),
    Checked("pipelines/env/local.json", []),
]


def test_sarif_validates_against_the_sarif_2_1_0_schema() -> None:
    doc = json.loads(lint_formats.sarif(FINDINGS))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    [run] = doc["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["E101", "W204"]
    error, warning = run["results"]
    assert (error["ruleId"], error["level"], warning["level"]) == ("E101", "error", "warning")
    assert error["message"]["text"] == HOSTILE + " (hint: fix it)"
    location = error["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "pipelines/a%20b%231.json"
    assert location["region"] == {"startLine": 3, "startColumn": 5, "endLine": 3, "endColumn": 9}
    assert [a["location"]["uri"] for a in run["artifacts"]][1] == "pipelines/env/local.json"
    # --strict: a warning fails, so it is reported at the error level.
    strict = json.loads(lint_formats.sarif(FINDINGS, strict=True))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(strict)
    assert strict["runs"][0]["results"][1]["level"] == "error"


def test_sarif_names_an_absolute_file_by_a_file_uri_and_a_point_by_its_start() -> None:
    point = Diagnostic("E001", "x", Span("/tmp/p q.json", 1, 1, 1, 1))
    doc = json.loads(lint_formats.sarif([Checked("/tmp/p q.json", [point])]))
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    location = doc["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "file:///tmp/p%20q.json"
    assert location["region"] == {"startLine": 1, "startColumn": 1}


def test_a_file_name_that_is_not_utf8_is_its_bytes_percent_encoded() -> None:
    name = "bad\udcff.json"  # how Linux hands Python the byte 0xFF of a file name
    doc = json.loads(
        lint_formats.sarif([Checked(name, [Diagnostic("E001", "x", Span(name, 1, 1, 1, 2))])])
    )
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(doc)
    assert doc["runs"][0]["artifacts"][0]["location"]["uri"] == "bad%FF.json"


def test_github_annotations_are_one_line_each_and_cannot_forge_a_command() -> None:
    lines = lint_formats.github(FINDINGS).split("\n")
    assert len(lines) == 2
    error, warning = lines
    assert error.startswith(
        "::error file=pipelines/a b#1.json,line=3,col=5,endLine=3,endColumn=9,title=etlc E101::"
    )
    assert warning.startswith("::warning file=pipelines/a b#1.json,line=7,col=1,")
    # The message's newline, carriage return and escape are shown, never acted on.
    assert "\r" not in error and "\x1b" not in error
    assert error.endswith(
        "::bad\\n::warning file=x::forged, 100%25: done\\r\\x1b[31m (hint: fix it)"
    )
    assert lint_formats.github(FINDINGS, strict=True).split("\n")[1].startswith("::error ")


def test_a_property_of_a_command_escapes_its_separators() -> None:
    odd = Diagnostic("E001", "m", Span("a,b:c.json", 1, 1, 1, 2))
    [line] = lint_formats.github([Checked("a,b:c.json", [odd])]).split("\n")
    assert line.startswith("::error file=a%2Cb%3Ac.json,line=1,")


def test_junit_has_a_test_case_per_file_and_a_failure_per_failing_file() -> None:
    text = lint_formats.junit(FINDINGS)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    assert "\x1b" not in text and "\r" not in text
    root = ElementTree.fromstring(text.split("\n", 1)[1])
    [suite] = root.findall("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    first, second = suite.findall("testcase")
    assert first.get("name") == "pipelines/a b#1.json"
    failure = first.find("failure")
    assert failure is not None and failure.get("type") == "E101"
    assert failure.text == (
        "pipelines/a b#1.json:3:5: error[E101]: bad\\n::warning file=x::forged, 100%: done"
        "\\r\\x1b[31m (hint: fix it)"
    )
    out = first.find("system-out")
    assert out is not None and out.text == "pipelines/a b#1.json:7:1: warning[W204]: a warning"
    assert second.find("failure") is None
    strict = ElementTree.fromstring(lint_formats.junit(FINDINGS, strict=True).split("\n", 1)[1])
    failure = strict.find("testsuite/testcase/failure")
    assert failure is not None and failure.text is not None and "W204" in failure.text


def test_an_unknown_format_is_a_bug() -> None:
    with pytest.raises(ValueError, match="no such lint format"):
        lint_formats.render("xml", FINDINGS)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    root = tmp_path / "repo"
    assert runner.invoke(app, ["init", str(root)]).exit_code == 0
    monkeypatch.chdir(root)
    return root


def with_a_warning(project: Path) -> Path:
    """The project's environment file with a Spark setting that runs code: W602, a warning."""
    env = next((project / "pipelines" / "env").glob("*.json"))
    doc = json.loads(env.read_text(encoding="utf-8"))
    doc.setdefault("spark", {})["spark.driver.extraJavaOptions"] = "-Dx=1"
    env.write_text(json.dumps(doc), encoding="utf-8")
    return env


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "junit"])
def test_warnings_fail_lint_only_with_strict(project: Path, fmt: str) -> None:
    with_a_warning(project)
    plain = runner.invoke(app, ["lint", "--format", fmt])
    assert plain.exit_code == 0, plain.output
    assert "0 error(s), 1 warning(s)" in plain.stderr
    strict = runner.invoke(app, ["lint", "--format", fmt, "--strict"])
    assert strict.exit_code == 1, strict.output
    if fmt == "sarif":
        jsonschema.Draft4Validator(SARIF_SCHEMA).validate(json.loads(strict.stdout))
    if fmt == "github":
        assert strict.stdout.startswith("::error file=pipelines/env/")
        assert "title=etlc W602::" in strict.stdout


def test_a_clean_project_is_an_empty_report_in_every_format(project: Path) -> None:
    sarif = runner.invoke(app, ["lint", "--format", "sarif", "--strict"])
    assert sarif.exit_code == 0, sarif.output
    assert json.loads(sarif.stdout)["runs"][0]["results"] == []
    assert runner.invoke(app, ["lint", "--format", "github"]).stdout.strip() == ""
    junit = runner.invoke(app, ["lint", "--format", "junit"]).stdout
    assert ElementTree.fromstring(junit.split("\n", 1)[1]).get("failures") == "0"


def test_the_pre_commit_hook_runs_lint_on_the_project() -> None:
    root = Path(__file__).resolve().parents[3]
    [hook] = yaml.safe_load((root / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert (hook["id"], hook["entry"], hook["language"]) == ("etlc-lint", "etlc lint", "python")
    assert hook["pass_filenames"] is False
    for changed in ("pipelines/a.json", "pipelines/env/prod.json", "schemas/x.avsc", "p/b.yaml"):
        assert re.search(hook["files"], changed), changed
    assert not re.search(hook["files"], "etlc/cli.py")
    # The command the hook runs is the one the package installs.
    assert '\n[project.scripts]\netlc = "etlc.cli:app"\n' in (root / "pyproject.toml").read_text()
