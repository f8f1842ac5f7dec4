"""Pipeline test files: reading and checking them, without Spark.

A test file (``<name>.test.json``, ``.test.yaml`` or ``.test.yml``, by default in the project's
``tests/pipelines`` folder) names one definition of the project and holds tests: rows given to
its extracts, rows expected in its datasets, expected expectation counts. It arrives in a pull
request like a definition, so it is read the same way (bounded, positioned, its schema
``schemas/pipeline_test.schema.json``), and every name in it is checked against the checked
plan of the definition: an unknown extract, dataset, step or rule, or a column the dataset does
not have, is a diagnostic at its line and column. A file it gives rows from must lie beside it.

E701 unknown extract, dataset, step or definition; E702 column not in the dataset's schema;
E703 the definition does not pass lint; E704 unknown rule; E705 two tests with one name;
E706 a ``key`` column the expected rows do not name; E707 a given file that cannot be used;
E708 a ``halt`` that cannot happen (a step without a fail rule) or with expected rows or counts;
E709 a number in rows that a JSON number (a float) cannot hold exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from etlc.dsl.checker import CheckResult, check_file, default_options
from etlc.dsl.diagnostics import Diagnostic, Span, diag, did_you_mean, masked
from etlc.dsl.parse import parse_file
from etlc.dsl.plan import Plan, PlannedStep
from etlc.dsl.project_files import ProjectFileError, decode_json, find, read_bounded
from etlc.dsl.resources import schema_path
from etlc.dsl.schema_validation import validate
from etlc.dsl.tree import JArray, JObject, JScalar, JValue, key_span, locate, to_python
from etlc.project import Project

TEST_SUFFIXES = (".test.json", ".test.yaml", ".test.yml")
# What one test file's given files may hold in all: each is read once and copied once, but
# hundreds of files of 1 MiB would fill the runner's folder for nothing.
MAX_GIVEN_BYTES = 64 << 20

Row = Mapping[str, Any]


def is_test_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


@cache
def test_file_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        schema_path("pipeline_test.schema.json").read_text(encoding="utf-8")
    )
    return loaded


@dataclass(frozen=True)
class Given:
    """An extract's rows: written in the test, or from a file beside it (CSV with a header,
    JSON array or JSON lines); ``file`` is the checked real path and ``data`` its bytes as
    read once, handed to the runner as they are (numbers keep every digit)."""

    extract: str
    rows: tuple[Row, ...] = ()
    file: Path | None = None
    format: str = "json"  # json (lines), json_array or csv
    data: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Expected:
    dataset: str
    rows: tuple[Row, ...]
    columns: tuple[str, ...]  # every column the rows name, in the dataset's order
    key: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineTest:
    name: str
    given: tuple[Given, ...]
    expected: tuple[Expected, ...]
    counts: tuple[tuple[str, str, int], ...] = ()  # (step, rule, records)
    halt: tuple[str, tuple[tuple[str, int], ...]] | None = None  # (step, its rules' records)


@dataclass
class TestFileCheck:
    __test__ = False  # not a pytest test class

    file: str
    source: str | None
    diagnostics: list[Diagnostic]
    plan: Plan | None = None
    tests: tuple[PipelineTest, ...] = ()
    pipeline: CheckResult | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.plan is not None and not any(d.is_error for d in self.diagnostics)


def check_test_file(path: Path, project: Project) -> TestFileCheck:
    """The test file's tests, checked against the plan of the definition it names."""
    file = str(path)
    tree, source, diagnostics = parse_file(path)
    result = TestFileCheck(file, source, diagnostics)
    if tree is None or any(d.is_error for d in diagnostics):
        return result
    diagnostics.extend(validate(tree, test_file_schema(), file))
    if not isinstance(tree, JObject) or any(d.is_error for d in diagnostics):
        return _done(result)
    pipeline = _pipeline(tree, file, project, diagnostics)
    if pipeline is None or pipeline.plan is None:
        return _done(result)
    result.pipeline = pipeline
    checker = _TestChecker(
        file,
        tree,
        plan=pipeline.plan,
        folder=path.parent,
        project=project,
        diagnostics=diagnostics,
        source=source,
    )
    tests = checker.run()
    result.plan = pipeline.plan
    result.tests = tests
    return _done(result)


def _done(result: TestFileCheck) -> TestFileCheck:
    result.diagnostics.sort(key=lambda d: (d.span.line, d.span.col, d.code))
    result.source = masked(result.source, result.diagnostics)
    if any(d.is_error for d in result.diagnostics):
        result.plan = None
    return result


def _pipeline(
    tree: JObject, file: str, project: Project, diagnostics: list[Diagnostic]
) -> CheckResult | None:
    node = tree.get("pipeline")
    assert node is not None  # the schema requires it
    span = node.span
    name = str(to_python(node))
    folder = project.relative(project.definitions)
    try:
        found = find(name, [project.definitions], roots=[project.root])
    except ProjectFileError as exc:
        diagnostics.append(diag(exc.code or "E214", exc.message, span, exc.hint))
        return None
    if found is None:
        diagnostics.append(
            diag(
                "E701",
                f"no definition `{name}` in the definitions folder `{folder}`",
                span,
                "name the definition by its path inside that folder, e.g. orders.json",
            )
        )
        return None
    checked = check_file(found, default_options(found, project))
    if not checked.ok:
        errors = sum(1 for d in checked.diagnostics if d.is_error)
        diagnostics.append(
            diag(
                "E703",
                f"the definition `{name}` has {errors} error(s); its tests cannot be checked",
                span,
                f"`etlc lint {folder}/{name}` shows them",
            )
        )
        return None
    return checked


class _TestChecker:
    def __init__(
        self,
        file: str,
        tree: JObject,
        *,
        plan: Plan,
        folder: Path,
        project: Project,
        diagnostics: list[Diagnostic],
        source: str | None = None,
    ) -> None:
        self.file = file
        self.tree = tree
        self.plan = plan
        self.folder = folder
        self.project = project
        self.diagnostics = diagnostics
        self.datasets = {s.id: s for s in plan.steps if s.role != "load"}
        self.lines = source.splitlines() if source else []
        # Each given file is read once, however many tests name it: (format, bytes, columns).
        self.files: dict[Path, tuple[str, bytes, list[str]]] = {}
        self.given_bytes = 0

    def run(self) -> tuple[PipelineTest, ...]:
        tests: list[PipelineTest] = []
        names: dict[str, int] = {}
        for i, doc in enumerate(to_python(self.tree)["tests"]):
            name = str(doc["name"])
            if name in names:
                self._error(
                    "E705",
                    f"a second test named `{name}`",
                    ("tests", i, "name"),
                    f"test names are unique in a file (the first is test {names[name] + 1})",
                )
            names.setdefault(name, i)
            tests.append(self._test(i, doc))
        return tuple(tests)

    def _test(self, i: int, doc: Mapping[str, Any]) -> PipelineTest:
        at: tuple[str | int, ...] = ("tests", i)
        given = tuple(
            g
            for extract, spec in doc.get("given", {}).items()
            if (g := self._given((*at, "given"), extract, spec)) is not None
        )
        expected = tuple(
            e
            for dataset, spec in doc.get("expect", {}).items()
            if (e := self._expected((*at, "expect"), dataset, spec)) is not None
        )
        counts = [
            (step, rule, int(n))
            for step, rules in doc.get("counts", {}).items()
            if self._counted_step((*at, "counts"), step)
            for rule, n in rules.items()
            if self._rule((*at, "counts", step), self.datasets[step], rule)
        ]
        halt = self._halt(at, doc["halt"], bool(expected or counts)) if "halt" in doc else None
        return PipelineTest(str(doc["name"]), given, expected, tuple(counts), halt)

    def _halt(
        self, at: tuple[str | int, ...], doc: Row, expects_rows: bool
    ) -> tuple[str, tuple[tuple[str, int], ...]] | None:
        """The step a run must halt at, and its fail rules' counts, checked."""
        where = (*at, "halt")
        name = str(doc["step"])
        step = self.datasets.get(name)
        if step is None:
            hint = did_you_mean(name, self.datasets)
            self._error("E701", f"no step `{name}` in `{self.plan.name}`", (*where, "step"), hint)
            return None
        if expects_rows:
            hint = "a halted run loads nothing: give `expect` and `counts` a test of their own"
            self._error(
                "E708", "a test that expects a halt expects no rows nor counts", where, hint
            )
            return None
        halting = [e.name for e in step.expectations if e.policy == "fail"]
        if step.role == "extract" and step.on_invalid == "fail":
            halting += ["parse", *(name for name, _ in step.rules)]
        if not halting:
            self._error("E708", f"step `{step.id}` has no rule that halts a run",
                        (*where, "step"), "only the schema's rules (without `on_invalid`) and "
                        "`expect` rules of policy fail halt")  # fmt: skip
            return None
        rules: list[tuple[str, int]] = []
        for rule, n in doc.get("rules", {}).items():
            if rule in halting:
                rules.append((rule, int(n)))
            else:
                self._key_error("E704", f"step `{step.id}` has no rule `{rule}` that halts",
                                (*where, "rules"), rule, did_you_mean(rule, halting))  # fmt: skip
        return step.id, tuple(rules)

    # --- given rows -----------------------------------------------------------------------

    def _given(self, at: tuple[str | int, ...], extract: str, spec: Row) -> Given | None:
        step = self.datasets.get(extract)
        if step is None or step.role != "extract":
            extracts = [s.id for s in self.plan.by_role("extract")]
            self._key_error("E701", f"no extract `{extract}` in `{self.plan.name}`", at, extract,
                            did_you_mean(extract, extracts))  # fmt: skip
            return None
        if "rows" in spec:
            self._columns((*at, extract, "rows"), step, spec["rows"])
            self._exact_numbers((*at, extract, "rows"))
            return Given(extract, tuple(spec["rows"]))
        return self._given_file((*at, extract, "file"), step, str(spec["file"]))

    def _given_file(self, at: tuple[str | int, ...], step: PlannedStep, name: str) -> Given | None:
        suffix = Path(name).suffix.lower()
        try:
            found = find(name, [self.folder], roots=[self.project.root])
        except ProjectFileError as exc:
            self._error(exc.code or "E214", exc.message, at, exc.hint)
            return None
        if found is None:
            self._error("E707", f"no file `{name}` beside the test file", at,
                        "give the file's name relative to the test file's folder")  # fmt: skip
            return None
        read = self.files.get(found)
        if read is None:
            try:
                read = _given_file(found, suffix, f"`{name}`")
            except ProjectFileError as exc:
                self._error(exc.code or "E707", exc.message, at, exc.hint)
                return None
            if self.given_bytes + len(read[1]) > MAX_GIVEN_BYTES:
                self._error("E707", f"the given files of this test file total more than "
                            f"{MAX_GIVEN_BYTES >> 20} MiB", at,
                            "give the tests fewer or smaller files")  # fmt: skip
                return None
            self.given_bytes += len(read[1])
            self.files[found] = read
        fmt, data, columns = read
        problem = _header_problem(columns, step.schema.names()) if fmt == "csv" else None
        unknown = [c for c in columns if step.schema.field(c) is None]
        if unknown:
            problem = (
                f"has column(s) {', '.join(f'`{c}`' for c in unknown)} that extract "
                f"`{step.id}` does not have"
            )
        if problem:
            hint = did_you_mean(unknown[0], step.schema.names()) if unknown else ""
            self._error("E702", f"`{name}` {problem}", at, hint)
            return None
        return Given(step.id, file=found, format=fmt, data=data)

    def _exact_numbers(self, at: tuple[str | int, ...]) -> None:
        """Every number of the rows at ``at`` as written: a float cannot hold 0.1234567890123456789
        or 12345678901234567.89, and a decimal column would get another value than the test's."""
        rows = locate(self.tree, at)
        for row in rows.items if isinstance(rows, JArray) else ():
            for member in row.members if isinstance(row, JObject) else ():
                value = member.value
                if isinstance(value, JScalar) and isinstance(value.value, float):
                    written = _token(self.lines, value.span)
                    if written is not None and not _same_number(written, value.value):
                        hint = (
                            f'write it as a string, "{written}": a decimal column reads it exactly'
                        )
                        self.diagnostics.append(diag(
                            "E709", f"the number {written} loses digits as a JSON number",
                            value.span, hint))  # fmt: skip

    # --- expected rows --------------------------------------------------------------------

    def _expected(self, at: tuple[str | int, ...], dataset: str, spec: Row) -> Expected | None:
        step = self.datasets.get(dataset)
        if step is None:
            self._key_error("E701", f"no dataset `{dataset}` in `{self.plan.name}`", at, dataset,
                            did_you_mean(dataset, self.datasets))  # fmt: skip
            return None
        rows = spec["rows"]
        if not self._columns((*at, dataset, "rows"), step, rows):
            return None
        self._exact_numbers((*at, dataset, "rows"))
        named = {c for row in rows for c in row}
        # No rows name no column: the dataset must be empty, whatever its columns hold.
        columns = tuple(c for c in step.schema.names() if c in named or not named)
        key = tuple(spec.get("key") or self._default_key(step, columns))
        for j, column in enumerate(spec.get("key", [])):
            where = (*at, dataset, "key", j)
            if step.schema.field(column) is None:
                self._error("E702", f"dataset `{dataset}` has no column `{column}`", where,
                            did_you_mean(column, step.schema.names()))  # fmt: skip
                return None
            if column not in named:
                self._error("E706", f"key column `{column}` is in none of the expected rows",
                            where, "a key column must be one the rows name")  # fmt: skip
                return None
        return Expected(dataset, tuple(rows), columns, key)

    def _default_key(self, step: PlannedStep, columns: Sequence[str]) -> tuple[str, ...]:
        """The dataset's own key where the plan has one: an aggregate's or a window's group,
        else the keys of an upsert that loads it. Empty unless the rows name all of it."""
        args = dict(step.args)
        candidates: list[tuple[str, ...]] = []
        if step.type == "aggregate":
            candidates.append(tuple(args.get("group_by", ())))
        if step.type == "window":
            candidates.append(("window_start", *args.get("group_by", ())))
        for load in self.plan.by_role("load"):
            if load.inputs == (step.id,) and not load.quarantined:  # keys of other rows
                candidates.append(tuple(dict(load.args).get("keys", ())))
        return next((k for k in candidates if k and set(k) <= set(columns)), ())

    def _columns(self, at: tuple[str | int, ...], step: PlannedStep, rows: Sequence[Row]) -> bool:
        ok = True
        for j, row in enumerate(rows):
            for column in row:
                if step.schema.field(column) is None:
                    self._key_error(
                        "E702",
                        f"{'extract' if step.role == 'extract' else 'dataset'} `{step.id}` has "
                        f"no column `{column}`",
                        (*at, j),
                        column,
                        did_you_mean(column, step.schema.names()),
                    )
                    ok = False
        return ok

    # --- counts ---------------------------------------------------------------------------

    def _counted_step(self, at: tuple[str | int, ...], step: str) -> bool:
        if step in self.datasets:
            return True
        self._key_error("E701", f"no step `{step}` in `{self.plan.name}`", at, step,
                        did_you_mean(step, self.datasets))  # fmt: skip
        return False

    def _rule(self, at: tuple[str | int, ...], step: PlannedStep, rule: str) -> bool:
        known = [e.name for e in step.expectations]
        if step.on_invalid != "fail":  # the schema's rules are counted under their names
            known += ["parse", *(name for name, _ in step.rules)]
        if rule in known:
            return True
        self._key_error(
            "E704",
            f"step `{step.id}` has no counted rule `{rule}`",
            at,
            rule,
            did_you_mean(rule, known) or "the step has no `expect` rules nor an `on_invalid`",
        )
        return False

    # --- diagnostics ----------------------------------------------------------------------

    def _span(self, at: Sequence[str | int]) -> Span:
        node: JValue | None = locate(self.tree, at)
        return node.span if node is not None else self.tree.span

    def _error(self, code: str, message: str, at: Sequence[str | int], hint: str = "") -> None:
        self.diagnostics.append(diag(code, message, self._span(at), hint))

    def _key_error(
        self, code: str, message: str, at: Sequence[str | int], key: str, hint: str = ""
    ) -> None:
        span = key_span(self.tree, at, key) or self._span(at)
        self.diagnostics.append(diag(code, message, span, hint))


def _given_file(path: Path, suffix: str, shown: str) -> tuple[str, bytes, list[str]]:
    """A given file read once and checked: its format for the runner, its bytes, the columns
    it names. Raises ProjectFileError (E707 unless the value check names its own code)."""
    try:
        data = read_bounded(path)
    except OSError as exc:
        raise ProjectFileError("E707", f"{shown} cannot be read: {exc.strerror or exc}") from None
    if suffix == ".csv":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ProjectFileError("E707", f"{shown} is not UTF-8 text") from None
        header = next(csv.reader(io.StringIO(text)), [])
        if not header:
            raise ProjectFileError("E707", f"{shown} has no header line")
        return "csv", text.encode(), header
    if data.lstrip().startswith(b"["):
        rows = decode_json(data, shown)
        fmt = "json_array"
    else:
        lines = [line for line in data.splitlines() if line.strip()]
        rows = [decode_json(line, shown) for line in lines]
        fmt = "json"
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ProjectFileError("E707", f"{shown} is not a JSON array of objects or JSON lines")
    return fmt, data, list(dict.fromkeys(c for r in rows for c in r))


def _header_problem(header: Sequence[str], names: Sequence[str]) -> str | None:
    """Why a CSV header is not the extract's columns in order (Spark checks it so, ignoring
    case, and refuses the file otherwise); None when it is."""
    if [h.lower() for h in header] == [n.lower() for n in names]:
        return None
    missing = [n for n in names if n.lower() not in {h.lower() for h in header}]
    if missing:
        return f"has no column(s) {', '.join(f'`{c}`' for c in missing)} in its header line"
    if len(header) == len(names):
        return f"names the columns in another order; the schema's is {', '.join(names)}"
    return None  # a column the schema lacks: reported as unknown


def _token(lines: Sequence[str], span: Span) -> str | None:
    """The text of a one-line token, as written."""
    if span.line != span.end_line or not 0 < span.line <= len(lines):
        return None
    return lines[span.line - 1][span.col - 1 : span.end_col - 1]


def _same_number(written: str, value: float) -> bool:
    try:
        return Decimal(written) == Decimal(repr(value))
    except ArithmeticError:
        return True  # not a plain number token (YAML's own spellings): nothing to compare


def json_lines(rows: Sequence[Row]) -> bytes:
    """Rows as the runner reads them: one JSON object per line (ASCII: a lone surrogate, which
    no encoder takes, is written as its escape and refused by Spark's reader like any bad
    text)."""
    return "".join(json.dumps(r) + "\n" for r in rows).encode()
