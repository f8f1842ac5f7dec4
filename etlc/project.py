"""The project: the folders a repository keeps its definitions, schemas and outputs in.

``etlc.toml`` at the project's root (or ``[tool.etlc]`` in its ``pyproject.toml``) names them;
every command finds it by walking up from the working directory, like ``pyproject.toml`` or
``dbt_project.yml``. Without one, the working directory is the root of an implicit project with
the defaults below, the layout etlc has always used.

The project file arrives in a pull request like the definitions, and it decides which jars the
submit commands ship, so it is read as untrusted input: at most 1 MiB, only string values for
known keys, and every folder a plain relative path that stays inside the root once symlinks are
resolved. A project file owned by another user is refused, as git refuses such a repository:
in a shared folder such as ``/tmp`` anyone could plant one above your project.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etlc.codegen.output import Output, write
from etlc.dsl.diagnostics import did_you_mean
from etlc.dsl.project_files import (
    LIMIT_TEXT,
    FileTooLargeError,
    NotRegularFileError,
    name_problem,
    read_bounded,
)
from etlc.dsl.resources import schema_path
from etlc.printable import printable
from etlc.spark_targets import DEFAULT_LINE, target_problem

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the venv runs 3.11
    import tomli as tomllib

PROJECT_FILE = "etlc.toml"
PYPROJECT = "pyproject.toml"

# The folders, relative to the project's root; a Project holds them as absolute paths.
FOLDERS: Mapping[str, str] = {
    "definitions": "pipelines",
    "environments": "pipelines/env",
    "avro_schemas": "schemas/avro",
    "jvm_schemas": "schemas/jvm",
    "generated": "generated",
    "jars": "jars",
    "tests": "tests/pipelines",  # pipeline test files (`etlc test`)
}
# Defaults of the runtime's settings of the same names, relative to where the driver runs (the
# project's root); an environment file's `etlc` object overrides them.
RUNTIME_DIRS: Mapping[str, str] = {
    "stage_dir": ".etlc/stage",
    "checkpoint_dir": ".etlc/checkpoints",
}
# Settings that are not folders: the Spark line drivers are compiled for (`etlc compile
# --spark-version` overrides it).
SETTINGS: Mapping[str, str] = {"spark_version": DEFAULT_LINE}
KEYS: Mapping[str, str] = {**FOLDERS, **RUNTIME_DIRS, **SETTINGS}
# Folders other tools act on by what they hold: a project folder inside one would let the
# project file make etlc read or write there (`generated = ".git/hooks"`, `jars = ".git"`,
# a `sitecustomize.py` driver in a virtualenv's site-packages, run by every Python started).
_TOOLING = frozenset(
    {".git", ".hg", ".svn", ".bzr", ".jj", ".mvn", ".venv", "site-packages", "dist-packages"}
)

_MAX_DOTS = 32  # per line, outside strings (see _many_dots)
_MAX_SHOWN = 80  # characters of a key or value quoted in a message
# A table header, `[a.b]` or `[[a.b]]`, and the key of a `key = value` line (quoted keys
# holding `.` or `]` are rare enough in a project file to be located as "somewhere").
_HEADER = re.compile(r"\s*\[\[?([^\]#]*)\]")
_ASSIGNMENT = re.compile(r"\s*(\"[^\"]*\"|'[^']*'|[A-Za-z0-9_-]+)\s*=")
_TOML_WHERE = re.compile(r" \(at (?:line (\d+), column (\d+)|end of document)\)\Z")


class ProjectError(Exception):
    """A project file that cannot be used: ``str()`` is ``file:line:col: message``."""

    def __init__(self, file: Path, message: str, line: int = 0, col: int = 0) -> None:
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        where = f"{file}:{line}:{col}" if line else str(file)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Project:
    """Folders are absolute and as written (``root / value``), not symlink-resolved, so a
    folder that is a link shows as one; ``stage_dir`` and ``checkpoint_dir`` stay relative."""

    root: Path
    file: Path | None
    definitions: Path
    environments: Path
    avro_schemas: Path
    jvm_schemas: Path
    generated: Path
    jars: Path
    tests: Path
    stage_dir: str = RUNTIME_DIRS["stage_dir"]
    checkpoint_dir: str = RUNTIME_DIRS["checkpoint_dir"]
    spark_version: str = DEFAULT_LINE

    @classmethod
    def at(
        cls, root: Path, values: Mapping[str, str] | None = None, file: Path | None = None
    ) -> Project:
        """The project rooted at ``root``; ``values`` (checked) override the defaults."""
        root = Path(os.path.abspath(root))
        merged = {**KEYS, **(values or {})}
        folders = {key: _join(root, merged[key]) for key in FOLDERS}
        return cls(
            root=root,
            file=file,
            stage_dir=merged["stage_dir"],
            checkpoint_dir=merged["checkpoint_dir"],
            spark_version=merged["spark_version"],
            **folders,
        )

    def relative(self, folder: Path) -> str:
        """``folder`` (one of the project's) relative to the root, ``/``-separated."""
        return Path(os.path.relpath(folder, self.root)).as_posix()

    def holds(self, folder: Path, path: Path) -> bool:
        """Whether ``path``, as written, lies in ``folder`` (no file system access)."""
        return Path(os.path.abspath(path)).is_relative_to(folder)

    def leaves(self, folder: Path) -> bool:
        """Whether ``folder``, symlinks resolved, lies outside the root. A project file's
        folders were checked when it was read; an implicit project's defaults were not."""
        return _leaves(self.root, os.path.relpath(folder, self.root))

    def other_folders(self) -> frozenset[Path]:
        """Every folder of the project but the definitions': none of them holds definitions,
        even where it lies inside the definitions folder (``pipelines/env``)."""
        return frozenset(getattr(self, key) for key in FOLDERS if key != "definitions") - {
            self.definitions
        }


def _join(root: Path, value: str) -> Path:
    return root if value == "." else root / value


def find_project(start: Path | None = None) -> Project:
    """The project holding ``start`` (default: the working directory).

    Walks up to the first folder with ``etlc.toml`` or a ``pyproject.toml`` that has a
    ``[tool.etlc]`` table, stopping at the file system's root, or at your home folder when
    ``start`` lies in it (a project file above home is not yours). None found: an implicit
    project rooted at ``start``. Raises ``ProjectError`` for a project file it cannot use.
    """
    start = Path(os.path.abspath(start if start is not None else Path.cwd()))
    for folder in _upwards(start):
        found = _project_in(folder)
        if found is not None:
            return found
    return Project.at(start)


def _upwards(start: Path) -> Iterator[Path]:
    home = os.environ.get("HOME")
    stop = Path(os.path.abspath(home)) if home else None
    for folder in (start, *start.parents):
        yield folder
        if folder == stop:
            return


def _project_in(folder: Path) -> Project | None:
    own = folder / PROJECT_FILE
    pyproject = folder / PYPROJECT
    table = _etlc_table(pyproject) if os.path.lexists(pyproject) else None
    if os.path.lexists(own):
        if table is not None:
            raise ProjectError(
                own,
                f"{pyproject} has a [tool.etlc] table too; keep the project's settings in one "
                "of the two files",
            )
        _check_owner(own)
        text = _read(own)
        table = _parse(own, text), text, ()
    if table is None:
        return None
    values, text, prefix = table
    file = own if os.path.lexists(own) else pyproject
    return Project.at(folder, _checked(file, text, values, prefix), file)


def _etlc_table(path: Path) -> tuple[dict[str, Any], str, tuple[str, ...]] | None:
    """The ``[tool.etlc]`` table of a pyproject.toml with its text, None if it has none.

    Most pyproject.toml files are other tools' (a folder above the project may hold one):
    one that cannot be read as a bounded regular file, or never mentions etlc, is not ours.
    """
    try:
        text = _read(path)
    except ProjectError:
        return None
    if "etlc" not in text:
        return None
    tool = _parse(path, text).get("tool")
    table = tool.get("etlc") if isinstance(tool, dict) else None
    if table is None:
        return None
    _check_owner(path)
    if not isinstance(table, dict):
        raise ProjectError(path, "`tool.etlc` must be a table", *_line_of(text, "etlc", ("tool",)))
    return table, text, ("tool", "etlc")


def _read(path: Path) -> str:
    try:
        data = read_bounded(path, follow_symlinks=False)
    except FileTooLargeError:
        raise ProjectError(path, f"is larger than the {LIMIT_TEXT} limit") from None
    except NotRegularFileError as exc:
        raise ProjectError(path, f"is {exc.kind}, not a regular file") from None
    except OSError as exc:
        raise ProjectError(path, f"cannot be read ({exc.strerror or type(exc).__name__})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProjectError(path, "is not UTF-8 text", line, 1) from None


def _check_owner(path: Path) -> None:
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # no owners to compare (Windows)
        return
    try:
        owner = os.stat(path, follow_symlinks=False).st_uid
    except OSError:
        return  # reading it says what is wrong
    if owner not in (geteuid(), 0):
        raise ProjectError(
            path,
            f"is owned by another user (uid {owner}); etlc uses only your own or root's "
            "project files, since one decides which jars your submit commands ship",
        )


def _parse(path: Path, text: str) -> dict[str, Any]:
    deep = _many_dots(text)
    if deep:
        raise ProjectError(
            path,
            f"more than {_MAX_DOTS} `.` outside strings on one line; etlc reads no key or "
            "table name of that many parts",
            deep,
            1,
        )
    try:
        table: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raw = str(exc)
        where = _TOML_WHERE.search(raw)
        message = _clip(raw[: where.start()] if where else raw)
        if where and where.group(1):
            line, col = int(where.group(1)), int(where.group(2))
        else:  # the end of the document
            line = text.count("\n") + 1
            col = len(text) - (text.rfind("\n") + 1) + 1
        raise ProjectError(path, f"malformed TOML: {message}", line, col) from None
    except RecursionError:
        raise ProjectError(path, "malformed TOML: nested too deeply") from None
    return table


def _many_dots(text: str) -> int:
    """The first line holding more than ``_MAX_DOTS`` dots outside strings and comments (0 if
    none). tomllib's time and memory grow with the square of a dotted key's parts: one line
    `a.a.a...= 1` of 600 kB took minutes and 20 GB. Capped per line, a 1 MiB file costs at
    most its size times the cap. One pass, strings followed as TOML writes them."""
    if text.count(".") <= _MAX_DOTS:  # every project file written by hand
        return 0
    line, dots, i, n = 1, 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line, dots = line + 1, 0
        elif ch == ".":
            dots += 1
            if dots > _MAX_DOTS:
                return line
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            end = _string_end(text, i + len(quote), quote)
            line += text.count("\n", i, end)
            dots = 0 if len(quote) == 3 and "\n" in text[i:end] else dots
            i = end
            continue
        i += 1
    return 0


def _string_end(text: str, i: int, quote: str) -> int:
    """Just past the string opened before ``i`` (or where the line ends, for a one-line
    string left open: tomllib reports that)."""
    n = len(text)
    while i < n:
        if text.startswith(quote, i):
            return i + len(quote)
        if text[i] == "\n" and len(quote) == 1:
            return i
        i += 2 if text[i] == "\\" and quote[0] == '"' else 1
    return n


def _checked(
    file: Path, text: str, values: Mapping[str, Any], prefix: tuple[str, ...]
) -> dict[str, str]:
    """The table's values once every key is known and every folder, named or by default, is
    a plain relative path that stays inside the root."""
    out: dict[str, str] = {}
    for key, value in values.items():
        where = _line_of(text, key, prefix)
        if key not in KEYS:
            hint = did_you_mean(key, KEYS)
            raise ProjectError(file, f"unknown key `{_clip(key)}`; {hint}", *where)
        if key in SETTINGS:
            out[key] = _setting(file, key, value, where)
            continue
        if not isinstance(value, str):
            raise ProjectError(
                file, f"`{key}` must be a string (a folder relative to the project)", *where
            )
        why = folder_problem(value, key)
        if why:
            raise ProjectError(file, f'`{key}` = "{_clip(value)}" {why}', *where)
        out[key] = value
    folders = {**FOLDERS, **RUNTIME_DIRS}
    for key, value in {**folders, **{k: v for k, v in out.items() if k in folders}}.items():
        if not _leaves(file.parent, value):
            continue
        named = key in out
        shown = f'`{key}` = "{_clip(value)}"' if named else f'`{key}` (by default "{value}")'
        raise ProjectError(
            file,
            f"{shown} is, or lies in, a symbolic link that leaves the project; "
            "copy the folder into the project instead",
            *(_line_of(text, key, prefix) if named else (0, 0)),
        )
    return out


def _setting(file: Path, key: str, value: object, where: tuple[int, int]) -> str:
    if not isinstance(value, str):
        raise ProjectError(file, f'`{key}` must be a string, e.g. "{SETTINGS[key]}"', *where)
    why = target_problem(value)
    if why:
        raise ProjectError(file, f'`{key}` = "{_clip(value)}": {why}', *where)
    return value


def folder_problem(value: str, key: str = "") -> str | None:
    """Why ``value`` cannot name the folder ``key`` inside the project (None if it can): the
    rules of a file a definition names (``project_files.name_problem``), except that ``.``
    names the root and a runtime folder may lie in a hidden one (``.etlc/stage``)."""
    if value == ".":
        return None
    parts = value.split("/")
    if any(p in (".", "..") for p in parts):
        return "has a `.` or `..` component; name a folder inside the project"
    # Compared as a case-insensitive file system (macOS, Windows: also without trailing dots)
    # would open them: `.GIT.` is `.git` there.
    tooling = next((p for p in parts if p.rstrip(".").lower() in _TOOLING), None)
    if tooling is not None:
        return (
            f"lies in `{_clip(tooling)}`, which belongs to another tool (git's hooks and "
            "config, Python's startup files); name a folder of the project's own"
        )
    hidden = next((p for p in parts if p.startswith(".")), None)
    if hidden is not None and key not in RUNTIME_DIRS:
        return (
            f"lies in the hidden folder `{_clip(hidden)}`; only `stage_dir` and "
            "`checkpoint_dir` may (`.etlc/...`)"
        )
    return name_problem("/".join(p[1:] if p.startswith(".") and p != "." else p for p in parts))


def _leaves(root: Path, value: str) -> bool:
    """Whether the folder, symlinks resolved, lies outside the root (it need not exist)."""
    real_root = os.path.realpath(root)
    return not Path(os.path.realpath(_join(root, value))).is_relative_to(real_root)


def _line_of(text: str, key: str, prefix: tuple[str, ...]) -> tuple[int, int]:
    """Where ``key`` of the table ``prefix`` is written: ``key = ...`` in that table, or a
    ``[prefix.key]`` header. (0, 0) when it is written some other way (dotted or inline)."""
    wanted = (*prefix, key)
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        indent = len(line) - len(line.lstrip()) + 1
        header = _HEADER.match(line)
        if header:
            table = tuple(_unquoted(p) for p in header.group(1).split("."))
            if table == wanted:
                return number, indent
            continue
        assignment = _ASSIGNMENT.match(line)
        if table == prefix and assignment and _unquoted(assignment.group(1)) == key:
            return number, indent
    return 0, 0


def _unquoted(part: str) -> str:
    part = part.strip()
    return part[1:-1] if len(part) > 1 and part[0] == part[-1] and part[0] in "\"'" else part


def _clip(text: str) -> str:
    shown = printable(text)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."


# --- etlc init ----------------------------------------------------------------------------

_TEMPLATE = Path(__file__).parent / "init_template"
# Stored under another name in the package: a `.gitignore` there would steer what the wheel
# build includes.
_RENAMED = {"gitignore": ".gitignore"}
# Copied into the new project's schemas/ for editors (`$schema` in the example files).
_EDITOR_SCHEMAS = ("pipeline.schema.json", "environment.schema.json", "pipeline_test.schema.json")


@dataclass(frozen=True)
class Scaffold:
    """What ``init_project`` did, relative to the project's root."""

    root: Path
    created: tuple[str, ...]
    kept: tuple[str, ...]  # there already; never overwritten


def init_project(folder: Path) -> Scaffold:
    """Make ``folder`` an etlc project: the project file, an example pipeline with its schema,
    sample data and a ``local`` environment, a .gitignore and a README.

    A file that exists is kept as it is, never overwritten, and nothing is written through a
    symbolic link. Raises ``ProjectError`` if ``folder`` is a project already or is not a
    folder, and ``OutputError`` (etlc.codegen.output) if a file cannot be written.
    """
    root = Path(os.path.abspath(folder))
    if os.path.lexists(root) and not root.is_dir():
        raise ProjectError(root, "exists and is not a folder")
    if root.is_dir() and _project_in(root) is not None:
        raise ProjectError(root, "is an etlc project already (it has a project file)")
    files = _scaffold_files()
    created: list[str] = []
    kept: list[str] = []
    for name in sorted(files):
        _refuse_links(root, name)
        (kept if os.path.lexists(root / name) else created).append(name)
    write([Output(root / name, files[name]) for name in created])
    return Scaffold(root, tuple(created), tuple(kept))


def _scaffold_files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in sorted(_TEMPLATE.rglob("*")):
        if path.is_file():
            name = path.relative_to(_TEMPLATE).as_posix()
            files[_RENAMED.get(name, name)] = path.read_bytes()
    for schema in _EDITOR_SCHEMAS:
        shipped = schema_path(schema)
        if shipped.is_file():
            files[f"schemas/{schema}"] = shipped.read_bytes()
    return files


def _refuse_links(root: Path, name: str) -> None:
    """The writer refuses a link as the file or its folder; a link further up inside the
    project (``pipelines`` -> elsewhere) would still lead the file out of it."""
    inside = root
    for part in name.split("/"):
        inside = inside / part
        if inside.is_symlink():
            raise ProjectError(inside, "is a symbolic link; etlc init does not write through links")
