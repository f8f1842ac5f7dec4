"""Where secrets come from: one small interface, a strategy per source.

- :class:`FileVault` (the default): the encrypted local file of :mod:`etlc.vault.file_format`,
  opened with a master secret from ``ETLC_VAULT_PASSWORD`` or the file named by
  ``ETLC_VAULT_KEY_FILE`` (never a command-line argument, which ``ps`` shows to everyone).
- :class:`EnvVault`: environment variables, for CI systems that inject secrets themselves.

A backend is chosen by its ``kind`` (the ``vault.backend`` of an environment file). Another
source, HashiCorp Vault say, is one new subclass with a ``kind``: it registers itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from etlc.vault import file_format as fmt
from etlc.vault import redaction
from etlc.vault.errors import Problem, VaultError
from etlc.vault.reference import Reference
from etlc.vault.secret import Secret

PASSWORD_VAR = "ETLC_VAULT_PASSWORD"
KEY_FILE_VAR = "ETLC_VAULT_KEY_FILE"
FILE_VAR = "ETLC_VAULT_FILE"
DEFAULT_FILE = ".etlc/vault.json"
DEFAULT_ENV_PREFIX = "ETLC_SECRET_"


class MasterKey:
    """The master secret of a vault file, and where it came from (for error messages)."""

    __slots__ = ("_material", "source")

    def __init__(self, material: bytes, source: str) -> None:
        if not material:
            raise ValueError("the master secret is empty")
        self._material = material
        self.source = source
        with contextlib.suppress(UnicodeDecodeError):
            redaction.register(material.decode("utf-8"))

    def material(self) -> bytes:
        return self._material

    def __repr__(self) -> str:
        return f"MasterKey([hidden], from {self.source})"

    @classmethod
    def from_password(cls, password: str, source: str = "a password") -> MasterKey:
        return cls(password.encode("utf-8"), source)

    @classmethod
    def from_environment(
        cls,
        environ: Mapping[str, str],
        vault: str,
        password_var: str = PASSWORD_VAR,
        key_file_var: str = KEY_FILE_VAR,
    ) -> MasterKey:
        password = environ.get(password_var)
        key_file = environ.get(key_file_var)
        if password and key_file:
            raise VaultError(
                Problem.NO_MASTER_KEY, vault, f"set {password_var} or {key_file_var}, not both"
            )
        if password:
            return cls.from_password(password, f"${password_var}")
        if key_file:
            return cls.from_key_file(Path(key_file), vault, key_file_var)
        raise VaultError(
            Problem.NO_MASTER_KEY,
            vault,
            f"no master key: set {password_var}, or {key_file_var} to a key file's path",
        )

    @classmethod
    def from_key_file(cls, path: Path, vault: str, var: str = KEY_FILE_VAR) -> MasterKey:
        try:
            material = path.read_bytes()
        except OSError as exc:
            raise VaultError(
                Problem.UNREADABLE,
                vault,
                f"cannot read the key file {path} (${var}): {exc.strerror}",
            ) from None
        # Files made by `openssl rand -base64 32 > key` or an editor end with a newline.
        material = material.rstrip(b"\r\n")
        if not material:
            raise VaultError(Problem.NO_MASTER_KEY, vault, f"the key file {path} (${var}) is empty")
        return cls(material, f"key file {path}")


class SecretBackend(ABC):
    """A source of secrets, addressed as ``vault://<path>#<key>``."""

    kind: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()  # what an environment file may set
    _kinds: ClassVar[dict[str, type[SecretBackend]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if "kind" in cls.__dict__:
            SecretBackend._kinds[cls.kind] = cls

    @classmethod
    @abstractmethod
    def configure(cls, options: Mapping[str, str], environ: Mapping[str, str]) -> SecretBackend:
        """The backend an environment file's ``vault`` object describes."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the secrets are, as errors name it."""

    @abstractmethod
    def get(self, path: str, key: str) -> Secret:
        """The secret at ``path#key``; raises :class:`VaultError`, never returns a partial one."""

    def resolve(self, ref: str) -> Secret:
        """The secret a ``vault://<path>#<key>`` reference names."""
        parsed = Reference.parse(ref, self.location)
        return self.get(parsed.path, parsed.key)


def backend_kinds() -> list[str]:
    return sorted(SecretBackend._kinds)


def backend_options() -> dict[str, frozenset[str]]:
    """What an environment file's ``vault`` object may set, per registered backend."""
    return {kind: cls.options for kind, cls in sorted(SecretBackend._kinds.items())}


def open_backend(options: Mapping[str, str], environ: Mapping[str, str]) -> SecretBackend:
    """The backend for an environment file's ``vault`` object (``{"backend": "file", ...}``)."""
    kind = options.get("backend", "file")
    cls = SecretBackend._kinds.get(kind)
    if cls is None:
        raise VaultError(
            Problem.BAD_CONFIG,
            kind,
            f"unknown vault backend `{kind}`; known: {', '.join(backend_kinds())}",
        )
    unknown = sorted(set(options) - {"backend"} - cls.options)
    if unknown:
        raise VaultError(
            Problem.BAD_CONFIG,
            kind,
            f"unknown options {unknown} for the `{kind}` backend; "
            f"known: {sorted(cls.options) or 'none'}",
        )
    return cls.configure(options, environ)


class FileVault(SecretBackend):
    """The encrypted vault file. Opened (and verified whole) at the first access, once."""

    kind = "file"
    options = frozenset({"path"})

    def __init__(
        self,
        path: Path,
        master: MasterKey | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self._master = master
        self._environ = os.environ if environ is None else environ
        self._opened: tuple[fmt.Document, fmt.Keys] | None = None
        self._derived: dict[tuple[bytes, fmt.KdfParams], fmt.Keys] = {}
        self._secrets: dict[str, Secret] = {}

    @classmethod
    def configure(cls, options: Mapping[str, str], environ: Mapping[str, str]) -> FileVault:
        return cls(default_path(environ, options.get("path")), environ=environ)

    @property
    def location(self) -> str:
        return str(self.path)

    @classmethod
    def create(
        cls, path: Path, master: MasterKey, kdf: fmt.KdfParams = fmt.DEFAULT_KDF
    ) -> FileVault:
        """A new, empty vault at ``path``; an existing vault is never overwritten."""
        vault = cls(path, master)
        with vault._locked():
            if path.exists():
                raise VaultError(Problem.EXISTS, vault.location, "a vault already exists here")
            header, keys = fmt.new_header(master.material(), kdf)
            doc = fmt.sign(header, {}, keys)
            vault._write(doc)
        vault._derived[(header.salt, header.kdf)] = keys
        vault._opened = (doc, keys)
        return vault

    # --- reading ------------------------------------------------------------------------

    def get(self, path: str, key: str) -> Secret:
        ref = Reference(path, key)
        cached = self._secrets.get(ref.name)
        if cached is not None:
            return cached
        try:
            doc, keys = self._open()
            sealed = doc.entries.get(ref.name)
            if sealed is None:
                raise VaultError(
                    Problem.MISSING_ENTRY,
                    self.location,
                    "no such entry (add it with `etlc vault put`)",
                )
            plaintext = keys.unseal(doc.header.vault_id, ref.name, sealed)
            if plaintext is None:
                raise VaultError(Problem.TAMPERED, self.location, "the entry does not decrypt")
            try:
                secret = Secret(plaintext.decode("utf-8"))
            except UnicodeDecodeError:
                raise VaultError(
                    Problem.MALFORMED, self.location, "the entry is not text"
                ) from None
        except VaultError as exc:
            raise VaultError(exc.problem, exc.vault, exc.detail, str(ref)) from None
        self._secrets[ref.name] = secret
        return secret

    def names(self) -> list[str]:
        doc, _ = self._open()
        return sorted(doc.entries)

    def _open(self) -> tuple[fmt.Document, fmt.Keys]:
        if self._opened is None:
            self._opened = self._load()
        return self._opened

    def _load(self) -> tuple[fmt.Document, fmt.Keys]:
        doc = fmt.decode(self._read(), self.location)
        keys = self._keys(doc.header, self._master_key())
        fmt.verify(doc, keys, self.location)
        return doc, keys

    def _master_key(self) -> MasterKey:
        if self._master is None:
            self._master = MasterKey.from_environment(self._environ, self.location)
        return self._master

    def _keys(self, header: fmt.Header, master: MasterKey) -> fmt.Keys:
        # scrypt is slow on purpose: derive once per salt and parameters, not once per write.
        cache_key = (header.salt, header.kdf)
        keys = self._derived.get(cache_key)
        if keys is None:
            keys = fmt.Keys.derive(master.material(), header.kdf, header.salt)
            self._derived[cache_key] = keys
        return keys

    def _read(self) -> bytes:
        try:
            with self.path.open("rb") as f:
                return f.read(fmt.MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise VaultError(
                Problem.UNREADABLE,
                self.location,
                "no vault file (create one with `etlc vault init`)",
            ) from None
        except OSError as exc:
            raise VaultError(
                Problem.UNREADABLE, self.location, f"cannot read the file: {exc.strerror}"
            ) from None

    # --- writing ------------------------------------------------------------------------

    def put(self, ref: Reference, value: Secret) -> None:
        """Add or replace one entry (a fresh nonce every time)."""
        plaintext = value.reveal().encode("utf-8")
        if not plaintext or len(plaintext) > fmt.MAX_VALUE_BYTES:
            raise VaultError(
                Problem.BAD_VALUE,
                self.location,
                f"a secret must be 1 to {fmt.MAX_VALUE_BYTES} bytes",
                str(ref),
            )
        with self._locked():
            doc, keys = self._reload()
            entries = dict(doc.entries)
            entries[ref.name] = keys.seal(doc.header.vault_id, ref.name, plaintext)
            self._commit(fmt.sign(doc.header, entries, keys), keys)
        self._secrets[ref.name] = value

    def remove(self, ref: Reference) -> None:
        with self._locked():
            doc, keys = self._reload()
            if ref.name not in doc.entries:
                raise VaultError(Problem.MISSING_ENTRY, self.location, "no such entry", str(ref))
            entries = {n: e for n, e in doc.entries.items() if n != ref.name}
            self._commit(fmt.sign(doc.header, entries, keys), keys)
        self._secrets.pop(ref.name, None)

    def rotate(self, new_master: MasterKey, kdf: fmt.KdfParams | None = None) -> None:
        """Re-encrypt every entry under a new master secret (and a new salt and nonces)."""
        with self._locked():
            doc, keys = self._reload()
            values = {}
            for name, sealed in doc.entries.items():
                plaintext = keys.unseal(doc.header.vault_id, name, sealed)
                if plaintext is None:
                    raise VaultError(
                        Problem.TAMPERED,
                        self.location,
                        "an entry does not decrypt",
                        f"vault://{name}",
                    )
                values[name] = plaintext
            header, new_keys = fmt.rekey(doc.header, new_master.material(), kdf or doc.header.kdf)
            entries = {n: new_keys.seal(header.vault_id, n, v) for n, v in values.items()}
            self._commit(fmt.sign(header, entries, new_keys), new_keys)
            self._master = new_master
            self._derived = {(header.salt, header.kdf): new_keys}

    def _reload(self) -> tuple[fmt.Document, fmt.Keys]:
        # Under the lock, another process may have written since this one last read.
        self._opened = self._load()
        return self._opened

    def _commit(self, doc: fmt.Document, keys: fmt.Keys) -> None:
        self._write(doc)
        self._opened = (doc, keys)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on ``<vault>.lock`` so concurrent writers never lose an update.

        The lock file is never removed: unlinking it would let two writers hold locks on two
        different files.
        """
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise VaultError(
                Problem.UNWRITABLE, self.location, f"cannot lock the vault: {exc.strerror}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, doc: fmt.Document) -> None:
        """Replace the file atomically: a crash leaves the old vault or the new, never half."""
        data = fmt.encode(doc)
        directory = self.path.parent
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            # The rename itself is durable only once the directory is synced.
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise VaultError(
                Problem.UNWRITABLE, self.location, f"cannot write the vault: {exc.strerror}"
            ) from None


def default_path(environ: Mapping[str, str], configured: str | None = None) -> Path:
    """``$ETLC_VAULT_FILE``, else the environment file's ``vault.path``, else the default."""
    return Path(environ.get(FILE_VAR) or configured or DEFAULT_FILE)


_PREFIX = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")
_NON_WORD = re.compile(r"[^A-Za-z0-9]")


class EnvVault(SecretBackend):
    """Secrets from environment variables: ``vault://db/crm#password`` reads
    ``ETLC_SECRET_DB_CRM_PASSWORD`` (every character but letters and digits becomes ``_``)."""

    kind = "env"
    options = frozenset({"prefix"})

    def __init__(
        self, environ: Mapping[str, str] | None = None, prefix: str = DEFAULT_ENV_PREFIX
    ) -> None:
        if not _PREFIX.match(prefix):
            raise VaultError(
                Problem.BAD_CONFIG, self.kind, "the prefix must be upper-case letters, digits, `_`"
            )
        self._environ = os.environ if environ is None else environ
        self.prefix = prefix

    @classmethod
    def configure(cls, options: Mapping[str, str], environ: Mapping[str, str]) -> EnvVault:
        return cls(environ, options.get("prefix", DEFAULT_ENV_PREFIX))

    @property
    def location(self) -> str:
        return "environment variables"

    def variable(self, path: str, key: str) -> str:
        return self.prefix + _NON_WORD.sub("_", f"{path}_{key}").upper()

    def get(self, path: str, key: str) -> Secret:
        ref = Reference(path, key)
        name = self.variable(path, key)
        value = self._environ.get(name)
        if not value:
            raise VaultError(
                Problem.MISSING_ENTRY, self.location, f"{name} is not set (or empty)", str(ref)
            )
        return Secret(value)
