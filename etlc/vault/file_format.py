"""The vault file, format version 1: encoding, key derivation, sealing and verification.

Everything cryptographic is the ``cryptography`` package's: scrypt, HKDF-SHA256, AES-256-GCM
and HMAC-SHA256. The file is JSON (ASCII), exactly as :func:`encode` writes it::

    {
      "format": "etlc-vault",
      "version": 1,
      "vault_id": "<32 hex digits, random at init>",
      "kdf": {"name": "scrypt", "n": 131072, "r": 8, "p": 1, "salt": "<base64, 16 bytes>"},
      "cipher": "AES-256-GCM",
      "key_check": "<base64, 32 bytes>",
      "entries": {"<path>#<key>": {"nonce": "<base64, 12 bytes>", "ciphertext": "<base64>"}},
      "mac": "<base64, 32 bytes>"
    }

Keys: scrypt(master secret, salt, n, r, p) gives a root key; HKDF-SHA256 derives three
independent keys from it (entries, mac, check).

- ``key_check`` = HMAC(check key, label || vault_id): a wrong master key is reported as such,
  not as a damaged file.
- Each entry is AES-256-GCM under the entries key with a fresh random nonce, and associated
  data label || vault_id || NUL || entry name, so a ciphertext moved to another name (or
  another vault) does not decrypt.
- ``mac`` = HMAC(mac key, label || the file's encoding without ``mac``): an entry added,
  removed, swapped or cut off fails it, and so does any change to the header.

Reading is strict and cheap checks come first: a size cap, ASCII, JSON without duplicate
members, exactly the expected members and types, KDF parameters inside fixed bounds (so a
hostile file cannot make scrypt eat the machine), and the bytes must be the canonical
encoding of what was parsed. Only then does scrypt run.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from etlc.vault.errors import Problem, VaultError
from etlc.vault.reference import Reference

FORMAT = "etlc-vault"
VERSION = 1
CIPHER = "AES-256-GCM"
KDF_NAME = "scrypt"
_LABEL = b"etlc-vault/1"

KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
VAULT_ID_BYTES = 16
MAC_BYTES = 32

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_VALUE_BYTES = 64 * 1024
# Bounds on scrypt parameters read from a file: N up to 2^20 (about 1 GiB with r=8, a few
# seconds), and a cap on memory and work whatever the mix of n, r and p.
MIN_LOG_N = 10
MAX_LOG_N = 20
MAX_R = 32
MAX_P = 16
MAX_MEMORY_BYTES = 1024 * 1024 * 1024
MAX_WORK = 2**23  # n * r * p

_TOP = ("format", "version", "vault_id", "kdf", "cipher", "key_check", "entries", "mac")
_KDF = ("name", "n", "r", "p", "salt")
_ENTRY = ("nonce", "ciphertext")


@dataclass(frozen=True)
class KdfParams:
    """scrypt's cost parameters; the defaults are the production ones (about 0.3 s)."""

    n: int = 2**17
    r: int = 8
    p: int = 1

    def problem(self) -> str | None:
        """Why these parameters are refused, or None."""
        n, r, p = self.n, self.r, self.p
        if not (2**MIN_LOG_N <= n <= 2**MAX_LOG_N) or n & (n - 1):
            return f"scrypt n={n} is not a power of two in 2^{MIN_LOG_N}..2^{MAX_LOG_N}"
        if not (1 <= r <= MAX_R and 1 <= p <= MAX_P):
            return f"scrypt r={r}, p={p} out of range (r 1..{MAX_R}, p 1..{MAX_P})"
        if 128 * r * n > MAX_MEMORY_BYTES or n * r * p > MAX_WORK:
            return f"scrypt n={n}, r={r}, p={p} would cost too much memory or time"
        return None


DEFAULT_KDF = KdfParams()


@dataclass(frozen=True)
class Header:
    vault_id: bytes
    kdf: KdfParams
    salt: bytes
    key_check: bytes


@dataclass(frozen=True)
class SealedEntry:
    nonce: bytes
    ciphertext: bytes  # with the 16-byte GCM tag at the end


@dataclass(frozen=True)
class Document:
    header: Header
    entries: Mapping[str, SealedEntry]
    mac: bytes


class Keys:
    """The keys derived from the master secret for one vault; never printed."""

    __slots__ = ("_check", "_entries", "_mac")

    def __init__(self, root: bytes) -> None:
        self._entries = _hkdf(root, b"entries")
        self._mac = _hkdf(root, b"mac")
        self._check = _hkdf(root, b"check")

    def __repr__(self) -> str:
        return "Keys([hidden])"

    @classmethod
    def derive(cls, master: bytes, kdf: KdfParams, salt: bytes) -> Keys:
        root = Scrypt(salt=salt, length=KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p).derive(master)
        return cls(root)

    def key_check(self, vault_id: bytes) -> bytes:
        return _hmac(self._check, _LABEL + b" key check\0" + vault_id)

    def mac(self, header: Header, entries: Mapping[str, SealedEntry]) -> bytes:
        return _hmac(self._mac, _LABEL + b" mac\0" + _json(_unsigned(header, entries)))

    def seal(self, vault_id: bytes, name: str, plaintext: bytes) -> SealedEntry:
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(self._entries).encrypt(nonce, plaintext, _aad(vault_id, name))
        return SealedEntry(nonce, ciphertext)

    def unseal(self, vault_id: bytes, name: str, entry: SealedEntry) -> bytes | None:
        """The plaintext, or None when the ciphertext, nonce or name was tampered with."""
        try:
            return AESGCM(self._entries).decrypt(
                entry.nonce, entry.ciphertext, _aad(vault_id, name)
            )
        except InvalidTag:
            return None


def _hkdf(root: bytes, purpose: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_LABEL + b" " + purpose
    ).derive(root)


def _hmac(key: bytes, data: bytes) -> bytes:
    mac = crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def _aad(vault_id: bytes, name: str) -> bytes:
    return _LABEL + b"\0" + vault_id + b"\0" + name.encode("ascii")


# --- building and checking documents ------------------------------------------------------


def new_header(master: bytes, kdf: KdfParams) -> tuple[Header, Keys]:
    """A fresh header (random vault id and salt) and the keys it implies."""
    reason = kdf.problem()
    if reason is not None:
        raise ValueError(reason)
    vault_id = os.urandom(VAULT_ID_BYTES)
    salt = os.urandom(SALT_BYTES)
    keys = Keys.derive(master, kdf, salt)
    return Header(vault_id, kdf, salt, keys.key_check(vault_id)), keys


def rekey(header: Header, master: bytes, kdf: KdfParams) -> tuple[Header, Keys]:
    """The same vault (same id) under a new master secret, salt and KDF parameters."""
    fresh, keys = new_header(master, kdf)
    return Header(header.vault_id, kdf, fresh.salt, keys.key_check(header.vault_id)), keys


def sign(header: Header, entries: Mapping[str, SealedEntry], keys: Keys) -> Document:
    ordered = {name: entries[name] for name in sorted(entries)}
    return Document(header, ordered, keys.mac(header, ordered))


def verify(doc: Document, keys: Keys, vault: str) -> None:
    """Raise unless ``keys`` belong to this vault and the file is exactly as it was signed."""
    if not hmac.compare_digest(keys.key_check(doc.header.vault_id), doc.header.key_check):
        raise VaultError(
            Problem.WRONG_KEY,
            vault,
            "wrong master key (check ETLC_VAULT_PASSWORD or ETLC_VAULT_KEY_FILE), "
            "or the file header was modified",
        )
    if not hmac.compare_digest(keys.mac(doc.header, doc.entries), doc.mac):
        raise VaultError(
            Problem.TAMPERED,
            vault,
            "the file was modified outside etlc (entries added, removed, swapped or cut off)",
        )


# --- encoding -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unsigned(header: Header, entries: Mapping[str, SealedEntry]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "vault_id": header.vault_id.hex(),
        "kdf": {
            "name": KDF_NAME,
            "n": header.kdf.n,
            "r": header.kdf.r,
            "p": header.kdf.p,
            "salt": _b64(header.salt),
        },
        "cipher": CIPHER,
        "key_check": _b64(header.key_check),
        "entries": {
            name: {"nonce": _b64(e.nonce), "ciphertext": _b64(e.ciphertext)}
            for name, e in sorted(entries.items())
        },
    }


def _json(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def encode(doc: Document) -> bytes:
    """The one byte string a document is written as."""
    obj = _unsigned(doc.header, doc.entries)
    obj["mac"] = _b64(doc.mac)
    return _json(obj)


# --- decoding -----------------------------------------------------------------------------


def decode(data: bytes, vault: str) -> Document:
    """Parse and structurally check a vault file. Only :class:`VaultError` comes out."""
    if len(data) > MAX_FILE_BYTES:
        raise _bad(vault, f"larger than {MAX_FILE_BYTES} bytes")
    try:
        obj = json.loads(
            data.decode("ascii"),
            object_pairs_hook=_unique_members,
            parse_constant=_no_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad(vault, "not JSON as etlc writes it") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise _bad(vault, f'no "format": "{FORMAT}" member')
    version = obj.get("version")
    if type(version) is int and version != VERSION:
        raise VaultError(
            Problem.UNSUPPORTED,
            vault,
            f"format version {version} is not supported (this etlc reads version {VERSION})",
        )
    try:
        doc = _document(obj)
    except _MalformedError as exc:
        raise _bad(vault, str(exc)) from None
    reason = doc.header.kdf.problem()
    if reason is not None:
        raise _bad(vault, reason)
    # One spelling per state: otherwise reordered members, other whitespace or another
    # base64 of the same bytes would all pass the MAC, and the file would be malleable.
    if encode(doc) != data:
        raise _bad(vault, "not in canonical form (was it edited by hand?)")
    return doc


def _bad(vault: str, detail: str) -> VaultError:
    return VaultError(Problem.MALFORMED, vault, f"not a valid vault file: {detail}")


class _MalformedError(Exception):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError("duplicate member")
        out[key] = value
    return out


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _members(obj: Any, expected: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != set(expected):
        raise _MalformedError(f"{where} must have exactly the members {', '.join(expected)}")
    return obj


def _int(value: Any, where: str) -> int:
    if type(value) is not int:
        raise _MalformedError(f"{where} must be an integer")
    return value


def _bytes(value: Any, where: str, size: int | None = None, minimum: int = 0) -> bytes:
    if not isinstance(value, str):
        raise _MalformedError(f"{where} must be a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise _MalformedError(f"{where} is not base64") from None
    if (size is not None and len(raw) != size) or len(raw) < minimum:
        raise _MalformedError(f"{where} has the wrong length")
    return raw


def _document(obj: dict[str, Any]) -> Document:
    top = _members(obj, _TOP, "the file")
    if top["version"] != VERSION or type(top["version"]) is not int:
        raise _MalformedError('"version" must be an integer')
    if top["cipher"] != CIPHER:
        raise _MalformedError(f'"cipher" must be "{CIPHER}"')
    vault_id = top["vault_id"]
    if not isinstance(vault_id, str) or len(vault_id) != 2 * VAULT_ID_BYTES:
        raise _MalformedError('"vault_id" must be 32 hex digits')
    try:
        vault_id_bytes = bytes.fromhex(vault_id)
    except ValueError:
        raise _MalformedError('"vault_id" must be 32 hex digits') from None
    kdf = _members(top["kdf"], _KDF, '"kdf"')
    if kdf["name"] != KDF_NAME:
        raise _MalformedError(f'"kdf.name" must be "{KDF_NAME}"')
    params = KdfParams(
        _int(kdf["n"], '"kdf.n"'), _int(kdf["r"], '"kdf.r"'), _int(kdf["p"], '"kdf.p"')
    )
    header = Header(
        vault_id_bytes,
        params,
        _bytes(kdf["salt"], '"kdf.salt"', SALT_BYTES),
        _bytes(top["key_check"], '"key_check"', MAC_BYTES),
    )
    raw_entries = top["entries"]
    if not isinstance(raw_entries, dict):
        raise _MalformedError('"entries" must be an object')
    entries: dict[str, SealedEntry] = {}
    for name, value in raw_entries.items():
        try:
            ref = Reference.entry(name, "")
        except VaultError:
            raise _MalformedError("an entry name is not <path>#<key>") from None
        if ref.name != name:  # the "vault://" prefix is for references, not entry names
            raise _MalformedError("an entry name is not <path>#<key>")
        entry = _members(value, _ENTRY, "an entry")
        entries[name] = SealedEntry(
            _bytes(entry["nonce"], "an entry nonce", NONCE_BYTES),
            _bytes(
                entry["ciphertext"],
                "an entry ciphertext",
                minimum=TAG_BYTES + 1,
            ),
        )
    return Document(header, entries, _bytes(top["mac"], '"mac"', MAC_BYTES))
