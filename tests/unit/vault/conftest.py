"""Vault test fixtures: a fast KDF, a master key, and a redaction registry per test.

Each test gets its own registry, so the values one test registers (some short or random)
never scrub the log lines another test asserts on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from etlc.vault import FileVault, KdfParams, MasterKey, redaction

FAST = KdfParams(n=2**10)  # the file records n; production vaults use 2^17
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[redaction.Redactor]:
    fresh = redaction.Redactor()
    monkeypatch.setattr(redaction, "REDACTOR", fresh)
    yield fresh


@pytest.fixture
def master() -> MasterKey:
    return MasterKey.from_password(PASSWORD)


@pytest.fixture
def vault_path(tmp_path: Path) -> Path:
    return tmp_path / "vault.json"


@pytest.fixture
def vault(vault_path: Path, master: MasterKey) -> FileVault:
    return FileVault.create(vault_path, master, FAST)
