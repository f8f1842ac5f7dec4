import sys
from pathlib import Path

import pytest
import yaml

from etlc.dsl import parse, resources
from etlc.dsl.diagnostics import Diagnostic, Span, render
from etlc.dsl.parse import MAX_DEPTH, Format, parse_file, parse_text
from etlc.dsl.tree import JArray, JObject, JScalar, JValue, key_span, locate, to_python


def where(d: Diagnostic) -> tuple[str, int, int]:
    return (d.code, d.span.line, d.span.col)


def ok(text: str, fmt: parse.Format = "json") -> JValue:
    root, diagnostics = parse_text(text, f"p.{fmt}", fmt)
    assert diagnostics == []
    assert root is not None
    return root


def failure(text: str, fmt: parse.Format = "json") -> Diagnostic:
    root, diagnostics = parse_text(text, f"p.{fmt}", fmt)
    assert root is None
    assert len(diagnostics) == 1
    return diagnostics[0]


# --- JSON ---------------------------------------------------------------------------------


def test_json_unicode_and_escapes_keep_later_columns_right() -> None:
    text = '{"\\u00e9t\\u00e9": "caf\\u00e9 \\"x\\"\\n\\ud83d\\ude00", "😀": "✓", "b": [true]}'
    root = ok(text)
    assert isinstance(root, JObject)
    first, emoji, b = root.members
    assert first.key == "été"
    assert first.key_span == Span("p.json", 1, 2, 1, 17)  # the raw token, quotes included
    assert first.value == JScalar(Span("p.json", 1, 19, 1, 50), 'café "x"\n😀')
    assert (emoji.key, emoji.key_span.col, emoji.value.span.col) == ("😀", 52, 57)
    assert to_python(emoji.value) == "✓"
    assert b.key_span.col == 62
    assert locate(root, ["b", 0]) == JScalar(Span("p.json", 1, 68, 1, 72), True)


def test_json_numbers() -> None:
    big = 2**63 - 1
    values = to_python(ok(f"[0, -0, 10, -3, 1.5, 2e3, 1E-2, {big}, {-big - 1}, 1e308]"))
    assert values == [0, 0, 10, -3, 1.5, 2000.0, 0.01, big, -big - 1, 1e308]
    assert [type(v) for v in values] == [int] * 4 + [float] * 3 + [int, int, float]


def test_json_scalar_root_and_empty_containers() -> None:
    assert ok('  "x"  ') == JScalar(Span("p.json", 1, 3, 1, 6), "x")
    root = ok('{"a": {}, "b": []}')
    assert locate(root, ["a"]) == JObject(Span("p.json", 1, 7, 1, 9), ())
    assert locate(root, ["b"]) == JArray(Span("p.json", 1, 16, 1, 18), ())


def test_json_crlf_line_endings() -> None:
    root = ok('{\r\n  "a": 1,\r\n  "b": 2\r\n}\r\n')
    assert locate(root, ["b"]) == JScalar(Span("p.json", 3, 8, 3, 9), 2)


@pytest.mark.parametrize(
    ("text", "line", "col", "end_col"),
    [
        pytest.param('{"a": 1,}', 1, 9, 10, id="trailing-comma-object"),
        pytest.param('{\n  "a": 1,\n  "b": 2,\n}', 4, 1, 2, id="trailing-comma-multiline"),
        pytest.param("[1,]", 1, 4, 5, id="trailing-comma-array"),
        pytest.param('{"a": 1', 1, 8, 9, id="eof-in-object"),
        pytest.param("[1,\n2,\n", 2, 3, 4, id="eof-after-comma"),
        pytest.param('{"a": 1 "b": 2}', 1, 9, 12, id="missing-comma"),
        pytest.param('{"a" 1}', 1, 6, 7, id="missing-colon"),
        pytest.param("{a: 1}", 1, 2, 3, id="unquoted-key"),
        pytest.param('{"a": tru}', 1, 7, 10, id="bad-literal"),
        pytest.param('{"a": True}', 1, 7, 11, id="python-literal"),
        pytest.param('{"a": [1}', 1, 9, 10, id="mismatched-bracket"),
        pytest.param('[{"a": 1]', 1, 9, 10, id="mismatched-brace"),
        pytest.param("[1,2]] ", 1, 6, 7, id="extra-closer"),
        pytest.param('{"a": 1}{}', 1, 9, 10, id="second-value"),
        pytest.param("{,}", 1, 2, 3, id="leading-comma"),
        pytest.param("['x']", 1, 2, 3, id="single-quotes"),
        pytest.param("// c\n{}", 1, 1, 2, id="comment"),
        pytest.param("[1, \x07]", 1, 5, 6, id="control-character"),
        pytest.param('\n\n   {"k": }', 3, 10, 11, id="missing-value"),
        pytest.param('{"é✓😀": 1,}', 1, 11, 12, id="after-unicode"),
        pytest.param('{"a": "abc\n}', 1, 7, 11, id="unterminated-string"),
        pytest.param('["abc', 1, 2, 6, id="string-at-eof"),
        pytest.param('{"a": "x\\qy"}', 1, 9, 11, id="invalid-escape"),
        pytest.param('{"a": "\\u12"}', 1, 8, 10, id="short-unicode-escape"),
        pytest.param('{"a": "x\ty"}', 1, 9, 10, id="raw-tab-in-string"),
    ],
)
def test_malformed_json(text: str, line: int, col: int, end_col: int) -> None:
    d = failure(text)
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E002", line, col, end_col)
    assert d.message


def test_malformed_json_hints() -> None:
    assert "trailing comma" in failure('{"a": 1,}').hint
    assert failure('{"a": 1 "b": 2}').hint != failure('{"a" 1}').hint


@pytest.mark.parametrize("text", ["", "  \n\t\n"])
def test_empty_json(text: str) -> None:
    assert where(failure(text)) == ("E002", 1, 1)


def test_json_too_deep() -> None:
    depth = MAX_DEPTH + 5
    d = failure("[" * depth + "]" * depth)
    assert (d.code, d.span.line, d.span.col) == ("E002", 1, MAX_DEPTH + 2)
    assert ok("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_json_number_too_long() -> None:
    # Beyond 64 bits long before Python's own cap of 4300 digits for int().
    assert where(failure("[" + "9" * 5000 + "]")) == ("E007", 1, 2)


def test_json_duplicate_keys() -> None:
    text = '{\n  "a": 1,\n  "b": {"x": 1, "x": 2},\n  "a": 3\n}'
    root, diagnostics = parse_text(text, "p.json", "json")
    assert [where(d) for d in diagnostics] == [("E004", 3, 17), ("E004", 4, 3)]
    assert [d.param("first_line") for d in diagnostics] == ["3", "2"]
    assert diagnostics[1].span == Span("p.json", 4, 3, 4, 6)
    # The tree stays usable, with the first of each duplicate.
    assert root is not None
    assert to_python(root) == {"a": 1, "b": {"x": 1}}


def test_render_points_at_the_column() -> None:
    text = '{\n  "name": "x",\n  "ids": [1, 2,]\n}\n'
    d = failure(text)
    assert render(d, text).splitlines()[1:3] == [
        '   3 |   "ids": [1, 2,]',
        "                      ^",
    ]
    caret = render(d, text).splitlines()[2]
    assert caret.index("^") - len("   3 | ") == d.span.col - 1 == text.splitlines()[2].index("]")


# --- YAML ---------------------------------------------------------------------------------

YAML = """\
name: orders
mode: 'batch'
retry:
  max_retries: 3
  delay: 1.5
extract:
  - id: "raw"
    header: true
    missing: null
    since: 2024-01-31
  - [a, 'b']
big: 0x10
"""


def test_yaml_positions_and_types() -> None:
    root = ok(YAML, "yaml")
    f = "p.yaml"
    assert to_python(root) == {
        "name": "orders",
        "mode": "batch",
        "retry": {"max_retries": 3, "delay": 1.5},
        "extract": [
            {"id": "raw", "header": True, "missing": None, "since": "2024-01-31"},
            ["a", "b"],
        ],
        "big": 16,
    }
    assert isinstance(root, JObject)
    assert root.span.line == 1 and root.span.col == 1
    assert key_span(root, [], "retry") == Span(f, 3, 1, 3, 6)
    assert locate(root, ["name"]) == JScalar(Span(f, 1, 7, 1, 13), "orders")
    assert locate(root, ["mode"]) == JScalar(Span(f, 2, 7, 2, 14), "batch")  # quotes included
    assert locate(root, ["retry", "max_retries"]) == JScalar(Span(f, 4, 16, 4, 17), 3)
    assert locate(root, ["extract", 0, "id"]) == JScalar(Span(f, 7, 9, 7, 14), "raw")
    assert locate(root, ["extract", 0, "since"]) == JScalar(Span(f, 10, 12, 10, 22), "2024-01-31")
    first = locate(root, ["extract", 0])
    assert first is not None and (first.span.line, first.span.col) == (7, 5)
    assert locate(root, ["extract", 1, 1]) == JScalar(Span(f, 11, 9, 11, 12), "b")


def test_yaml_flow_style_and_explicit_standard_tags() -> None:
    root = ok('{a: [1, 2], "b": !!str 3, c: !!float 1}', "yaml")
    assert to_python(root) == {"a": [1, 2], "b": "3", "c": 1.0}


def test_yaml_aliases_and_merge_keys() -> None:
    text = "base: &b {x: 1, y: 2}\nuse: *b\nmerged:\n  <<: *b\n  y: 3\nmany:\n  <<: [{a: 1}, {a: 2, b: 3}]\n"
    root = ok(text, "yaml")
    assert to_python(root) == {
        "base": {"x": 1, "y": 2},
        "use": {"x": 1, "y": 2},
        "merged": {"x": 1, "y": 3},
        "many": {"a": 1, "b": 3},
    }
    # An alias points where its anchor's value is written.
    assert locate(root, ["use", "x"]) == locate(root, ["base", "x"])
    assert locate(root, ["merged", "y"]) == JScalar(Span("p.yaml", 5, 6, 5, 7), 3)


def test_yaml_duplicate_keys() -> None:
    text = "a: 1\nb:\n  c: 1\n  c: 2\na: 3\n"
    root, diagnostics = parse_text(text, "p.yaml", "yaml")
    assert [where(d) for d in diagnostics] == [("E004", 4, 3), ("E004", 5, 1)]
    assert [d.param("first_line") for d in diagnostics] == ["3", "1"]
    assert root is not None and to_python(root) == {"a": 1, "b": {"c": 1}}


@pytest.mark.parametrize(
    ("text", "line", "col"),
    [
        pytest.param("a: 1\n b: 2\n", 2, 3, id="bad-indentation"),
        pytest.param("a:\n\t- 1\n", 2, 1, id="tab"),
        pytest.param("a: [1, 2\n", 1, 9, id="unclosed-flow-at-eof"),
        pytest.param('k: "unterminated\n', 1, 17, id="unterminated-quote"),
        pytest.param("---\na: 1\n---\nb: 2\n", 3, 1, id="two-documents"),
        pytest.param("a: *nope\n", 1, 4, id="undefined-alias"),
        pytest.param("a: b\nc: \x01\n", 2, 4, id="forbidden-character"),
        pytest.param("1: a\n", 1, 1, id="int-key"),
        pytest.param("x: 1\non: a\n", 2, 1, id="bool-key"),
        pytest.param("? [a]\n: b\n", 1, 3, id="list-key"),
        pytest.param("a: !!binary aGk=\n", 1, 4, id="binary-tag"),
        pytest.param("a: !env HOME\n", 1, 4, id="custom-tag"),
        pytest.param("a: !!set {x, y}\n", 1, 4, id="set-tag"),
        pytest.param("a: !!omap [x: 1]\n", 1, 4, id="omap-tag"),
        pytest.param("a: !!int abc\n", 1, 4, id="bad-int"),
        pytest.param("a: !!bool maybe\n", 1, 4, id="bad-bool"),
        pytest.param("a: &x [1, *x]\n", 1, 4, id="recursive-alias"),
        pytest.param("m: {<<: 1}\n", 1, 9, id="merge-scalar"),
        pytest.param("m: {<<: [{a: 1}, 2]}\n", 1, 18, id="merge-list-with-scalar"),
    ],
)
def test_malformed_yaml(text: str, line: int, col: int) -> None:
    assert where(failure(text, "yaml")) == ("E003", line, col)


def test_yaml_reports_every_bad_key() -> None:
    root, diagnostics = parse_text("1: a\nok: 1\nnull: b\n", "p.yaml", "yaml")
    assert root is None
    assert [where(d) for d in diagnostics] == [("E003", 1, 1), ("E003", 3, 1)]


def test_yaml_bad_anchor_reported_once() -> None:
    root, diagnostics = parse_text("a: &x [1, *x]\nb: *x\nc: [*x]\n", "p.yaml", "yaml")
    assert root is None
    assert [where(d) for d in diagnostics] == [("E003", 1, 4)]


def test_yaml_merge_of_a_bad_mapping() -> None:
    root, diagnostics = parse_text("m:\n  <<: !!set {a}\n", "p.yaml", "yaml")
    assert root is None
    assert [where(d) for d in diagnostics] == [("E003", 2, 7)]


@pytest.mark.parametrize("text", ["", "# only a comment\n"])
def test_empty_yaml(text: str) -> None:
    assert where(failure(text, "yaml")) == ("E003", 1, 1)


def test_yaml_too_deep() -> None:
    shallow = MAX_DEPTH + 5
    assert where(failure("a: " + "[" * shallow + "]" * shallow, "yaml")) == ("E003", 1, 104)
    # PyYAML's composer spends two frames a level: this one gives up before etlc's check.
    deep = sys.getrecursionlimit() * 3 // 4
    assert where(failure("[" * deep + "]" * deep, "yaml")) == ("E003", 1, 1)


def test_yaml_error_without_a_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    def compose(*args: object, **kwargs: object) -> None:
        raise yaml.MarkedYAMLError(problem="something broke")

    monkeypatch.setattr(yaml, "compose", compose)
    assert where(failure("a: 1\n", "yaml")) == ("E003", 1, 1)


def test_yaml_alias_bomb() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    d = failure("\n".join(lines) + "\n", "yaml")
    assert d.code == "E003"


# --- files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["p.json", "p.yaml", "p.yml", "P.JSON"])
def test_parse_file_by_extension(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text('{"a": [1]}\n', encoding="utf-8")
    root, source, diagnostics = parse_file(path)
    assert diagnostics == []
    assert source == '{"a": [1]}\n'
    assert root is not None and to_python(root) == {"a": [1]}
    assert root.span.file == str(path)


def test_parse_file_accepts_str_and_strips_bom(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1,}')
    root, source, diagnostics = parse_file(str(path))
    assert root is None and source == '{"a": 1,}'
    assert [where(d) for d in diagnostics] == [("E002", 1, 9)]


def test_parse_file_returns_source_with_syntax_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a: [\n", encoding="utf-8")
    root, source, diagnostics = parse_file(path)
    assert root is None and source == "a: [\n"
    assert [d.code for d in diagnostics] == ["E003"]


def unreadable(path: Path) -> Diagnostic:
    root, source, diagnostics = parse_file(path)
    assert root is None and source is None
    assert len(diagnostics) == 1
    assert diagnostics[0].span == Span.point(str(path))
    return diagnostics[0]


def test_missing_file(tmp_path: Path) -> None:
    assert unreadable(tmp_path / "nope.json").code == "E001"


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    assert unreadable(tmp_path / "dir.yaml").code == "E001"


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("a = 1\n", encoding="utf-8")
    assert unreadable(path).code == "E001"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_bytes(b'{\n"a": "\xff"}')
    d = unreadable(path)
    assert d.code == "E001"
    assert "line 2" in d.message


@pytest.mark.parametrize("error", [PermissionError(13, "denied"), OSError(5, "I/O error")])
def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: OSError) -> None:
    # Running as root makes chmod useless, so simulate the failure.
    path = tmp_path / "p.json"
    path.write_text("{}", encoding="utf-8")

    def fail(path: Path, **kwargs: object) -> bytes:
        raise error

    monkeypatch.setattr(parse, "read_bounded", fail)
    assert unreadable(path).code == "E001"


# --- resources ------------------------------------------------------------------------------


def test_resources_found_in_the_checkout() -> None:
    assert resources.grammar_path("json.lark").is_file()
    assert resources.schema_path().name == "pipeline.schema.json"
    assert resources.schema_path().is_file()


def test_resources_prefer_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages" / "etlc"
    (package / "_data" / "grammar").mkdir(parents=True)
    (package / "_data" / "grammar" / "json.lark").write_text("", encoding="utf-8")
    monkeypatch.setattr(resources, "_PACKAGE", package)
    monkeypatch.setattr(resources, "_CHECKOUT", tmp_path / "checkout")
    assert resources.grammar_path("json.lark") == package / "_data" / "grammar" / "json.lark"
    assert resources.schema_path() == tmp_path / "checkout" / "schemas" / "pipeline.schema.json"


# --- values no target takes (E006, E007) and bounds --------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "code", "col"),
    [
        ('{"a": "x\\u0000y"}', "json", "E006", 7),
        ('{"a": "\\ud800"}', "json", "E006", 7),
        ('{"a": "\\uffff"}', "json", "E006", 7),
        ('{"\\u0000": 1}', "json", "E006", 2),
        ('{"a": 1e400}', "json", "E007", 7),
        ('{"a": -1e400}', "json", "E007", 7),
        ('{"a": 9223372036854775808}', "json", "E007", 7),
        ('{"a": -9223372036854775809}', "json", "E007", 7),
        ('a: "x\\0y"\n', "yaml", "E006", 4),
        ('a: "\\ud800"\n', "yaml", "E006", 4),
        ('"k\\x00": 1\n', "yaml", "E006", 1),
        ("a: .nan\n", "yaml", "E007", 4),
        ("a: .inf\n", "yaml", "E007", 4),
        ("a: -.Inf\n", "yaml", "E007", 4),
        ("a: !!float 1e400\n", "yaml", "E007", 4),
        ("a: 0x10000000000000000\n", "yaml", "E007", 4),
    ],
)
def test_values_no_target_takes_are_refused(
    text: str, fmt: parse.Format, code: str, col: int
) -> None:
    assert where(failure(text, fmt)) == (code, 1, col)


def test_every_refused_value_is_reported_and_other_controls_pass() -> None:
    root, diagnostics = parse_text('{"a": "\\u0000", "b": [1e999, "\\udfff"]}', "p.json", "json")
    assert root is None
    assert [where(d) for d in diagnostics] == [("E006", 1, 7), ("E007", 1, 23), ("E006", 1, 30)]
    # U+0001 is Hive's field delimiter; tabs, newlines and ESC are for the renderer to escape.
    assert to_python(ok('{"sep": "\\u0001", "t": "a\\tb\\n\\u001b"}')) == {
        "sep": "\x01",
        "t": "a\tb\n\x1b",
    }
    assert to_python(ok('sep: "\\x01"\nf: 1.5e+300\n', "yaml")) == {"sep": "\x01", "f": 1.5e300}


def test_too_many_values_is_found_before_a_tree_is_built() -> None:
    many = "[" + ",".join(["1"] * (parse.MAX_VALUES + 1)) + "]"
    assert failure(many).code == "E002"
    keys = "{" + ",".join(f'"k{i}": 1' for i in range(parse.MAX_VALUES - 10)) + "}"
    assert ok(keys) is not None  # keys are not values, as in YAML's count
    aliases = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nb: [" + ", ".join(["*a"] * 4000) + "]\n"
    assert failure(aliases, "yaml").code == "E003"


def test_a_megabyte_of_brackets_is_refused_at_the_first_too_deep_one() -> None:
    half = 500_000
    assert where(failure("[" * half + "]" * half)) == ("E002", 1, MAX_DEPTH + 2)
    assert where(failure('{"a":' * 100_000 + "1" + "}" * 100_000)) == ("E002", 1, 506)


def test_a_file_over_the_limit_is_e005_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"a: 1\n" + b"#" * parse.MAX_FILE_BYTES)
    d = unreadable(path)
    assert d.code == "E005" and "1 MiB" in d.message


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        # PyYAML builds base-60 integers in quadratic time: refused before it builds them.
        ("n: 1" + ":0" * 200_000 + "\n", "yaml"),
        ("n: 0." + "1" * 200_000 + "\n", "yaml"),
        ("n: 0x" + "f" * 101 + "\n", "yaml"),
        ('{"n": 0.' + "1" * 200_000 + "}", "json"),
        ('{"n": 1' + "0" * 101 + "e-100}", "json"),
    ],
)
def test_numbers_written_too_long_are_e007(text: str, fmt: Format) -> None:
    _, found = parse_text(text, "d", fmt)
    assert [d.code for d in found] == ["E007"]
    assert "more than 100 characters" in found[0].message


def test_a_long_number_within_the_bound_is_read() -> None:
    tree, found = parse_text('{"n": 0.' + "1" * 90 + "}", "d", "json")
    assert found == [] and isinstance(tree, JObject)
