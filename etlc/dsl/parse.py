"""Parse a JSON or YAML definition into the positioned tree, reporting problems as diagnostics.

JSON goes through a lark LALR grammar (``grammar/json.lark``); YAML through PyYAML's composer,
whose nodes carry marks. Either way nothing raises for bad input: every problem is a
diagnostic with a stable code.

The file is untrusted (it arrives in a pull request), so the work is bounded before any parser
sees it: at most ``MAX_FILE_BYTES`` are read, JSON is scanned for its depth and number of
values before lark builds a tree, and every string and number in the tree is one a target can
take (``tree.refused_scalar``), whichever format it came from.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.tree import Meta

from etlc.dsl.diagnostics import Diagnostic, Span, diag
from etlc.dsl.project_files import (
    LIMIT_TEXT,
    MAX_FILE_BYTES,
    FileTooLargeError,
    NotRegularFileError,
    leaves_its_project,
    read_bounded,
)
from etlc.dsl.resources import grammar_path
from etlc.dsl.tree import MAX_DEPTH, JArray, JMember, JObject, JScalar, JValue, Scalar
from etlc.dsl.tree import refused_scalar as _refused_scalar

Format = Literal["json", "yaml"]

FORMATS: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}

__all__ = ["FORMATS", "MAX_DEPTH", "MAX_FILE_BYTES", "MAX_VALUES", "Format", "parse_file"]

# Values in one document, aliases expanded: far beyond any real definition (100 steps take
# about 1,000), and it bounds every later pass, jsonschema's and the checker's per step above
# all, so that lint of any file of MAX_FILE_BYTES takes seconds (4,000 steps took about 3 s).
# YAML aliases can otherwise expand a few lines into billions of values.
MAX_VALUES = 20_000
MAX_YAML_VALUES = MAX_VALUES
# No number a target takes needs more (a double's shortest form is under 25 characters).
MAX_NUMBER_CHARS = 100


def parse_file(path: str | Path) -> tuple[JValue | None, str | None, list[Diagnostic]]:
    """The tree (None if unusable), the source text for rendering (None if unreadable), and
    the diagnostics."""
    path = Path(path)
    file = str(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        return None, None, [_unreadable(file, "is not a .json, .yaml or .yml file")]
    if leaves_its_project(path):
        return None, None, [_linked_out(file, "its folder is a symbolic link out of the project")]
    try:
        # A regular file (a FIFO would block lint) of at most MAX_FILE_BYTES, and not a
        # symlink: `etlc lint pipelines/` in CI must not read, and quote in its diagnostics,
        # a file a pull request links to from elsewhere.
        data = read_bounded(path, follow_symlinks=False)
    except FileTooLargeError:
        return None, None, [_too_large(file)]
    except NotRegularFileError as exc:
        if exc.kind == "a symbolic link":
            return None, None, [_linked_out(file, "is a symbolic link")]
        return None, None, [_unreadable(file, f"is {exc.kind}, not a regular file")]
    except FileNotFoundError:
        return None, None, [_unreadable(file, "does not exist")]
    except IsADirectoryError:
        return None, None, [_unreadable(file, "is a directory")]
    except PermissionError:
        return None, None, [_unreadable(file, "is not readable (permission denied)")]
    except OSError as exc:
        return None, None, [_unreadable(file, f"cannot be read ({exc.strerror or exc})")]
    try:
        text = data.decode("utf-8-sig")  # editors may save a BOM; it is not part of line 1
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        why = f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        return None, None, [_unreadable(file, why, "save the file as UTF-8")]
    tree, diagnostics = parse_text(text, file, fmt)
    return tree, text, diagnostics


def parse_text(text: str, file: str, fmt: Format) -> tuple[JValue | None, list[Diagnostic]]:
    """The tree of ``text`` (None unless it is a usable document) and its diagnostics."""
    if fmt == "json":
        return _parse_json(text, file)
    return _parse_yaml(text, file)


def _unreadable(file: str, why: str, hint: str = "") -> Diagnostic:
    return diag("E001", f"{file} {why}", Span.point(file), hint, file=file)


def _linked_out(file: str, why: str) -> Diagnostic:
    return diag(
        "E214",
        f"{file} {why}; definitions are read only as regular files in the project",
        Span.point(file),
        "copy the definition into the project instead of linking to it",
        file=file,
    )


def _too_large(file: str) -> Diagnostic:
    return diag(
        "E005",
        f"{file} is larger than the {LIMIT_TEXT} limit",
        Span.point(file),
        "split the pipeline into smaller definitions",
        file=file,
        limit=MAX_FILE_BYTES,
    )


def _span_at(text: str, file: str, pos: int, length: int = 1) -> Span:
    line = text.count("\n", 0, pos) + 1
    col = pos - text.rfind("\n", 0, pos)
    return Span(file, line, col, line, col + max(length, 1))


def _too_deep(span: Span, code: str) -> Diagnostic:
    return diag(
        code,
        f"values are nested more than {MAX_DEPTH} levels deep",
        span,
        "flatten the document",
    )


def _too_many(span: Span, code: str) -> Diagnostic:
    return diag(
        code,
        f"the document holds more than {MAX_VALUES} values",
        span,
        "split the pipeline into smaller definitions",
    )


def _refused(value: Scalar, span: Span) -> Diagnostic | None:
    refused = _refused_scalar(value)
    if refused is None:
        return None
    code, why = refused
    hint = "remove the character" if code == "E006" else "write a finite number within 64 bits"
    return diag(code, why, span, hint)


def _with_values_checked(
    root: JValue, diagnostics: list[Diagnostic]
) -> tuple[JValue | None, list[Diagnostic]]:
    """No tree if a value was refused: every later stage may then assume clean values."""
    if any(d.code in ("E006", "E007") for d in diagnostics):
        return None, diagnostics
    return root, diagnostics


class _TreeError(Exception):
    """Abandons building a tree; carries the diagnostic saying why."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


# --- JSON ---------------------------------------------------------------------------------


@cache
def _json_parser() -> Lark:
    # Built once per process: lint checks many files, and building the tables dominates a parse.
    return Lark(
        grammar_path("json.lark").read_text(encoding="utf-8"),
        parser="lalr",
        propagate_positions=True,
        maybe_placeholders=False,
    )


_VALUE_START = frozenset({"LBRACE", "LSQB", "STRING", "NUMBER", "TRUE", "FALSE", "NULL"})
_WORDS = {  # in the order they are listed in "expected ..." messages
    "STRING": "a string",
    "NUMBER": "a number",
    "LBRACE": "`{`",
    "LSQB": "`[`",
    "TRUE": "`true`",
    "FALSE": "`false`",
    "NULL": "`null`",
    "COLON": "`:`",
    "COMMA": "`,`",
    "RBRACE": "`}`",
    "RSQB": "`]`",
    "$END": "the end of the file",
}
_CLOSERS = {"RBRACE": "}", "RSQB": "]"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STRING_PREFIX = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*')
_CHAR_HINTS = {
    "'": "JSON strings use double quotes",
    "/": "JSON has no comments",
    "#": "JSON has no comments",
}
_WORD_HINTS = {
    "True": "JSON writes `true`",
    "False": "JSON writes `false`",
    "None": "JSON writes `null`",
    "NaN": "JSON has no NaN; use null",
    "Infinity": "JSON has no Infinity; use a large number or null",
}


def _parse_json(text: str, file: str) -> tuple[JValue | None, list[Diagnostic]]:
    if not text.strip():
        return None, [diag("E002", "the file is empty", Span.point(file), "write a JSON object")]
    too_much = _json_bounds(text, file)
    if too_much is not None:
        return None, [too_much]
    try:
        parsed = _json_parser().parse(text)
    except UnexpectedInput as exc:
        return None, [_json_syntax_error(exc, text, file)]
    builder = _JsonBuilder(file)
    try:
        root = builder.value(parsed, 0)
    except _TreeError as exc:
        return None, [*builder.diagnostics, exc.diagnostic]
    return _with_values_checked(root, builder.diagnostics)


# Strings (escapes included), brackets, and the other tokens: what a scan for depth and size
# needs, without building anything. Malformed text only makes the counts approximate; lark
# reports the syntax error itself.
_JSON_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"(\s*:)?|([\[{])|([\]}])|[^\s\[\]{}",:]+')


def _json_bounds(text: str, file: str) -> Diagnostic | None:
    """E002 if the JSON nests deeper than MAX_DEPTH or holds more than MAX_VALUES values,
    found before lark builds a tree of it (1 MiB of `[` costs lark 500 MB)."""
    depth = values = 0
    for token in _JSON_TOKEN.finditer(text):
        key, opening, closing = token.groups()
        if closing is not None:
            depth -= 1
            continue
        if key is not None:  # keys are not values, as YAML's count has it
            continue
        values += 1
        if opening is not None:
            depth += 1
            if depth > MAX_DEPTH + 1:
                return _too_deep(_span_at(text, file, token.start()), "E002")
        if values > MAX_VALUES:
            return _too_many(_span_at(text, file, token.start()), "E002")
    return None


def _expected(names: set[str]) -> str:
    any_value = names >= _VALUE_START
    words = ["a value"] if any_value else []
    words += [w for n, w in _WORDS.items() if n in names and not (any_value and n in _VALUE_START)]
    *rest, last = words or ["something else"]
    return f"{', '.join(rest)} or {last}" if rest else last


def _json_syntax_error(exc: UnexpectedInput, text: str, file: str) -> Diagnostic:
    parser = getattr(exc, "interactive_parser", None)
    # The parser's own `expected` is approximate (LALR merges states); trying each terminal
    # from the failure point gives exactly what could have come next.
    accepts: set[str] = set(parser.accepts() if parser else getattr(exc, "expected", ()))
    expected = _expected(accepts)
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(text, file, exc.pos_in_stream or 0, accepts, expected)
    assert isinstance(exc, UnexpectedToken)
    token: Token = exc.token
    if token.type == "$END":
        # Lark borrows the last token's position; the caret belongs just after it.
        span = _span_at(text, file, len(text.rstrip()))
        return diag(
            "E002",
            f"unexpected end of file, expected {expected}",
            span,
            "the document is cut short: complete it and close every `{` and `[`",
        )
    span = _lark_span(file, token)
    found = _describe_token(token)
    hint = ""
    before = text[: token.start_pos].rstrip()
    if accepts == {"$END"}:
        hint = "a file holds one JSON value; remove what follows it"
    elif token.type in _CLOSERS and before.endswith(","):
        hint = "remove the trailing comma"
    elif token.type in _CLOSERS and accepts & _CLOSERS.keys():
        (other,) = accepts & _CLOSERS.keys()
        hint = f"close the inner bracket with `{_CLOSERS[other]}` first"
    elif "COMMA" in accepts and token.type in _VALUE_START:
        hint = "add a `,` before this"
    elif "COLON" in accepts:
        hint = "put `:` between a key and its value"
    return diag("E002", f"unexpected {found}, expected {expected}", span, hint)


def _lark_span(file: str, at: Token | Meta) -> Span:
    # Lark types positions as optional; lexed tokens and propagated metas always have them.
    return Span(file, at.line or 1, at.column or 1, at.end_line or 1, at.end_column or 1)


def _describe_token(token: Token) -> str:
    if token.type == "STRING":
        return f"string {token.value}"
    if token.type == "NUMBER":
        return f"number `{token.value}`"
    return f"`{token.value}`"


def _bad_character(text: str, file: str, pos: int, accepts: set[str], expected: str) -> Diagnostic:
    char = text[pos]
    if char == '"':
        return _bad_string(text, file, pos)
    word = _WORD.match(text, pos)
    if word is not None:
        name = word.group()
        if name in _WORD_HINTS:
            hint = _WORD_HINTS[name]
        elif accepts <= {"STRING", "RBRACE"}:
            hint = "object keys are strings: put the key in double quotes"
        else:
            hint = "put text in double quotes"
        span = _span_at(text, file, pos, len(name))
        return diag("E002", f"unexpected `{name}`, expected {expected}", span, hint)
    shown = f"`{char}`" if char.isprintable() else f"U+{ord(char):04X}"
    return diag(
        "E002",
        f"unexpected character {shown}, expected {expected}",
        _span_at(text, file, pos),
        _CHAR_HINTS.get(char, ""),
    )


def _bad_string(text: str, file: str, start: int) -> Diagnostic:
    """Why a string starting at ``start`` did not lex, pointing at the offending character."""
    match = _STRING_PREFIX.match(text, start)
    assert match is not None
    bad = match.end()
    if bad == len(text) or text[bad] in "\r\n":
        return diag(
            "E002",
            "unterminated string",
            _span_at(text, file, start, bad - start),
            'close the string with `"` on the same line',
        )
    if text[bad] == "\\":
        escape = text[bad : bad + 2]
        return diag(
            "E002",
            f"invalid escape `{escape}` in a string",
            _span_at(text, file, bad, len(escape)),
            'JSON escapes are \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX; '
            "write a backslash as \\\\",
        )
    return diag(
        "E002",
        f"control character U+{ord(text[bad]):04X} in a string",
        _span_at(text, file, bad),
        "write it as an escape, e.g. \\t for a tab",
    )


_INT_DIGITS = 19  # 2**63 has 19 digits
_NUMBER_HINT = "write a finite number within 64 bits"


class _JsonBuilder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def span(self, node: Tree[Token] | Token) -> Span:
        return _lark_span(self.file, node if isinstance(node, Token) else node.meta)

    def value(self, node: Tree[Token], depth: int) -> JValue:
        span = self.span(node)
        if depth > MAX_DEPTH:
            raise _TreeError(_too_deep(span, "E002"))
        kind = node.data
        if kind == "object":
            return self.object(node, span, depth)
        if kind == "array":
            items = tuple(self.value(c, depth + 1) for c in node.children if isinstance(c, Tree))
            return JArray(span, items)
        if kind in ("true", "false", "null"):
            return JScalar(span, {"true": True, "false": False, "null": None}[kind])
        token = node.children[0]
        assert isinstance(token, Token)
        return self.scalar(span, self.decode(token, span))

    def decode(self, token: Token, span: Span) -> Scalar:
        if token.type == "STRING":
            # The grammar only admits JSON escapes, so json.loads decodes them exactly.
            value: Scalar = json.loads(token.value)
            return value
        if len(token.value) > MAX_NUMBER_CHARS:
            self.diagnostics.append(_number_too_long(span))
            return 0
        if re.search("[.eE]", token.value):
            return float(token.value)
        if len(token.value.lstrip("-")) > _INT_DIGITS:
            # Out of 64 bits for sure; int() would also refuse beyond 4300 digits.
            self.diagnostics.append(
                diag("E007", "the integer does not fit in 64 bits", span, _NUMBER_HINT)
            )
            return 0
        return int(token.value)

    def scalar(self, span: Span, value: Scalar) -> JScalar:
        refused = _refused(value, span)
        if refused is not None:
            self.diagnostics.append(refused)
        return JScalar(span, value)

    def object(self, node: Tree[Token], span: Span, depth: int) -> JObject:
        members: dict[str, JMember] = {}
        for child in node.children:
            assert isinstance(child, Tree)
            key_token, value_node = child.children
            assert isinstance(key_token, Token) and isinstance(value_node, Tree)
            key = json.loads(key_token.value)
            key_span = self.span(key_token)
            self.scalar(key_span, key)
            member = JMember(key, key_span, self.value(value_node, depth + 1))
            first = members.get(key)
            if first is None:
                members[key] = member
            else:
                self.diagnostics.append(_duplicate(member, first))
        return JObject(span, tuple(members.values()))


def _number_too_long(span: Span) -> Diagnostic:
    return diag(
        "E007",
        f"the number is written with more than {MAX_NUMBER_CHARS} characters",
        span,
        _NUMBER_HINT,
    )


def _duplicate(member: JMember, first: JMember) -> Diagnostic:
    return diag(
        "E004",
        f"duplicate key `{member.key}`",
        member.key_span,
        f"`{member.key}` is already defined at line {first.key_span.line}; keep one",
        key=member.key,
        first_line=first.key_span.line,
    )


# --- YAML ---------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null")}
_NUMBER_TAGS = {f"{_TAG}int", f"{_TAG}float"}
_KIND_OF_TAG = {
    f"{_TAG}int": "a number",
    f"{_TAG}float": "a number",
    f"{_TAG}bool": "a boolean",
    f"{_TAG}null": "null",
    f"{_TAG}timestamp": "a date",
}


def _parse_yaml(text: str, file: str) -> tuple[JValue | None, list[Diagnostic]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        return None, [_yaml_syntax_error(exc, text, file)]
    except yaml.YAMLError as exc:  # the reader's: a character YAML does not allow
        span = _span_at(text, file, getattr(exc, "position", 0))
        return None, [diag("E003", str(exc).split("\n")[0], span)]
    except RecursionError:  # the composer recurses once per nesting level
        return None, [_too_deep(Span.point(file), "E003")]
    if node is None:
        return None, [diag("E003", "the file is empty", Span.point(file), "write a YAML mapping")]
    builder = _YamlBuilder(file)
    try:
        root = builder.value(node, 0)
    except _TreeError as exc:
        return None, [*builder.diagnostics, exc.diagnostic]
    if root is None:
        return None, builder.diagnostics
    return _with_values_checked(root, builder.diagnostics)


def _yaml_syntax_error(exc: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        span = Span.point(file)
    elif mark.index >= len(text.rstrip()):
        # "unexpected end of stream" points past the last line; show it after the last token.
        span = _span_at(text, file, len(text.rstrip()))
    else:
        span = Span.point(file, mark.line + 1, mark.column + 1)
    problem = exc.problem or "invalid YAML"
    context = exc.context or ""
    hint = ""
    if "'\\t'" in problem:
        hint = "indent with spaces; YAML does not allow tabs there"
    elif context.startswith("while") and exc.context_mark:
        hint = f"{context} that starts at line {exc.context_mark.line + 1}"
    elif context:  # e.g. "expected a single document in the stream"
        problem = f"{context}, {problem}"
    return diag("E003", problem, span, hint)


class _YamlBuilder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.diagnostics: list[Diagnostic] = []
        self.constructor = yaml.constructor.SafeConstructor()
        # An alias is the very node object its anchor made: convert each node once and share
        # the result. `sizes` (by id of the result) counts the values an alias stands for.
        self.done: dict[int, JValue] = {}
        self.sizes: dict[int, int] = {}
        self.active: set[int] = set()
        self.failed: set[int] = set()  # already reported: an alias must not report it again

    def span(self, node: yaml.Node) -> Span:
        start, end = node.start_mark, node.end_mark
        return Span(self.file, start.line + 1, start.column + 1, end.line + 1, end.column + 1)

    def error(self, node: yaml.Node, message: str, hint: str = "") -> None:
        self.diagnostics.append(diag("E003", message, self.span(node), hint))

    def value(self, node: yaml.Node, depth: int) -> JValue | None:
        """The node's value, or None after reporting why it has none (conversion goes on
        elsewhere, so one run reports every problem)."""
        ident = id(node)
        if ident in self.done or ident in self.failed:
            return self.done.get(ident)
        if ident in self.active:
            self.error(node, "an alias refers to a value that contains it", "remove the cycle")
            return None
        if depth > MAX_DEPTH:
            raise _TreeError(_too_deep(self.span(node), "E003"))
        self.active.add(ident)
        try:
            converted = self.convert(node, depth)
        finally:
            self.active.discard(ident)
        if converted is None:
            self.failed.add(ident)
            return None
        size = 1 + sum(self.sizes[id(child)] for child in _child_values(converted))
        if size > MAX_VALUES:
            raise _TreeError(_too_many(self.span(node), "E003"))
        self.done[ident] = converted
        self.sizes[id(converted)] = size
        return converted

    def convert(self, node: yaml.Node, depth: int) -> JValue | None:
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        if isinstance(node, yaml.SequenceNode) and node.tag == f"{_TAG}seq":
            items = [self.value(child, depth + 1) for child in node.value]
            if any(item is None for item in items):
                return None
            return JArray(self.span(node), tuple(i for i in items if i is not None))
        if isinstance(node, yaml.MappingNode) and node.tag == f"{_TAG}map":
            return self.mapping(node, depth)
        self.unsupported(node)
        return None

    def unsupported(self, node: yaml.Node) -> None:
        tag = node.tag.replace(_TAG, "!!")
        self.error(node, f"unsupported YAML tag `{tag}`", "use plain JSON-like values")

    def scalar(self, node: yaml.ScalarNode) -> JScalar | None:
        span = self.span(node)
        if node.tag == f"{_TAG}timestamp":
            # JSON has no dates; keep the text as written rather than a datetime.
            return JScalar(span, node.value)
        if node.tag not in _SCALAR_TAGS:
            self.unsupported(node)
            return None
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            # Before PyYAML builds it: its base-60 integers (`1:0:0:...`) take quadratic time.
            self.diagnostics.append(_number_too_long(span))
            return JScalar(span, 0)
        try:
            value = self.constructor.construct_object(node)
        except (ValueError, KeyError):  # an explicit tag on a wrong value: `!!int abc`
            tag = node.tag.replace(_TAG, "!!")
            self.error(node, f"`{node.value}` is not a valid `{tag}`")
            return None
        refused = _refused(value, span)
        if refused is not None:
            self.diagnostics.append(refused)
        return JScalar(span, value)

    def mapping(self, node: yaml.MappingNode, depth: int) -> JObject | None:
        members: dict[str, JMember] = {}
        inherited: dict[str, JMember] = {}
        ok = True
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merged = self.merge(value_node, depth)
                for m in merged or ():
                    inherited.setdefault(m.key, m)  # earlier mappings win, as YAML specifies
                ok = ok and merged is not None
                continue
            key = self.key(key_node)
            value = self.value(value_node, depth + 1)
            if key is None or value is None:
                ok = False
                continue
            member = JMember(key, self.span(key_node), value)
            first = members.get(key)
            if first is None:
                members[key] = member
            else:
                self.diagnostics.append(_duplicate(member, first))
        if not ok:
            return None
        # Keys written in the mapping override merged ones; merged keys come first, as in
        # yaml.safe_load.
        kept = [m for k, m in inherited.items() if k not in members]
        return JObject(self.span(node), (*kept, *members.values()))

    def merge(self, node: yaml.Node, depth: int) -> list[JMember] | None:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        members: list[JMember] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.error(source, "`<<` merges a mapping or a list of mappings")
                return None
            obj = self.value(source, depth + 1)
            if not isinstance(obj, JObject):
                return None
            members.extend(obj.members)
        return members

    def key(self, node: yaml.Node) -> str | None:
        if isinstance(node, yaml.ScalarNode) and node.tag == f"{_TAG}str":
            refused = _refused(node.value, self.span(node))
            if refused is not None:
                self.diagnostics.append(refused)
            return str(node.value)
        if isinstance(node, yaml.ScalarNode):
            kind = _KIND_OF_TAG.get(node.tag, f"`{node.tag}`")
            self.error(
                node,
                f"key `{node.value}` is read as {kind}, not a string",
                f'quote it: "{node.value}"',
            )
        else:
            self.error(node, "a key must be a string, not a mapping or a list")
        return None


def _child_values(value: JValue) -> tuple[JValue, ...]:
    if isinstance(value, JArray):
        return value.items
    if isinstance(value, JObject):
        return tuple(m.value for m in value.members)
    return ()
