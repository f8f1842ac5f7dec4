"""The one error the vault raises: it names the vault and the reference, never a value."""

from __future__ import annotations

from enum import Enum


class Problem(str, Enum):
    """What went wrong, as a stable code (tests and callers match on it, not on prose)."""

    NO_MASTER_KEY = "no_master_key"  # neither ETLC_VAULT_PASSWORD nor ETLC_VAULT_KEY_FILE
    UNREADABLE = "unreadable"  # missing file, permissions, I/O
    UNWRITABLE = "unwritable"
    MALFORMED = "malformed"  # not a vault file, not canonical, absurd KDF parameters
    UNSUPPORTED = "unsupported"  # a format version this etlc cannot read
    WRONG_KEY = "wrong_key"
    TAMPERED = "tampered"  # the file MAC or an entry's authentication tag does not verify
    MISSING_ENTRY = "missing_entry"
    BAD_REFERENCE = "bad_reference"
    BAD_VALUE = "bad_value"  # empty or oversized secret
    EXISTS = "exists"  # `init` over an existing vault
    BAD_CONFIG = "bad_config"  # unknown backend or option

    # str() and format() give the value, as enum.StrEnum does; that is Python 3.11+ only.
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(self, spec)


class VaultError(Exception):
    """A secret could not be had. Terminal: retrying cannot fix a key or a file.

    ``vault`` names where secrets come from (a file path, or "environment variables");
    ``reference`` is the ``vault://`` reference being resolved, when there is one. A
    reference that failed to parse is never echoed: it might be the secret itself.
    """

    def __init__(
        self, problem: Problem, vault: str, detail: str, reference: str | None = None
    ) -> None:
        self.problem = problem
        self.vault = vault
        self.reference = reference
        self.detail = detail
        where = f"vault {vault}" + (f", {reference}" if reference else "")
        super().__init__(f"{where}: {detail}")
