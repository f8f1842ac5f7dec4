"""Backends behind one interface: the file vault's writes, locking and rotation; env vars."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from etlc.vault import (
    EnvVault,
    FileVault,
    MasterKey,
    Problem,
    Reference,
    Secret,
    SecretBackend,
    VaultError,
    default_path,
    open_backend,
)
from etlc.vault import file_format as fmt
from tests.unit.vault.conftest import FAST, PASSWORD

ROOT = Path(__file__).resolve().parents[3]


# --- writes ---------------------------------------------------------------------------------


def test_init_never_overwrites_a_vault(
    vault: FileVault, vault_path: Path, master: MasterKey
) -> None:
    vault.put(Reference("db", "password"), Secret("keep-me-please"))
    before = vault_path.read_bytes()
    with pytest.raises(VaultError) as info:
        FileVault.create(vault_path, master, FAST)
    assert info.value.problem is Problem.EXISTS
    assert vault_path.read_bytes() == before


def test_remove(vault: FileVault, vault_path: Path, master: MasterKey) -> None:
    vault.put(Reference("db", "password"), Secret("to-be-removed"))
    vault.put(Reference("db", "user"), Secret("stays-here"))
    vault.remove(Reference("db", "password"))
    again = FileVault(vault_path, master)
    assert again.names() == ["db#user"]
    with pytest.raises(VaultError) as info:
        again.get("db", "password")
    assert info.value.problem is Problem.MISSING_ENTRY
    assert info.value.reference == "vault://db#password"
    with pytest.raises(VaultError) as info:
        vault.remove(Reference("db", "password"))
    assert info.value.problem is Problem.MISSING_ENTRY


@pytest.mark.parametrize("value", ["", "x" * (fmt.MAX_VALUE_BYTES + 1)])
def test_empty_and_oversized_values_are_refused(vault: FileVault, value: str) -> None:
    with pytest.raises(VaultError) as info:
        vault.put(Reference("db", "password"), Secret(value))
    assert info.value.problem is Problem.BAD_VALUE


def test_a_crash_while_writing_leaves_the_old_vault(
    vault: FileVault, vault_path: Path, master: MasterKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault.put(Reference("db", "password"), Secret("before-the-crash"))
    before = vault_path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(VaultError) as info:
        vault.put(Reference("db", "user"), Secret("never-written"))
    assert info.value.problem is Problem.UNWRITABLE
    monkeypatch.undo()
    assert vault_path.read_bytes() == before
    assert sorted(p.name for p in vault_path.parent.iterdir()) == ["vault.json", "vault.json.lock"]
    assert FileVault(vault_path, master).get("db", "password").reveal() == "before-the-crash"


def test_concurrent_puts_from_two_processes_lose_nothing(
    vault: FileVault, vault_path: Path
) -> None:
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from etlc.vault import FileVault, Reference, Secret
        vault = FileVault(Path(sys.argv[1]))
        for i in range(int(sys.argv[3])):
            vault.put(Reference(sys.argv[2], f"k{i}"), Secret(f"{sys.argv[2]}-value-{i}"))
        """
    )
    env = {**os.environ, "ETLC_VAULT_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    env.pop("ETLC_VAULT_KEY_FILE", None)
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(vault_path), name, "25"], env=env)
        for name in ("alpha", "beta")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    again = FileVault(vault_path, MasterKey.from_password(PASSWORD))
    expected = sorted(f"{name}#k{i}" for name in ("alpha", "beta") for i in range(25))
    assert again.names() == expected
    assert again.get("beta", "k24").reveal() == "beta-value-24"


def test_rotate_key(vault: FileVault, vault_path: Path, master: MasterKey) -> None:
    vault.put(Reference("db", "password"), Secret("rotate-me-1"))
    vault.put(Reference("db", "user"), Secret("rotate-me-2"))
    before = json.loads(vault_path.read_text())
    new = MasterKey.from_password("a brand new master password")
    vault.rotate(new, fmt.KdfParams(n=2**11))
    after = json.loads(vault_path.read_text())
    assert after["vault_id"] == before["vault_id"]
    assert after["kdf"]["salt"] != before["kdf"]["salt"] and after["kdf"]["n"] == 2**11
    for name in ("db#password", "db#user"):
        assert after["entries"][name]["nonce"] != before["entries"][name]["nonce"]
    with pytest.raises(VaultError) as info:
        FileVault(vault_path, master).get("db", "password")
    assert info.value.problem is Problem.WRONG_KEY
    rotated = FileVault(vault_path, new)
    assert rotated.get("db", "password").reveal() == "rotate-me-1"
    assert rotated.get("db", "user").reveal() == "rotate-me-2"
    vault.put(Reference("db", "token"), Secret("after-rotation"))  # the instance follows
    assert FileVault(vault_path, new).get("db", "token").reveal() == "after-rotation"


def test_a_writer_sees_what_another_wrote_since(vault_path: Path, master: MasterKey) -> None:
    one = FileVault.create(vault_path, master, FAST)
    two = FileVault(vault_path, master)
    assert two.names() == []
    one.put(Reference("a", "k"), Secret("from-one-value"))
    two.put(Reference("b", "k"), Secret("from-two-value"))
    assert FileVault(vault_path, master).names() == ["a#k", "b#k"]


# --- the master key -------------------------------------------------------------------------


def test_master_key_from_a_password_or_a_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"0123456789abcdef-key-file-content\n")
    from_file = MasterKey.from_environment({"ETLC_VAULT_KEY_FILE": str(key_file)}, "v")
    assert from_file.material() == b"0123456789abcdef-key-file-content"
    assert "key file" in repr(from_file) and "0123" not in repr(from_file)
    from_env = MasterKey.from_environment({"ETLC_VAULT_PASSWORD": "pw-from-env"}, "v")
    assert from_env.material() == b"pw-from-env" and "pw-from-env" not in repr(from_env)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({}, Problem.NO_MASTER_KEY),
        ({"ETLC_VAULT_PASSWORD": "a", "ETLC_VAULT_KEY_FILE": "/k"}, Problem.NO_MASTER_KEY),
        ({"ETLC_VAULT_KEY_FILE": "/no/such/key"}, Problem.UNREADABLE),
        ({"ETLC_VAULT_KEY_FILE": "EMPTY"}, Problem.NO_MASTER_KEY),
    ],
)
def test_master_key_problems(
    tmp_path: Path, vault: FileVault, environ: dict[str, str], problem: Problem
) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    environ = {k: str(empty) if v == "EMPTY" else v for k, v in environ.items()}
    with pytest.raises(VaultError) as info:
        FileVault(vault.path, environ=environ).get("db", "password")
    assert info.value.problem is problem and info.value.reference == "vault://db#password"


def test_the_master_key_is_read_at_first_access_only(vault_path: Path) -> None:
    lazy = FileVault(vault_path, environ={})  # no key, no file: nothing happens yet
    with pytest.raises(VaultError):
        lazy.get("db", "password")


# --- references, backends -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "hunter2",
        "vault://",
        "vault://db",
        "vault://db#",
        "vault://#k",
        "vault://db#k#x",
        "vault://d b#k",
        "vault://db#k/x",
        "VAULT://db#k",
        "vault://" + "d" * 300 + "#k",
    ],
)
def test_malformed_references_are_refused_without_echo(vault: FileVault, text: str) -> None:
    with pytest.raises(VaultError) as info:
        vault.resolve(text)
    assert info.value.problem is Problem.BAD_REFERENCE
    assert text not in str(info.value) or text == "vault://"


def test_reference_forms() -> None:
    ref = Reference.parse("vault://db/crm#password", "v")
    assert (ref.path, ref.key, ref.name, str(ref)) == (
        "db/crm",
        "password",
        "db/crm#password",
        "vault://db/crm#password",
    )
    assert Reference.entry("db/crm#password", "v") == ref == Reference.entry(str(ref), "v")


def test_env_vault() -> None:
    environ = {"ETLC_SECRET_DB_CRM_PASSWORD": "from-ci-secret", "CI_DB_CRM_X_Y": "other"}
    backend = EnvVault(environ)
    assert backend.resolve("vault://db/crm#password").reveal() == "from-ci-secret"
    assert EnvVault(environ, prefix="CI_").get("db/crm", "x.y").reveal() == "other"
    with pytest.raises(VaultError) as info:
        backend.get("db/crm", "user")
    assert info.value.problem is Problem.MISSING_ENTRY
    assert "ETLC_SECRET_DB_CRM_USER" in str(info.value)
    assert info.value.vault == "environment variables"
    with pytest.raises(VaultError):
        EnvVault(environ, prefix="lower")


def test_open_backend_picks_by_kind(tmp_path: Path) -> None:
    file_backend = open_backend({"path": str(tmp_path / "v.json")}, {})
    assert isinstance(file_backend, FileVault) and file_backend.path == tmp_path / "v.json"
    overridden = open_backend({"backend": "file", "path": "x"}, {"ETLC_VAULT_FILE": "y.json"})
    assert isinstance(overridden, FileVault) and overridden.path == Path("y.json")
    env_backend = open_backend({"backend": "env", "prefix": "CI_"}, {"CI_A_B": "v-a-b-value"})
    assert env_backend.resolve("vault://a#b").reveal() == "v-a-b-value"
    assert default_path({}) == Path(".etlc/vault.json")
    for options, word in [
        ({"backend": "hashicorp"}, "unknown vault backend"),
        ({"backend": "env", "path": "x"}, "unknown options"),
    ]:
        with pytest.raises(VaultError, match=word) as info:
            open_backend(options, {})
        assert info.value.problem is Problem.BAD_CONFIG


def test_a_new_backend_is_one_class() -> None:
    class MemoryVault(SecretBackend):
        kind = "memory-test"

        def __init__(self, values: Mapping[str, str]) -> None:
            self.values = values

        @classmethod
        def configure(cls, options: Mapping[str, str], environ: Mapping[str, str]) -> MemoryVault:
            return cls({"db#password": "in-memory-value"})

        @property
        def location(self) -> str:
            return "memory"

        def get(self, path: str, key: str) -> Secret:
            return Secret(self.values[f"{path}#{key}"])

    try:
        backend = open_backend({"backend": "memory-test"}, {})
        assert backend.resolve("vault://db#password").reveal() == "in-memory-value"
    finally:
        SecretBackend._kinds.pop("memory-test")
