"""The escaping functions every value passes through on its way into generated code."""

from __future__ import annotations

import ast
import subprocess

import jinja2
import pytest

from etlc.codegen import render as render_module
from etlc.codegen.literals import (
    Code,
    RenderError,
    code,
    docstring_text,
    identifier,
    literal,
    module_path,
    string,
)
from etlc.codegen.shell import ShellWord, comment, word
from etlc.printable import printable

# Every C0 and C1 control, the line and paragraph separators, format characters (bidi
# overrides, BOM, zero-width), a private-use and an unassigned code point, lone surrogates,
# and plain text around them.
AWKWARD = [
    *(chr(c) for c in range(0x20)),
    *(chr(c) for c in range(0x7F, 0xA1)),
    "\u2028",
    "\u2029",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\u200b",
    "\ue000",
    "\U000e0001",
    "\U0010ffff",
    "\ud800",
    "\udfff",
    "\udc80",
]
TEXTS = [
    "",
    "plain",
    "é ü 中文 😀",
    '"""',
    "'''",
    "\\",
    "ends with a backslash\\",
    "\\N{BULLET}\\x41\\u2028\\",
    "".join(AWKWARD),
    *AWKWARD,
    *(f"a{ch}b" for ch in AWKWARD),
]


@pytest.mark.parametrize("text", TEXTS, ids=ascii)
def test_a_string_literal_is_one_printable_line_that_reads_back(text: str) -> None:
    source = string(text)
    assert source.isprintable()
    source.encode("utf-8")
    tree = ast.parse(f"x = {source}\n")
    assert len(tree.body) == 1
    assert ast.literal_eval(source) == text


def test_escapes_use_the_formatters_lower_case_hex() -> None:
    assert string("\x1b\xad\u2028\U0001f600\ud83d") == '"\\x1b\\xad\\u2028😀\\ud83d"'
    assert string("\U000e0001") == '"\\U000e0001"'


@pytest.mark.parametrize("text", TEXTS, ids=ascii)
def test_docstring_text_can_neither_close_nor_run_on(text: str) -> None:
    body = docstring_text(text + '"')
    module = ast.parse(f'"""{body}"""\n\nx = 1\n')
    assert [type(n).__name__ for n in module.body] == ["Expr", "Assign"]
    assert ast.get_docstring(module, clean=False) == text + '"'


@pytest.mark.parametrize(
    "text",
    [t for t in TEXTS if "\x00" not in t and not any("\ud800" <= ch <= "\udfff" for ch in t)],
    ids=ascii,
)
def test_a_shell_word_is_exactly_one_argument(text: str) -> None:
    done = subprocess.run(
        ["bash", "-c", f"printf '%s\\0' {word(text)} END"],
        capture_output=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},  # no locale can change a word
    )
    assert done.stdout == text.encode("utf-8") + b"\0END\0"


@pytest.mark.parametrize("text", ["nul\x00", "\ud800"], ids=ascii)
def test_a_shell_word_no_argument_can_hold_is_refused(text: str) -> None:
    with pytest.raises(RenderError):
        word(text)


def test_shell_words_are_bare_only_when_nothing_in_them_is_special() -> None:
    assert word("spark.sql.session.timeZone=UTC") == "spark.sql.session.timeZone=UTC"
    assert word("a b") == "'a b'"
    assert word("it's") == "'it'\\''s'"
    assert word("~root") == "'~root'"
    assert word("") == "''"
    assert word("a\nb") == "$'a\\x0ab'"
    assert word("\u2028'\\") == "$'\\xe2\\x80\\xa8\\'\\\\'"


@pytest.mark.parametrize("text", TEXTS, ids=ascii)
def test_a_comment_stays_one_line(text: str) -> None:
    script = f"# {comment(text)}\necho ok\n"
    done = subprocess.run(["bash", "-c", script], capture_output=True, check=True)
    assert done.stdout == b"ok\n"


def test_names_must_match_in_full() -> None:
    assert identifier("FilesExtractor") == "FilesExtractor"
    assert module_path("etlc.connectors.files") == "etlc.connectors.files"
    for bad in ("a\n", "a b", "class", "1x", "ä", "os.system", ""):
        with pytest.raises(RenderError):
            identifier(bad)
    with pytest.raises(RenderError):
        module_path("etlc..x")


def test_composed_code_takes_only_escaped_pieces() -> None:
    assert code("f({})", string("x")) == 'f("x")'
    with pytest.raises(RenderError):
        code("f({})", "raw")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_numbers_that_are_not_finite_are_refused(value: float) -> None:
    with pytest.raises(RenderError):
        literal(value)
    with pytest.raises(RenderError):
        literal({"k": [value]})


@pytest.mark.parametrize(
    ("marked", "value"),
    [
        (render_module._DRIVER_VALUES, "raw text"),
        (render_module._DRIVER_VALUES, ShellWord("x")),
        (render_module._DRIVER_VALUES, True),
        (render_module._DRIVER_VALUES, 1.5),
        (render_module._SUBMIT_VALUES, "raw text"),
        (render_module._SUBMIT_VALUES, Code("x")),
    ],
)
def test_templates_refuse_unmarked_values(marked: tuple[type[str], ...], value: object) -> None:
    """A template edit that interpolates raw text fails at render time, not in production."""
    env = render_module._env(marked)
    with pytest.raises(RenderError, match="unescaped"):
        env.from_string("x = {{ v }}").render(v=value)
    with pytest.raises((RenderError, jinja2.TemplateError)):
        env.from_string('x = {{ "constant" }}').render()
    assert env.from_string("{{ v }}").render(v=3) == "3"


def test_printable_escapes_only_what_cannot_be_shown() -> None:
    assert printable("naïve 中 \\d") == "naïve 中 \\d"
    assert printable("a\nb\r\x1b[0m\u2028") == "a\\nb\\r\\x1b[0m\\u2028"
    assert printable('say "x"', '"') == 'say \\"x\\"'
    assert all(printable(t).isprintable() for t in TEXTS)
