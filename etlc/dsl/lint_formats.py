"""`etlc lint`'s findings in the formats CI systems read.

- ``json``: etlc's own rows, one object per finding.
- ``sarif``: SARIF 2.1.0, what GitHub code scanning (and most CI dashboards) upload.
- ``github``: GitHub Actions workflow commands, ``::error file=...,line=...,col=...::...``,
  which annotate the pull request's diff.
- ``junit``: JUnit XML, one test case per file checked, what most CI servers show as tests.

File names and messages come from the files linted, which in CI are a pull request's: each
format escapes them its own way, and a message can never end its own record and start another
(a second workflow command, an XML element). Unprintable characters are shown as escapes
(``printable``) before that, so XML never holds a character it forbids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree

import etlc
from etlc.dsl.diagnostics import Diagnostic, Severity
from etlc.printable import printable

FORMATS = ("text", "json", "sarif", "github", "junit")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


@dataclass(frozen=True)
class Checked:
    """One file lint checked and what it found there."""

    file: str
    diagnostics: Sequence[Diagnostic]


def fails(d: Diagnostic, strict: bool) -> bool:
    """Whether ``d`` fails the check: an error, or with ``strict`` a warning too."""
    return d.is_error or strict


def _text(d: Diagnostic) -> str:
    """The message, with its hint when it has one."""
    return d.message + (f" (hint: {d.hint})" if d.hint else "")


def json_rows(checked: Sequence[Checked]) -> str:
    rows = [
        {
            "file": d.span.file,
            "line": d.span.line,
            "col": d.span.col,
            "end_line": d.span.end_line,
            "end_col": d.span.end_col,
            "severity": d.severity.value,
            "code": d.code,
            "message": d.message,
            "hint": d.hint,
        }
        for c in checked
        for d in c.diagnostics
    ]
    return json.dumps(rows, indent=2)


# --- SARIF --------------------------------------------------------------------------------


def _uri(file: str) -> str:
    """The file as a SARIF artifact URI: relative (to the folder lint ran in) as written,
    absolute as a ``file:`` URI; every other character percent-encoded."""
    path = PurePosixPath(file)
    # A name that is not UTF-8 reaches Python with surrogates: its bytes, percent-encoded.
    encoded = quote(path.as_posix().encode("utf-8", "surrogateescape"), safe="/")
    return "file://" + encoded if path.is_absolute() else encoded


def _region(d: Diagnostic) -> dict[str, int]:
    s = d.span
    region = {"startLine": max(s.line, 1), "startColumn": max(s.col, 1)}
    if (s.end_line, s.end_col) > (s.line, s.col):
        region.update(endLine=s.end_line, endColumn=s.end_col)
    return region


def _sarif_result(d: Diagnostic, strict: bool) -> dict[str, Any]:
    text = _text(d)
    level = "error" if fails(d, strict) else "warning"
    location = {"artifactLocation": {"uri": _uri(d.span.file)}, "region": _region(d)}
    return {
        "ruleId": d.code,
        "level": level,
        "message": {"text": text},
        "locations": [{"physicalLocation": location}],
    }


def sarif(checked: Sequence[Checked], strict: bool = False) -> str:
    found = [d for c in checked for d in c.diagnostics]
    codes = sorted({d.code for d in found})
    severity = {d.code: d.severity for d in found}
    rules = [
        {
            "id": code,
            "name": code,
            "defaultConfiguration": {
                "level": "error" if severity[code] is Severity.ERROR else "warning"
            },
        }
        for code in codes
    ]
    driver = {
        "name": "etlc",
        "version": etlc.__version__,
        "semanticVersion": etlc.__version__,
        "rules": rules,
    }
    run = {
        "tool": {"driver": driver},
        # Spans count characters of the decoded text: code points, not UTF-16 units.
        "columnKind": "unicodeCodePoints",
        "artifacts": [{"location": {"uri": _uri(c.file)}} for c in checked],
        "results": [_sarif_result(d, strict) for d in found],
    }
    return json.dumps({"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


# --- GitHub Actions -----------------------------------------------------------------------


def _command_data(text: str) -> str:
    # The runner's own escapes (actions/toolkit's escapeData): a newline would end the command.
    return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _command_property(text: str) -> str:
    return _command_data(text).replace(":", "%3A").replace(",", "%2C")


def github(checked: Sequence[Checked], strict: bool = False) -> str:
    lines: list[str] = []
    for c in checked:
        for d in c.diagnostics:
            s = d.span
            kind = "error" if fails(d, strict) else "warning"
            props = {
                "file": s.file,
                "line": str(max(s.line, 1)),
                "col": str(max(s.col, 1)),
                "endLine": str(max(s.end_line, s.line, 1)),
                "endColumn": str(max(s.end_col, 1)),
                "title": f"etlc {d.code}",
            }
            shown = ",".join(f"{k}={_command_property(v)}" for k, v in props.items())
            lines.append(f"::{kind} {shown}::{_command_data(_text(d))}")
    return "\n".join(lines)


# --- JUnit XML ----------------------------------------------------------------------------


def _line(d: Diagnostic) -> str:
    s = d.span
    return printable(f"{s.file}:{s.line}:{s.col}: {d.severity.value}[{d.code}]: {_text(d)}")


def _testcases(checked: Sequence[Checked], strict: bool) -> Iterator[ElementTree.Element]:
    for c in checked:
        case = ElementTree.Element("testcase", classname="etlc.lint", name=printable(c.file))
        failing = [d for d in c.diagnostics if fails(d, strict)]
        if failing:
            failure = ElementTree.SubElement(
                case,
                "failure",
                type=failing[0].code,
                message=f"{len(failing)} problem(s), first: {_line(failing[0])}",
            )
            failure.text = "\n".join(_line(d) for d in failing)
        others = [d for d in c.diagnostics if not fails(d, strict)]
        if others:
            ElementTree.SubElement(case, "system-out").text = "\n".join(_line(d) for d in others)
        yield case


def junit(checked: Sequence[Checked], strict: bool = False) -> str:
    cases = list(_testcases(checked, strict))
    failures = sum(1 for case in cases if case.find("failure") is not None)
    counts = {"tests": str(len(cases)), "failures": str(failures), "errors": "0"}
    suites = ElementTree.Element("testsuites", {"name": "etlc lint", **counts})
    suite = ElementTree.SubElement(suites, "testsuite", {"name": "etlc lint", **counts})
    suite.extend(cases)
    ElementTree.indent(suites)
    body = ElementTree.tostring(suites, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def render(fmt: str, checked: Sequence[Checked], strict: bool = False) -> str:
    """The findings in ``fmt`` (any of :data:`FORMATS` but ``text``, which the CLI prints)."""
    if fmt == "json":
        return json_rows(checked)
    if fmt == "sarif":
        return sarif(checked, strict)
    if fmt == "github":
        return github(checked, strict)
    if fmt == "junit":
        return junit(checked, strict)
    raise ValueError(f"no such lint format: {fmt}")
