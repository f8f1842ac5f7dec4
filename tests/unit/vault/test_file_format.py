"""The vault file: round trips, and every tamper case failing closed with the typed error."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etlc.vault import FileVault, KdfParams, MasterKey, Problem, Reference, Secret, VaultError
from etlc.vault import file_format as fmt
from tests.unit.vault.conftest import FAST, PASSWORD

VALUES = {
    "db/crm#password": "s3cr3t-crm-password",
    "db/crm#user": "etl_loader",
    "s3/raw#secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "kafka/main#sasl.password": "pässwörd with spaces & ünïcode ✓",
}


def filled(vault: FileVault) -> FileVault:
    for name, value in VALUES.items():
        vault.put(Reference.entry(name, ""), Secret(value))
    return vault


def reopen(path: Path, password: str = PASSWORD) -> FileVault:
    return FileVault(path, MasterKey.from_password(password))


def rewrite(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Edit the file's JSON and write it back canonically, as a careful attacker would."""
    doc = json.loads(path.read_text())
    change(doc)
    if isinstance(doc.get("entries"), dict):
        doc["entries"] = dict(sorted(doc["entries"].items()))
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=True) + "\n")


def assert_fails_closed(path: Path, problem: Problem, password: str = PASSWORD) -> None:
    """Every entry fails with the typed error; no secret comes out, not even a partial one."""
    vault = reopen(path, password)
    for name in VALUES:
        ref = Reference.entry(name, "")
        with pytest.raises(VaultError) as info:
            vault.get(ref.path, ref.key)
        assert info.value.problem is problem, info.value
        assert info.value.vault == str(path) and info.value.reference == str(ref)
        for value in VALUES.values():
            assert value not in str(info.value)


# --- round trips ----------------------------------------------------------------------------


def test_round_trip_through_a_fresh_instance(vault: FileVault, vault_path: Path) -> None:
    filled(vault)
    again = reopen(vault_path)
    assert again.names() == sorted(VALUES)
    for name, value in VALUES.items():
        ref = Reference.entry(name, "")
        assert again.get(ref.path, ref.key).reveal() == value
        assert again.resolve(str(ref)) == Secret(value)
    assert all(v.encode() not in vault_path.read_bytes() for v in VALUES.values())


def test_the_file_layout(vault: FileVault, vault_path: Path) -> None:
    filled(vault)
    doc = json.loads(vault_path.read_text())
    assert list(doc) == [
        "format",
        "version",
        "vault_id",
        "kdf",
        "cipher",
        "key_check",
        "entries",
        "mac",
    ]
    assert (doc["format"], doc["version"], doc["cipher"]) == ("etlc-vault", 1, "AES-256-GCM")
    assert doc["kdf"]["name"] == "scrypt" and len(base64.b64decode(doc["kdf"]["salt"])) == 16
    assert (doc["kdf"]["n"], doc["kdf"]["r"], doc["kdf"]["p"]) == (FAST.n, 8, 1)
    assert list(doc["entries"]) == sorted(VALUES)
    assert vault_path.stat().st_mode & 0o077 == 0


def test_every_write_uses_a_fresh_nonce(vault: FileVault, vault_path: Path) -> None:
    ref = Reference("db/crm", "password")
    vault.put(ref, Secret("same value"))
    first = json.loads(vault_path.read_text())["entries"][ref.name]
    vault.put(ref, Secret("same value"))
    second = json.loads(vault_path.read_text())["entries"][ref.name]
    assert first["nonce"] != second["nonce"] and first["ciphertext"] != second["ciphertext"]


def test_the_production_kdf_default(tmp_path: Path, master: MasterKey) -> None:
    path = tmp_path / "prod.json"
    FileVault.create(path, master).put(Reference("db", "password"), Secret("prod-value-1"))
    doc = json.loads(path.read_text())
    assert (doc["kdf"]["n"], doc["kdf"]["r"], doc["kdf"]["p"]) == (2**17, 8, 1)
    assert reopen(path).get("db", "password").reveal() == "prod-value-1"


def test_the_vault_is_opened_once_and_values_are_cached(vault: FileVault, vault_path: Path) -> None:
    filled(vault)
    again = reopen(vault_path)
    first = again.get("db/crm", "password")
    vault_path.write_text("gone")  # a later change to the file does not matter to this run
    assert again.get("db/crm", "password") is first
    assert again.get("db/crm", "user").reveal() == VALUES["db/crm#user"]


# --- tamper cases ---------------------------------------------------------------------------


def flip_bit(doc: dict[str, Any]) -> None:
    entry = doc["entries"]["db/crm#password"]
    raw = bytearray(base64.b64decode(entry["ciphertext"]))
    raw[3] ^= 0x01
    entry["ciphertext"] = base64.b64encode(bytes(raw)).decode()


def swap(doc: dict[str, Any]) -> None:
    e = doc["entries"]
    e["db/crm#password"], e["db/crm#user"] = e["db/crm#user"], e["db/crm#password"]


def append(doc: dict[str, Any]) -> None:
    doc["entries"]["db/zz#password"] = dict(doc["entries"]["db/crm#password"])


def drop(doc: dict[str, Any]) -> None:
    del doc["entries"]["s3/raw#secret_key"]


def new_nonce(doc: dict[str, Any]) -> None:
    doc["entries"]["db/crm#user"]["nonce"] = base64.b64encode(b"\0" * 12).decode()


def new_mac(doc: dict[str, Any]) -> None:
    doc["mac"] = base64.b64encode(b"\0" * 32).decode()


def new_salt(doc: dict[str, Any]) -> None:
    doc["kdf"]["salt"] = base64.b64encode(b"\1" * 16).decode()


def new_vault_id(doc: dict[str, Any]) -> None:
    doc["vault_id"] = "0" * 32


def weaker_kdf(doc: dict[str, Any]) -> None:
    doc["kdf"]["n"] = 2**11


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (flip_bit, Problem.TAMPERED),
        (swap, Problem.TAMPERED),
        (append, Problem.TAMPERED),
        (drop, Problem.TAMPERED),
        (new_nonce, Problem.TAMPERED),
        (new_mac, Problem.TAMPERED),
        (new_salt, Problem.WRONG_KEY),
        (new_vault_id, Problem.WRONG_KEY),
        (weaker_kdf, Problem.WRONG_KEY),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_tampering_fails_closed(
    vault: FileVault, vault_path: Path, change: Callable[[dict[str, Any]], None], problem: Problem
) -> None:
    filled(vault)
    rewrite(vault_path, change)
    assert_fails_closed(vault_path, problem)


def test_swapped_entries_fail_on_their_own_even_with_a_valid_mac(
    vault: FileVault, vault_path: Path, master: MasterKey
) -> None:
    """The associated data binds a ciphertext to its name: the MAC is not the only guard."""
    filled(vault)
    doc = fmt.decode(vault_path.read_bytes(), "v")
    keys = fmt.Keys.derive(master.material(), doc.header.kdf, doc.header.salt)
    entries = dict(doc.entries)
    entries["db/crm#password"], entries["db/crm#user"] = (
        entries["db/crm#user"],
        entries["db/crm#password"],
    )
    vault_path.write_bytes(fmt.encode(fmt.sign(doc.header, entries, keys)))
    again = reopen(vault_path)
    for key in ("password", "user"):
        with pytest.raises(VaultError) as info:
            again.get("db/crm", key)
        assert info.value.problem is Problem.TAMPERED
    assert again.get("s3/raw", "secret_key").reveal() == VALUES["s3/raw#secret_key"]


def test_an_entry_from_another_vault_does_not_decrypt(tmp_path: Path, master: MasterKey) -> None:
    one = filled(FileVault.create(tmp_path / "one.json", master, FAST))
    FileVault.create(tmp_path / "two.json", master, FAST)
    one_doc = fmt.decode((tmp_path / "one.json").read_bytes(), "one")
    two_doc = fmt.decode((tmp_path / "two.json").read_bytes(), "two")
    keys = fmt.Keys.derive(master.material(), two_doc.header.kdf, two_doc.header.salt)
    assert one.names()
    moved = fmt.sign(two_doc.header, dict(one_doc.entries), keys)
    (tmp_path / "two.json").write_bytes(fmt.encode(moved))
    assert_fails_closed(tmp_path / "two.json", Problem.TAMPERED)


@pytest.mark.parametrize("keep", [0, 1, 50, 300, -2, -1])
def test_a_truncated_file_fails_closed(vault: FileVault, vault_path: Path, keep: int) -> None:
    filled(vault)
    data = vault_path.read_bytes()
    vault_path.write_bytes(data[:keep])
    assert_fails_closed(vault_path, Problem.MALFORMED)


def test_a_wrong_password_fails_closed_and_is_named_as_such(
    vault: FileVault, vault_path: Path
) -> None:
    filled(vault)
    assert_fails_closed(vault_path, Problem.WRONG_KEY, password="Tr0ub4dor&3")
    with pytest.raises(VaultError) as info:
        reopen(vault_path, "Tr0ub4dor&3").names()
    assert "wrong master key" in str(info.value) and "Tr0ub4dor" not in str(info.value)


@pytest.mark.parametrize(
    "kdf",
    [(2**30, 8, 1), (2**21, 8, 1), (2**9, 8, 1), (3 * 2**12, 8, 1), (2**20, 32, 1), (2**17, 8, 16)],
)
def test_absurd_kdf_parameters_are_refused_before_scrypt_runs(
    monkeypatch: pytest.MonkeyPatch, vault: FileVault, vault_path: Path, kdf: tuple[int, int, int]
) -> None:
    n, r, p = kdf
    filled(vault)

    def absurd(doc: dict[str, Any]) -> None:
        doc["kdf"].update(n=n, r=r, p=p)

    rewrite(vault_path, absurd)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("scrypt ran with parameters read from a hostile file")

    monkeypatch.setattr(fmt, "Scrypt", never)
    assert_fails_closed(vault_path, Problem.MALFORMED)


def non_canonical(data: bytes) -> list[bytes]:
    doc = json.loads(data)
    text = data.decode()
    salt = doc["kdf"]["salt"]
    # The same 16 bytes, spelled with non-zero padding bits in the last base64 character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    odd_salt = salt[:-3] + alphabet[alphabet.index(salt[-3]) ^ 1] + salt[-2:]
    assert base64.b64decode(odd_salt) == base64.b64decode(salt)
    reordered = {"version": doc["version"], **{k: v for k, v in doc.items() if k != "version"}}
    return [
        json.dumps(doc, separators=(",", ":")).encode(),  # compact
        json.dumps(reordered, indent=2).encode() + b"\n",  # member order
        text.replace("\n", "\r\n").encode(),  # line endings
        data.rstrip(b"\n"),  # no final newline
        data + b"\n",  # an extra one
        text.replace('"version": 1', '"version": 1.0').encode(),  # a float
        text.replace(doc["vault_id"], doc["vault_id"].upper()).encode(),  # hex case
        text.replace(salt, odd_salt).encode(),  # base64 padding bits
        text.replace('"cipher"', '"\\u0063ipher"').encode(),  # an escaped member name
        text.replace(
            '"format": "etlc-vault",', '"format": "etlc-vault", "format": "etlc-vault",'
        ).encode(),  # a duplicate member
        b"\xef\xbb\xbf" + data,  # a byte order mark
    ]


def test_non_canonical_encodings_fail_closed(vault: FileVault, vault_path: Path) -> None:
    filled(vault)
    original = vault_path.read_bytes()
    variants = non_canonical(original)
    assert len(set(variants)) == len(variants) and original not in variants
    for variant in variants:
        vault_path.write_bytes(variant)
        assert_fails_closed(vault_path, Problem.MALFORMED)


def test_an_unknown_version_is_unsupported(vault: FileVault, vault_path: Path) -> None:
    filled(vault)
    rewrite(vault_path, lambda doc: doc.update(version=2))
    assert_fails_closed(vault_path, Problem.UNSUPPORTED)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(extra=1),
        lambda d: d.pop("key_check"),
        lambda d: d.update(cipher="ChaCha20"),
        lambda d: d["kdf"].update(name="argon2"),
        lambda d: d["kdf"].update(n="131072"),
        lambda d: d["kdf"].update(n=True),
        lambda d: d.update(vault_id="zz" * 16),
        lambda d: d.update(entries=[]),
        lambda d: d["entries"].update({"no-hash-here": d["entries"]["db/crm#user"]}),
        lambda d: d["entries"].update({"vault://db/x#y": d["entries"]["db/crm#user"]}),
        lambda d: d["entries"]["db/crm#user"].update(nonce="AAAA"),
        lambda d: d["entries"]["db/crm#user"].update(ciphertext="AAAA"),
        lambda d: d["entries"]["db/crm#user"].update(ciphertext="not base64!"),
        lambda d: d.update(mac=None),
    ],
)
def test_structural_damage_is_malformed(
    vault: FileVault, vault_path: Path, change: Callable[[dict[str, Any]], None]
) -> None:
    filled(vault)
    rewrite(vault_path, change)
    assert_fails_closed(vault_path, Problem.MALFORMED)


def test_an_unreadable_vault(tmp_path: Path, master: MasterKey) -> None:
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(VaultError) as info:
            FileVault(path, master).get("db", "password")
        assert info.value.problem is Problem.UNREADABLE
        assert str(path) in str(info.value) and "vault://db#password" in str(info.value)


def test_an_oversized_file_is_refused_unread(vault_path: Path, master: MasterKey) -> None:
    vault_path.write_bytes(b" " * (fmt.MAX_FILE_BYTES + 1))
    with pytest.raises(VaultError) as info:
        FileVault(vault_path, master).names()
    assert info.value.problem is Problem.MALFORMED


# --- property tests -------------------------------------------------------------------------

BOUNDED = settings(
    max_examples=150, deadline=1000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@BOUNDED
@given(st.binary(max_size=2048))
def test_decoding_arbitrary_bytes_raises_only_the_typed_error(data: bytes) -> None:
    try:
        fmt.decode(data, "fuzz")
    except VaultError as exc:
        assert exc.problem in (Problem.MALFORMED, Problem.UNSUPPORTED)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@BOUNDED
@given(JSON)
def test_decoding_arbitrary_json_raises_only_the_typed_error(value: object) -> None:
    for doc in (value, {"format": "etlc-vault", "version": 1, "kdf": value, "entries": value}):
        with pytest.raises(VaultError):
            fmt.decode(json.dumps(doc, indent=2).encode() + b"\n", "fuzz")


@BOUNDED
@given(data=st.data())
def test_any_mutation_of_a_real_vault_fails_closed_or_changes_nothing(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "vault.json"
    master = MasterKey.from_password(PASSWORD)
    FileVault.create(path, master, FAST).put(Reference("db", "password"), Secret("fuzzed-value"))
    original = path.read_bytes()
    at = data.draw(st.integers(0, len(original) - 1))
    kind = data.draw(st.sampled_from(["flip", "delete", "insert"]))
    if kind == "flip":
        mutated = (
            original[:at]
            + bytes([original[at] ^ data.draw(st.integers(1, 255))])
            + original[at + 1 :]
        )
    elif kind == "delete":
        mutated = original[:at] + original[at + 1 :]
    else:
        mutated = original[:at] + data.draw(st.binary(min_size=1, max_size=4)) + original[at:]
    path.write_bytes(mutated)
    try:
        value = FileVault(path, master).get("db", "password")
    except VaultError:
        return
    assert mutated == original and value.reveal() == "fuzzed-value"


def test_kdf_params_bounds() -> None:
    assert KdfParams().problem() is None and FAST.problem() is None
    assert KdfParams(n=2**20).problem() is None
    assert "power of two" in (KdfParams(n=2**30).problem() or "")
    with pytest.raises(ValueError, match="power of two"):
        fmt.new_header(b"k", KdfParams(n=1000))
