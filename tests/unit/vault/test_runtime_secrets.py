"""The runtime side: environment files with vault references, and the error taxonomy."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from etlc.runtime.environment import Environment
from etlc.runtime.errors import (
    AuthenticationError,
    ConfigurationError,
    TerminalError,
    VaultAccessError,
    classify,
)
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.pipeline import Pipeline
from etlc.runtime.report import RunReport, Status
from etlc.runtime.retry import RetryingPipeline, RetryPolicy
from etlc.vault import EnvVault, FileVault, MasterKey, Problem, Reference, Secret, VaultError
from tests.unit.vault.conftest import PASSWORD

DB_PASSWORD = "env-file-db-password-42"


def env_file(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture
def seeded(vault: FileVault) -> FileVault:
    vault.put(Reference("db/crm", "password"), Secret(DB_PASSWORD))
    return vault


def load(tmp_path: Path, doc: dict[str, object], environ: Mapping[str, str]) -> Environment:
    return Environment.load(env_file(tmp_path, doc), environ)


def test_a_variable_holding_a_reference_resolves_once(tmp_path: Path, seeded: FileVault) -> None:
    env = load(
        tmp_path,
        {
            "variables": {"db_password": "vault://db/crm#password", "host": "db"},
            "vault": {"backend": "file", "path": str(seeded.path)},
        },
        {"ETLC_VAULT_PASSWORD": PASSWORD},
    )
    first = env.secret("db_password")
    assert first.reveal() == DB_PASSWORD
    assert env.secret("db_password") is first
    assert env.secret("vault://db/crm#password") is first
    assert env.interpolate("jdbc:postgresql://${host}/crm") == "jdbc:postgresql://db/crm"


def test_a_secret_is_never_spliced_into_text(tmp_path: Path) -> None:
    env = load(tmp_path, {"variables": {"db_password": "vault://db/crm#password"}}, {})
    with pytest.raises(ConfigurationError, match=r"`db_password` .* vault reference"):
        env.interpolate("postgresql://etl:${db_password}@db/crm")


def test_secret_needs_a_reference(tmp_path: Path) -> None:
    env = load(tmp_path, {"variables": {"host": "db-host-name"}}, {})
    for name in ("host", "missing"):
        with pytest.raises(ConfigurationError, match=f"`{name}` is neither") as info:
            env.secret(name)
        assert "db-host-name" not in str(info.value)


@pytest.mark.parametrize(
    ("variables", "pattern"),
    [
        ({"db_password": "hunter2-literal"}, "`db_password` holds a literal credential"),
        ({"api_key": "AKIA-literal"}, "`api_key` holds a literal credential"),
        ({"token": "vault://bad ref hunter2"}, "`token` is a malformed vault reference"),
    ],
)
def test_literal_and_malformed_credentials_are_refused_by_name(
    tmp_path: Path, variables: dict[str, str], pattern: str
) -> None:
    with pytest.raises(ConfigurationError, match=pattern) as info:
        load(tmp_path, {"variables": variables}, {})
    assert "hunter2" not in str(info.value) and "AKIA" not in str(info.value)


@pytest.mark.parametrize(
    ("vault", "pattern"),
    [
        ({"backend": "nope"}, "unknown vault backend `nope`"),
        ({"backend": "file", "prefix": "X_"}, "unknown options"),
        ([], "`vault` must be an object"),
        ({"path": 3}, "`vault` must be an object of strings"),
    ],
)
def test_bad_vault_settings(tmp_path: Path, vault: object, pattern: str) -> None:
    with pytest.raises(ConfigurationError, match=pattern):
        load(tmp_path, {"vault": vault}, {})


def test_the_env_backend_and_the_default_file(tmp_path: Path) -> None:
    env = load(
        tmp_path,
        {"variables": {"pw": "vault://db/crm#password"}, "vault": {"backend": "env"}},
        {"ETLC_SECRET_DB_CRM_PASSWORD": "from-the-ci-system"},
    )
    assert isinstance(env.vault, EnvVault)
    assert env.secret("pw").reveal() == "from-the-ci-system"
    default = load(tmp_path, {}, {"ETLC_VAULT_FILE": str(tmp_path / "x.json")})
    assert isinstance(default.vault, FileVault) and default.vault.path == tmp_path / "x.json"
    assert isinstance(Environment("n", "p").vault, FileVault)


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"ETLC_VAULT_PASSWORD": "not the password"}, "wrong master key"),
        ({}, "no master key"),
    ],
)
def test_vault_failures_are_terminal_and_name_variable_file_and_reference(
    tmp_path: Path, seeded: FileVault, environ: dict[str, str], problem: str
) -> None:
    env = load(
        tmp_path,
        {
            "variables": {"db_password": "vault://db/crm#password"},
            "vault": {"path": str(seeded.path)},
        },
        environ,
    )
    with pytest.raises(VaultAccessError) as info:
        env.secret("db_password")
    message = str(info.value)
    assert info.value.kind == "vault" and not info.value.transient
    assert "variable `db_password`" in message and str(seeded.path) in message
    assert "vault://db/crm#password" in message and problem in message
    assert DB_PASSWORD not in message and "not the password" not in message


def test_classify_maps_vault_errors_and_scrubs_text() -> None:
    err = classify(VaultError(Problem.TAMPERED, "v.json", "modified", "vault://a#b"), "src")
    assert isinstance(err, VaultAccessError) and err.step == "src" and err.kind == "vault"
    Secret("scrub-me-from-errors")
    wrapped = classify(RuntimeError("login failed: scrub-me-from-errors"), "src")
    assert isinstance(wrapped, TerminalError)
    assert "scrub-me-from-errors" not in str(wrapped) + repr(wrapped) + wrapped.message
    late = AuthenticationError("bad password: revealed-later-value")
    Secret("revealed-later-value")  # registered after the error was made
    assert "revealed-later-value" not in str(late)


class FailsWith(Pipeline):
    def __init__(self, error: TerminalError) -> None:
        self.error = error
        self.runs = 0

    def run(self) -> RunReport:
        self.runs += 1
        return RunReport("p", "r", Status.FAILED, error=self.error)


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError('password authentication failed for user "etl"'),
        VaultAccessError("vault v.json: wrong master key"),
    ],
)
def test_authentication_and_vault_failures_are_never_retried(error: TerminalError) -> None:
    inner = FailsWith(error)
    slept: list[float] = []
    report = RetryingPipeline(
        inner, RetryPolicy(max_retries=3, delay_seconds=1), EventLog(RunContext("p")), slept.append
    ).run()
    assert (inner.runs, report.attempts, slept) == (1, 1, [])


def test_a_master_key_is_registered_for_redaction() -> None:
    from etlc.vault import redaction

    MasterKey.from_password("the-master-password-itself")
    assert redaction.scrub("pw=the-master-password-itself") == "pw=[hidden]"


def test_dead_letter_records_never_hold_a_secret(tmp_path: Path) -> None:
    from etlc.runtime.dead_letter import DeadLetterLog

    Secret("dead-letter-secret-value")
    sink = DeadLetterLog(str(tmp_path), "p", "r")
    sink.write("load", [{"key": {"id": "dead-letter-secret-value"}, "sqlstate": "23505"}])
    text = Path(sink.location).read_text()
    assert "dead-letter-secret-value" not in text and '"id": "[hidden]"' in text
