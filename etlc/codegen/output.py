"""Write generated files into the output folder, never through a link.

The output folder may come from a pull request like everything else in the checkout, so a
link planted there must not turn `etlc compile` into a write (or chmod) of another file.
Every file is written to a fresh temp file made with ``O_CREAT|O_EXCL|O_NOFOLLOW`` inside the
folder, synced, given its mode and renamed over the target; all of it relative to one
descriptor of the folder, opened with ``O_NOFOLLOW``, so the folder cannot be swapped midway.

A link, or anything but a regular file, where an output goes is an error, and so is an
output folder that is itself a link (the caller may pass the link's target with ``-o``).
Folders above it are the user's own path and are followed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from etlc.printable import printable


@dataclass(frozen=True)
class Output:
    path: Path
    content: bytes
    executable: bool = False

    @property
    def mode(self) -> int:
        return 0o755 if self.executable else 0o644


class OutputError(Exception):
    """An output could not be written where it belongs; the message is one line."""


def write(outputs: list[Output]) -> list[Path]:
    """Write outputs, replacing each file atomically; returns the paths that changed.

    Every target is checked before the first is written, so a refused one leaves the folder
    as it was; files already equal to their output (bytes and mode) are not touched.
    """
    unique: dict[Path, Output] = {}
    for out in outputs:  # plans compiled together share the runtime zip
        if unique.setdefault(out.path, out) != out:
            raise OutputError(f"{_shown(out.path)}: two different outputs for one file")
    opened: dict[Path, int] = {}
    try:
        for path in unique:
            if path.parent not in opened:
                opened[path.parent] = _open_folder(path.parent)
        current = {p: _existing(opened[p.parent], out) for p, out in unique.items()}
        changed = [p for p, out in unique.items() if current[p] != (out.content, out.mode)]
        for path in changed:
            _replace(opened[path.parent], unique[path])
        for fd in opened.values():
            # The renames survive a crash too; a file system that cannot sync a folder
            # (EINVAL) still has every file whole.
            with contextlib.suppress(OSError):
                os.fsync(fd)
        return changed
    finally:
        for fd in opened.values():
            os.close(fd)


def _shown(path: Path) -> str:
    return printable(str(path))


def _open_folder(folder: Path) -> int:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputError(_not_a_folder(folder)) from None
    except OSError as exc:
        raise OutputError(
            f"{_shown(folder)}: cannot create the output folder: {_why(exc)}"
        ) from None
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OutputError(_not_a_folder(folder)) from None
        raise OutputError(f"{_shown(folder)}: cannot open the output folder: {_why(exc)}") from None


def _not_a_folder(folder: Path) -> str:
    if folder.is_symlink():
        return (
            f"{_shown(folder)}: the output folder is a symbolic link; etlc does not write "
            "through links (remove it, or pass the folder it points to with -o)"
        )
    return f"{_shown(folder)}: the output folder exists and is not a folder"


def _existing(folder: int, out: Output) -> tuple[bytes, int] | None:
    """What the target holds now (content, mode), None if absent; refuses a link or a
    non-regular file, and never reads through one."""
    name = out.path.name
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder
        )
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OutputError(
                f"{_shown(out.path)}: is a symbolic link; etlc does not write through links "
                "(remove it and compile again)"
            ) from None
        raise OutputError(f"{_shown(out.path)}: cannot read it: {_why(exc)}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise OutputError(f"{_shown(out.path)}: exists and is not a regular file")
    with os.fdopen(fd, "rb") as f:
        if info.st_size != len(out.content):
            return b"", stat.S_IMODE(info.st_mode)
        return f.read(len(out.content) + 1), stat.S_IMODE(info.st_mode)


def _replace(folder: int, out: Output) -> None:
    name = out.path.name
    tmp, fd = _temp_file(folder, out)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(out.content)
            f.flush()
            os.fchmod(f.fileno(), out.mode)
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder)
        raise OutputError(f"{_shown(out.path)}: cannot write it: {_why(exc)}") from None


def _temp_file(folder: int, out: Output) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for tmp in _temp_names(out.path.name):
        try:
            return tmp, os.open(tmp, flags, 0o600, dir_fd=folder)
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{_shown(out.path)}: cannot write it: {_why(exc)}") from None
    raise OutputError(f"{_shown(out.path)}: cannot make a temporary file beside it")


def _temp_names(name: str) -> Iterator[str]:
    for _ in range(100):
        yield f".{name}.{secrets.token_hex(8)}.tmp"


def _why(exc: OSError) -> str:
    return printable(exc.strerror or type(exc).__name__)
