"""Reading the files a definition brings along, as untrusted input: bounded and confined.

A definition, the ``.avsc`` schemas and JVM options schemas it names and the environment files
beside it arrive in a pull request. So every file the compiler reads is read through here: at
most ``MAX_FILE_BYTES`` and only if it is a regular file (a FIFO or a device must not hang lint
or fill memory). A file a definition *names* must also stay inside the folders the caller
allows: the name is a plain relative name (no absolute path, ``..``, backslash or control
character), and the file's real path, symlinks resolved, is inside the folder it was found in.

Messages say what is wrong and where, never what the file holds: a refused file may be anyone's.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from etlc.dsl.tree import MAX_DEPTH, refused_scalar

MAX_FILE_BYTES = 1 << 20
LIMIT_TEXT = "1 MiB"

# One path component: no leading dot (hidden files, `.` and `..`), a conservative character
# set, and within NAME_MAX. `$` is for JVM nested classes (`Outer$Inner.json`).
_COMPONENT = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_.$-]{0,254}")
_MAX_COMPONENTS = 8

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


class NotRegularFileError(OSError):
    """The path is a directory, FIFO, device, socket (or, not followed, a symlink)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"is {kind}, not a regular file")
        self.kind = kind


class FileTooLargeError(OSError):
    def __init__(self) -> None:
        super().__init__(f"is larger than the {LIMIT_TEXT} limit")


class ProjectFileError(Exception):
    """A referenced file that cannot be used. ``code`` is E214 (outside the folders, bad
    name, not a regular file), E005 (too large), E006/E007 (a value no target takes), or
    None when the caller's own code fits (unreadable, not JSON)."""

    def __init__(self, code: str | None, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint


def read_bounded(path: Path, *, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``.

    Raises ``NotRegularFileError``, ``FileTooLargeError`` or the ``OSError`` of opening it.
    The size is checked on the open file and again while reading, so a file that grows
    meanwhile is still refused rather than read whole.
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        # O_NOFOLLOW on a symlink fails with ELOOP; say what it is rather than "too many
        # levels of symbolic links".
        if not follow_symlinks and os.path.islink(path):
            raise NotRegularFileError("a symbolic link") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((k for test, k in _KINDS if test(info.st_mode)), "not a regular file")
            raise NotRegularFileError(kind)
        if info.st_size > MAX_FILE_BYTES:
            raise FileTooLargeError
        chunks: list[bytes] = []
        left = MAX_FILE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    if left <= 0:
        raise FileTooLargeError
    return b"".join(chunks)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file inside a folder (None if it can): it must be a relative
    path of plain components separated by ``/``."""
    if not name:
        return "is empty"
    bad = next((c for c in name if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F), None)
    if bad is not None:
        return f"holds the control character U+{ord(bad):04X}"
    if "\\" in name:
        return "holds a backslash; separate folders with `/`"
    if name.startswith("/"):
        return "is an absolute path"
    parts = name.split("/")
    if any(p == ".." for p in parts):
        return "has a `..` component"
    if any(p in ("", ".") for p in parts):
        return "has an empty or `.` component"
    if len(parts) > _MAX_COMPONENTS:
        return f"has more than {_MAX_COMPONENTS} folders"
    if not all(_COMPONENT.fullmatch(p) for p in parts):
        return "is not a plain file name (letters, digits, `_`, `-`, `.`, `$`; no leading `.`)"
    return None


def find(
    name: str, folders: Sequence[Path], *, suffix: str = "", roots: Sequence[Path] = ()
) -> Path | None:
    """The first of ``folders`` holding the file ``name`` (None if none does).

    Raises ``ProjectFileError`` (E214) for a name that is not a plain relative name, for a
    file whose real path (symlinks resolved) leaves the folder it was found in, and for a
    folder inside one of ``roots`` (the project's folders) whose real path leaves that root:
    a committed symlink in place of ``schemas/avro`` must not make a folder elsewhere part of
    the project.
    """
    shown = f"`{name}`" if len(name) <= 80 else f"`{name[:77]}...`"
    why = name_problem(name)
    if why is None and suffix and not name.endswith(suffix):
        why = f"does not end in `{suffix}`"
    if why is not None:
        raise ProjectFileError(
            "E214",
            f"{shown} {why}",
            f"name a file inside {_listed(folders)} by its plain relative name",
        )
    for folder in folders:
        candidate = folder / name
        if not os.path.lexists(candidate):
            continue
        real_folder = Path(os.path.realpath(folder))
        _check_root(folder, real_folder, roots)
        real = Path(os.path.realpath(candidate))
        if not real.is_relative_to(real_folder):
            raise ProjectFileError(
                "E214",
                f"`{name}` in {folder} is a symbolic link that leaves that folder",
                "copy the file into the folder instead of linking to it",
            )
        return real
    return None


def _check_root(folder: Path, real_folder: Path, roots: Sequence[Path]) -> None:
    absolute = Path(os.path.abspath(folder))
    for given in roots:
        root = Path(os.path.abspath(given))
        if not absolute.is_relative_to(root):
            continue
        if not real_folder.is_relative_to(os.path.realpath(root)):
            raise ProjectFileError(
                "E214",
                f"{folder} is, or lies in, a symbolic link that leaves the project folder {root}",
                "keep the project's files in the project: copy them instead of linking a folder",
            )
        return


def leaves_its_project(definition: Path) -> bool:
    """Whether the folder of ``definition`` is, or lies in, a symbolic link that leaves the
    folder above it (the project's, which holds ``pipelines/`` and ``schemas/``)."""
    folder = Path(os.path.abspath(definition)).parent
    real = Path(os.path.realpath(folder))
    return not real.is_relative_to(os.path.realpath(folder.parent))


def read_json(path: Path, shown: str) -> Any:
    """The JSON value of a project file found by ``find`` (``shown`` names it in messages).

    The final component is not followed if it is (now) a symlink: ``find`` returned the real
    path, so a symlink there appeared since. Values are held to what the definition's own are:
    no NUL or lone surrogate (E006), no NaN, infinity or integer beyond 64 bits (E007), at most
    ``MAX_DEPTH`` levels of nesting.
    """
    return decode_json(read_project_file(path, shown), shown)


def read_project_file(path: Path, shown: str) -> bytes:
    """The bytes of a project file found by ``find``; ``ProjectFileError`` if refused.

    A definition may name one schema in thousands of steps: each version of a file (by its
    inode, size and modification time) is read once, and the same bytes object returned, so
    callers can cache what they make of it cheaply."""
    try:
        info = os.stat(path, follow_symlinks=False)
        return _read_once(path, (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
    except FileTooLargeError:
        raise ProjectFileError(
            "E005", f"{shown} is larger than the {LIMIT_TEXT} limit", "split or shrink the file"
        ) from None
    except NotRegularFileError as exc:
        raise ProjectFileError("E214", f"{shown} is {exc.kind}, not a regular file") from None
    except OSError as exc:
        raise ProjectFileError(None, f"{shown} cannot be read ({_reason(exc)})") from None


@lru_cache(maxsize=16)
def _read_once(path: Path, version: tuple[int, int, int, int]) -> bytes:
    return read_bounded(path, follow_symlinks=False)


def decode_json(data: bytes, shown: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ProjectFileError(None, f"{shown} is not UTF-8 text (line {line})") from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        # `msg` is the decoder's fixed wording, never the text it choked on.
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ProjectFileError(None, f"{shown} is not valid JSON ({exc.msg} at {where})") from None
    except _ConstantError as exc:
        raise ProjectFileError("E007", f"{shown} holds `{exc}`, which no target can take") from None
    except RecursionError:
        raise ProjectFileError(None, f"{shown} is nested too deeply") from None
    _check_values(value, shown)
    return value


class _ConstantError(ValueError):
    pass


def _no_constant(word: str) -> Any:
    raise _ConstantError(word)


def _check_values(root: Any, shown: str) -> None:
    """Depth and scalar checks, without recursion: the value may be 1 MiB of brackets."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ProjectFileError(None, f"{shown} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_scalar(key, shown)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        else:
            _check_scalar(value, shown)


def _check_scalar(value: Any, shown: str) -> None:
    refused = refused_scalar(value)
    if refused is not None:
        code, why = refused
        raise ProjectFileError(code, f"{shown}: {why}")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _listed(folders: Sequence[Path]) -> str:
    return ", ".join(str(f) for f in folders) if folders else "the project's folders"
