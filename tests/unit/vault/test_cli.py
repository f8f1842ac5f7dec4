"""``etlc vault``: init, put, get, list, rm, rotate-key, in process."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from etlc.cli import app
from etlc.vault import FileVault, MasterKey
from tests.unit.vault.conftest import PASSWORD

runner = CliRunner()
ENV = {"ETLC_VAULT_PASSWORD": PASSWORD, "ETLC_VAULT_KEY_FILE": "", "ETLC_VAULT_FILE": ""}


def vault_cmd(*args: str, input: str | None = None, **env: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["vault", *args], input=input, env={**ENV, **env})
    return result.exit_code, result.stdout, result.stderr


def test_the_whole_life_of_a_vault(tmp_path: Path) -> None:
    f = str(tmp_path / "v.json")
    assert vault_cmd("init", "--file", f, "--kdf-log-n", "10")[0] == 0
    code, out, _ = vault_cmd("put", "db/crm#password", "--file", f, input="cli-secret-value\n")
    assert code == 0 and out.strip() == "stored vault://db/crm#password"
    assert vault_cmd("put", "vault://s3/raw#key", "--file", f, input="second-value")[0] == 0

    code, out, _ = vault_cmd("get", "db/crm#password", "--file", f)
    assert code == 0 and "[hidden]" in out and "cli-secret-value" not in out
    code, out, _ = vault_cmd("get", "db/crm#password", "--file", f, "--reveal")
    assert (code, out) == (0, "cli-secret-value\n")
    assert vault_cmd("list", "--file", f)[1].splitlines() == [
        "vault://db/crm#password",
        "vault://s3/raw#key",
    ]

    assert vault_cmd("rm", "s3/raw#key", "--file", f)[0] == 0
    assert vault_cmd("list", "--file", f)[1].splitlines() == ["vault://db/crm#password"]

    code, out, _ = vault_cmd(
        "rotate-key", "--file", f, "--kdf-log-n", "11", ETLC_VAULT_NEW_PASSWORD="new-master-pw"
    )
    assert code == 0 and "rotated" in out
    code, _, err = vault_cmd("get", "db/crm#password", "--file", f)
    assert code == 1 and "wrong master key" in err
    code, out, _ = vault_cmd(
        "get", "db/crm#password", "--reveal", ETLC_VAULT_PASSWORD="new-master-pw", ETLC_VAULT_FILE=f
    )
    assert (code, out) == (0, "cli-secret-value\n")


def test_errors_are_one_line_and_never_hold_values(tmp_path: Path) -> None:
    f = str(tmp_path / "v.json")
    vault_cmd("init", "--file", f, "--kdf-log-n", "10")
    code, _, err = vault_cmd("init", "--file", f, "--kdf-log-n", "10")
    assert code == 1 and err.startswith(f"error: vault {f}: a vault already exists")
    code, _, err = vault_cmd("get", "db#missing", "--file", f)
    assert (
        code == 1
        and err
        == f"error: vault {f}, vault://db#missing: no such entry (add it with `etlc vault put`)\n"
    )
    code, _, err = vault_cmd("put", "not a reference", "--file", f, input="hunter2-value")
    assert code == 1 and "malformed vault reference" in err and "hunter2" not in err
    code, _, err = vault_cmd("put", "db#empty", "--file", f, input="\n")
    assert code == 1 and "1 to" in err
    code, _, err = vault_cmd("list", "--file", f, ETLC_VAULT_PASSWORD="")
    assert code == 1 and "no master key" in err
    code, _, err = vault_cmd("init", "--file", str(tmp_path / "w.json"), "--kdf-log-n", "30")
    assert code == 2  # out of range for the option


def test_a_value_is_never_taken_from_the_command_line(tmp_path: Path) -> None:
    f = str(tmp_path / "v.json")
    vault_cmd("init", "--file", f, "--kdf-log-n", "10")
    code, _, _ = vault_cmd("put", "db#password", "argv-secret", "--file", f, input="")
    assert code == 2
    assert FileVault(Path(f), MasterKey.from_password(PASSWORD)).names() == []


def test_a_key_file_works_as_the_master_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("a-random-key-file-content\n")
    f = str(tmp_path / "v.json")
    env = {"ETLC_VAULT_PASSWORD": "", "ETLC_VAULT_KEY_FILE": str(key)}
    assert vault_cmd("init", "--file", f, "--kdf-log-n", "10", **env)[0] == 0
    assert vault_cmd("put", "a#b", "--file", f, input="via-key-file", **env)[0] == 0
    assert vault_cmd("get", "a#b", "--file", f, "--reveal", **env)[1] == "via-key-file\n"


def test_vault_help_is_reachable() -> None:
    result = runner.invoke(app, ["vault", "--help"])
    assert result.exit_code == 0
    for command in ("init", "put", "get", "list", "rm", "rotate-key"):
        assert command in result.stdout


def test_a_value_that_is_not_utf8_is_one_line_and_never_echoed(tmp_path: Path) -> None:
    f = str(tmp_path / "v.json")
    vault_cmd("init", "--file", f, "--kdf-log-n", "10")
    result = runner.invoke(
        app, ["vault", "put", "db#pw", "--file", f], input=b"s3cr\xffet\xfe\n", env=ENV
    )
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: ") and "not UTF-8" in result.stderr
    assert len(result.stderr.splitlines()) == 1 and "s3cr" not in result.stderr
    assert FileVault(Path(f), MasterKey.from_password(PASSWORD)).names() == []


def test_misused_paths_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    cases = [
        ("list", "--file", str(tmp_path)),  # a folder
        ("init", "--file", str(tmp_path / "a-file" / "v.json"), "--kdf-log-n", "10"),
        ("list", "--file", str(tmp_path / "missing.json")),
        ("list", "--file", str(tmp_path / "x\x1b[2J.json")),
    ]
    for args in cases:
        code, _, err = vault_cmd(*args)
        assert code == 1 and err.startswith("error: ") and len(err.splitlines()) == 1, args
        assert err.rstrip("\n").isprintable(), err
