"""Credentials: the encrypted local vault, ``vault://`` references, ``Secret`` and redaction.

Pure Python on top of ``cryptography``, with no pyspark and no compiler: the runtime resolves
references through it, and the ``etlc vault`` command manages the file.
"""

from etlc.vault.backends import (
    DEFAULT_FILE,
    FILE_VAR,
    KEY_FILE_VAR,
    PASSWORD_VAR,
    EnvVault,
    FileVault,
    MasterKey,
    SecretBackend,
    default_path,
    open_backend,
)
from etlc.vault.errors import Problem, VaultError
from etlc.vault.file_format import KdfParams
from etlc.vault.reference import Reference, is_reference
from etlc.vault.secret import Secret

__all__ = [
    "DEFAULT_FILE",
    "FILE_VAR",
    "KEY_FILE_VAR",
    "PASSWORD_VAR",
    "EnvVault",
    "FileVault",
    "KdfParams",
    "MasterKey",
    "Problem",
    "Reference",
    "Secret",
    "SecretBackend",
    "VaultError",
    "default_path",
    "is_reference",
    "open_backend",
]
