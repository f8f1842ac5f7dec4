"""Confined writes: generated files go into the output folder and never through a link.

The tests run as root on these machines, where permissions stop nothing: an unwritable place
is a path under a regular file, or under /proc, which no one can create files in.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etlc.codegen.output import Output, OutputError, write


def outputs(folder: Path) -> list[Output]:
    return [
        Output(folder / "p.py", b"print('driver')\n"),
        Output(folder / "p.submit.sh", b"#!/usr/bin/env bash\n", executable=True),
    ]


def test_writes_modes_and_skips_what_is_unchanged(tmp_path: Path) -> None:
    out = outputs(tmp_path / "new" / "gen")
    assert write(out) == [o.path for o in out]  # the folder is created
    assert (out[0].path.stat().st_mode & 0o777, out[1].path.stat().st_mode & 0o777) == (
        0o644,
        0o755,
    )
    assert write(out) == []
    out[1].path.chmod(0o644)  # a lost exec bit is a change
    assert write(out) == [out[1].path]
    assert sorted(p.name for p in (tmp_path / "new" / "gen").iterdir()) == ["p.py", "p.submit.sh"]


def test_a_symlink_in_place_of_an_output_is_refused_and_its_target_untouched(
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    victim.chmod(0o600)
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "p.submit.sh").symlink_to(victim)
    with pytest.raises(OutputError, match="symbolic link"):
        write(outputs(gen))
    assert victim.read_bytes() == b"precious" and victim.stat().st_mode & 0o777 == 0o600
    assert not (gen / "p.py").exists()  # every target is checked before any is written


def test_a_dangling_symlink_is_refused_too(tmp_path: Path) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    (gen / "p.py").symlink_to(tmp_path / "would-be-created")
    with pytest.raises(OutputError, match="symbolic link"):
        write(outputs(gen))
    assert not (tmp_path / "would-be-created").exists()


def test_a_symlink_at_the_old_temp_name_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    gen = tmp_path / "gen"
    gen.mkdir()
    for name in ("p.py.tmp", "p.submit.sh.tmp"):
        (gen / name).symlink_to(victim)
    out = outputs(gen)
    assert write(out) == [o.path for o in out]
    assert victim.read_bytes() == b"precious"
    assert out[0].path.read_bytes() == out[0].content and not out[0].path.is_symlink()
    leftovers = {p.name for p in gen.iterdir()} - {"p.py", "p.submit.sh"}
    assert leftovers == {"p.py.tmp", "p.submit.sh.tmp"}  # the planted links, nothing of ours


def test_a_hard_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    gen = tmp_path / "gen"
    gen.mkdir()
    os.link(victim, gen / "p.py")
    write(outputs(gen))
    assert victim.read_bytes() == b"precious"
    assert (gen / "p.py").read_bytes() == b"print('driver')\n"


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_something_else_in_place_of_an_output_is_refused(tmp_path: Path, kind: str) -> None:
    gen = tmp_path / "gen"
    gen.mkdir()
    if kind == "folder":
        (gen / "p.py").mkdir()
    else:
        os.mkfifo(gen / "p.py")  # reading it would hang: it must not be opened blocking
    with pytest.raises(OutputError, match="not a regular file"):
        write(outputs(gen))


def test_an_output_folder_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir()
    (tmp_path / "gen").symlink_to(real)
    with pytest.raises(OutputError, match="output folder is a symbolic link"):
        write(outputs(tmp_path / "gen"))
    assert list(real.iterdir()) == []


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("a-file", "not a folder"),
        ("a-file/sub", "cannot create the output folder"),
        ("/proc/version/sub", "cannot create the output folder"),
        ("/proc/etlc-cannot-be-here", "cannot create the output folder"),
    ],
)
def test_an_impossible_output_folder_is_one_error(tmp_path: Path, where: str, why: str) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(OutputError, match=why) as caught:
        write(outputs(tmp_path / where))
    assert "\n" not in str(caught.value)
    assert (tmp_path / "a-file").read_text() == "x"


def test_an_error_names_the_path_escaped(tmp_path: Path) -> None:
    (tmp_path / "x\x1b[2J").write_text("x")
    with pytest.raises(OutputError) as caught:
        write(outputs(tmp_path / "x\x1b[2J"))
    assert "\x1b" not in str(caught.value) and "x\\x1b[2J" in str(caught.value)


def test_one_path_with_two_contents_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="two different outputs"):
        write([Output(tmp_path / "a", b"1"), Output(tmp_path / "a", b"2")])
