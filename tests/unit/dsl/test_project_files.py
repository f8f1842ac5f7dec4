"""Files a definition brings along, read as untrusted input: bounded in size, regular files only,
and confined to the folders allowed (no absolute path, `..`, symlink leaving the folder)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from etlc.dsl.checker import CheckOptions, check_file
from etlc.dsl.diagnostics import Diagnostic
from etlc.dsl.project_files import (
    MAX_FILE_BYTES,
    FileTooLargeError,
    NotRegularFileError,
    ProjectFileError,
    decode_json,
    find,
    name_problem,
    read_bounded,
    read_json,
    read_project_file,
)

SECRET = "s3cr3t-canary-7f1d"
ORDER = {
    "type": "record",
    "name": "order",
    "fields": [{"name": "order_id", "type": "long"}, {"name": "amount", "type": "double"}],
}


@pytest.mark.parametrize(
    "name",
    [
        "order.avsc",
        "sales/order.avsc",
        "com.example.Steps$Inner.json",
        "a-b_c.1.avsc",
    ],
)
def test_plain_relative_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("/etc/passwd.avsc", "absolute"),
        ("../../../etc/passwd.avsc", "`..`"),
        ("sales/../../x.avsc", "`..`"),
        ("sales//order.avsc", "empty"),
        ("./order.avsc", "empty or `.`"),
        ("sales\\order.avsc", "backslash"),
        ("order.avsc\x00.json", "U+0000"),
        ("order\n.avsc", "U+000A"),
        ("order\x1b[2J.avsc", "U+001B"),
        ("order\x85.avsc", "U+0085"),
        (".hidden.avsc", "plain file name"),
        ("ordér.avsc", "plain file name"),
        ("a b.avsc", "plain file name"),
        ("/".join(["d"] * 9) + "/x.avsc", "more than"),
        ("x" * 300 + ".avsc", "plain file name"),
    ],
)
def test_names_that_could_leave_the_folder_are_refused(name: str, why: str) -> None:
    problem = name_problem(name)
    assert problem is not None and why in problem
    with pytest.raises(ProjectFileError) as raised:
        find(name, [Path("/nonexistent")])
    assert raised.value.code == "E214"


def test_find_looks_in_order_and_needs_the_suffix(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    (second / "sales").mkdir(parents=True)
    first.mkdir()
    (second / "sales" / "order.avsc").write_text("{}")
    assert (
        find("sales/order.avsc", [first, second], suffix=".avsc")
        == (second / "sales" / "order.avsc").resolve()
    )
    assert find("nope.avsc", [first, second]) is None
    with pytest.raises(ProjectFileError) as raised:
        find("sales/order.json", [first, second], suffix=".avsc")
    assert raised.value.code == "E214"


def test_a_symlink_leaving_the_folder_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "schemas", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    (outside / "x.avsc").write_text(SECRET)
    (folder / "out.avsc").symlink_to(outside / "x.avsc")
    (folder / "sub").symlink_to(outside, target_is_directory=True)
    (folder / "dangling.avsc").symlink_to("/nonexistent/x.avsc")
    for name in ("out.avsc", "sub/x.avsc", "dangling.avsc"):
        with pytest.raises(ProjectFileError) as raised:
            find(name, [folder])
        assert raised.value.code == "E214" and SECRET not in raised.value.message


def test_a_symlink_inside_the_folder_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real.avsc").write_text("{}")
    (tmp_path / "alias.avsc").symlink_to("real.avsc")
    assert find("alias.avsc", [tmp_path]) == (tmp_path / "real.avsc").resolve()


def test_reading_a_symlink_put_in_place_of_a_found_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.avsc").symlink_to("/etc/hostname")
    with pytest.raises(ProjectFileError) as raised:
        read_project_file(tmp_path / "x.avsc", "`x.avsc`")
    assert raised.value.code == "E214" and "symbolic link" in raised.value.message


def test_reads_are_bounded(tmp_path: Path) -> None:
    exact = tmp_path / "exact.json"
    exact.write_bytes(b" " * MAX_FILE_BYTES)
    assert len(read_bounded(exact)) == MAX_FILE_BYTES
    over = tmp_path / "over.json"
    over.write_bytes(b" " * (MAX_FILE_BYTES + 1))
    with pytest.raises(FileTooLargeError):
        read_bounded(over)
    with pytest.raises(ProjectFileError) as raised:
        read_json(over, "`over.json`")
    assert raised.value.code == "E005" and "1 MiB" in raised.value.message


def test_fifos_directories_and_devices_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.avsc"
    os.mkfifo(fifo)  # no writer: opening it for reading without O_NONBLOCK would hang
    with pytest.raises(NotRegularFileError) as raised:
        read_bounded(fifo)
    assert raised.value.kind == "a FIFO"
    with pytest.raises(NotRegularFileError):
        read_bounded(tmp_path)
    with pytest.raises(ProjectFileError) as refused:
        read_json(Path("/dev/zero"), "`zero`")
    assert refused.value.code == "E214" and "device" in refused.value.message


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"a": NaN}', "E007"),
        ('{"a": -Infinity}', "E007"),
        ('{"a": 1e400}', "E007"),
        ('{"a": 99999999999999999999}', "E007"),
        ('{"a": "x\\u0000"}', "E006"),
        ('{"\\ud800": 1}', "E006"),
        ("[" * 200 + "]" * 200, None),
        ("[" * 100_000 + "]" * 100_000, None),  # json.loads itself recurses
        (f'{{"a": "{SECRET}" oops}}', None),
        (b"\xff\xfe".decode("latin-1"), None),
    ],
)
def test_values_no_target_takes_are_refused(text: str, code: str | None) -> None:
    with pytest.raises(ProjectFileError) as raised:
        decode_json(text.encode("latin-1" if text.startswith("\xff") else "utf-8"), "`x`")
    assert raised.value.code == code
    assert SECRET not in raised.value.message  # what is wrong and where, never the text


# --- through the checker -----------------------------------------------------------------


def project(tmp_path: Path, schema: str = "order.avsc") -> Path:
    """A tiny project: pipelines/p.json, schemas/avro/order.avsc, pipelines/env/dev.json."""
    (tmp_path / "schemas" / "avro").mkdir(parents=True)
    (tmp_path / "schemas" / "avro" / "order.avsc").write_text(json.dumps(ORDER))
    (tmp_path / "pipelines" / "env").mkdir(parents=True)
    (tmp_path / "pipelines" / "env" / "dev.json").write_text('{"variables": {"out": "/o"}}')
    doc: dict[str, Any] = {
        "name": "p",
        "extract": [{"id": "o", "type": "files", "path": "/d", "format": "csv", "schema": schema}],
        "load": [
            {"input": "o", "type": "files", "path": "${out}", "format": "csv", "mode": "append"}
        ],
    }
    path = tmp_path / "pipelines" / "p.json"
    path.write_text(json.dumps(doc))
    return path


def codes(path: Path, options: CheckOptions | None = None) -> list[Diagnostic]:
    return [d for d in check_file(path, options).diagnostics if d.is_error]


def test_the_default_folders_find_the_projects_schemas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert codes(project(tmp_path)) == []


@pytest.mark.parametrize(
    "schema",
    ["../../../etc/passwd.avsc", "/etc/passwd.avsc", "avro/../../pipelines/p.avsc"],
)
def test_schema_references_leaving_the_folders_are_e214(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, schema: str
) -> None:
    monkeypatch.chdir(tmp_path)
    found = codes(project(tmp_path, schema))
    assert [d.code for d in found] == ["E214"]
    assert found[0].param("schema") == schema


def test_a_symlinked_avsc_is_e214_and_its_text_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"type": "record", "name": SECRET, "fields": []}))
    path = project(tmp_path, "leak.avsc")
    (tmp_path / "schemas" / "avro" / "leak.avsc").symlink_to(secret)
    found = codes(path)
    assert [d.code for d in found] == ["E214"]
    assert all(SECRET not in d.message + d.hint for d in found)


def test_an_avsc_that_is_not_json_never_echoes_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = project(tmp_path)
    (tmp_path / "schemas" / "avro" / "order.avsc").write_text(f"root:x:0:0:{SECRET}:/root")
    found = codes(path)
    assert [d.code for d in found] == ["E205"]
    assert SECRET not in found[0].message and "line 1" in found[0].message


def test_a_huge_avsc_is_e005(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = project(tmp_path)
    (tmp_path / "schemas" / "avro" / "order.avsc").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    assert [d.code for d in codes(path)] == ["E005"]


def test_environment_files_are_confined_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = project(tmp_path)
    env = tmp_path / "pipelines" / "env"
    outside = tmp_path / "creds.json"
    outside.write_text(json.dumps({"variables": {"out": SECRET}}))
    (env / "prod.json").symlink_to(outside)
    found = codes(path)
    assert "E214" in [d.code for d in found]
    assert all(SECRET not in d.message for d in found)
    (env / "prod.json").unlink()
    (env / "big.json").write_bytes(b" " * (MAX_FILE_BYTES + 1))
    assert "E005" in [d.code for d in codes(path)]


def test_a_definition_file_over_the_limit_is_e005_and_a_fifo_e001(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    big.write_bytes(b"{" + b" " * MAX_FILE_BYTES + b"}")
    (only,) = check_file(big).diagnostics
    assert only.code == "E005" and only.param("limit") == str(MAX_FILE_BYTES)
    fifo = tmp_path / "p.json"
    os.mkfifo(fifo)
    (refused,) = check_file(fifo).diagnostics
    assert refused.code == "E001" and "FIFO" in refused.message


def _outside_schemas(tmp_path: Path) -> Path:
    """A folder outside the project holding the schema the project's definition names."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "order.avsc").write_text(json.dumps(dict(ORDER, name=SECRET)))
    return outside


@pytest.mark.parametrize("linked", ["schemas/avro", "schemas"])
def test_a_schema_folder_linked_out_of_the_project_is_e214(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linked: str
) -> None:
    root = tmp_path / "project"
    path = project(root)
    outside = _outside_schemas(tmp_path)
    monkeypatch.chdir(tmp_path)  # not the project: only the project's own folders apply
    target = root / linked
    for p in sorted(target.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    target.rmdir()
    if linked == "schemas":
        (outside / "avro").mkdir()
        (outside / "avro" / "order.avsc").write_text((outside / "order.avsc").read_text())
    target.symlink_to(outside)
    found = codes(path)
    assert [d.code for d in found] == ["E214"]
    assert "leaves the project folder" in found[0].message
    assert all(SECRET not in d.message + d.hint for d in found)


def test_a_definition_that_is_a_symlink_or_in_a_linked_folder_is_e214(tmp_path: Path) -> None:
    root = tmp_path / "project"
    path = project(root)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.json").write_text('{"token": "' + SECRET + '"')
    link = root / "pipelines" / "leak.json"
    link.symlink_to(elsewhere / "secret.json")
    [found] = check_file(link).diagnostics
    assert found.code == "E214" and "is a symbolic link" in found.message
    (root / "linked").symlink_to(elsewhere)
    [found] = check_file(root / "linked" / "secret.json").diagnostics
    assert found.code == "E214" and "symbolic link out of the project" in found.message
    assert check_file(path).ok
