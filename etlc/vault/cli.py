"""``etlc vault``: create and manage the encrypted vault file.

Secrets never come from the command line (other users see it in ``ps``, shells keep it in
their history): values are read from stdin or a hidden prompt, the master key from
``ETLC_VAULT_PASSWORD`` / ``ETLC_VAULT_KEY_FILE`` or a hidden prompt.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from etlc.printable import printable
from etlc.vault import file_format as fmt
from etlc.vault.backends import (
    KEY_FILE_VAR,
    PASSWORD_VAR,
    FileVault,
    MasterKey,
    default_path,
)
from etlc.vault.errors import Problem, VaultError
from etlc.vault.reference import Reference
from etlc.vault.secret import Secret

NEW_PASSWORD_VAR = "ETLC_VAULT_NEW_PASSWORD"
NEW_KEY_FILE_VAR = "ETLC_VAULT_NEW_KEY_FILE"
DEFAULT_LOG_N = fmt.DEFAULT_KDF.n.bit_length() - 1

app = typer.Typer(
    name="vault",
    help=(
        "The encrypted local vault that `vault://<path>#<key>` references resolve from. "
        f"The master key comes from ${PASSWORD_VAR}, from the file named by ${KEY_FILE_VAR}, "
        "or a hidden prompt."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

VaultFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="The vault file (default: $ETLC_VAULT_FILE, else .etlc/vault.json).",
        show_default=False,
    ),
]
Name = Annotated[
    str, typer.Argument(help="The entry: <path>#<key> or vault://<path>#<key>.", show_default=False)
]
LogN = Annotated[
    int,
    typer.Option(
        "--kdf-log-n",
        min=fmt.MIN_LOG_N,
        max=fmt.MAX_LOG_N,
        help="scrypt cost: N = 2^this (memory 128*8*N bytes). Lower it only for tests.",
    ),
]


@contextmanager
def _reported() -> Iterator[None]:
    """A vault error is one line on stderr and exit code 1, never a traceback."""
    try:
        yield
    except VaultError as exc:
        # Paths come from the user or the environment: shown escaped, on one line.
        typer.echo(f"error: {printable(str(exc))}", err=True)
        raise typer.Exit(1) from None


def _path(file: Path | None) -> Path:
    return file or default_path(os.environ)


def _master(vault: Path, password_var: str, key_file_var: str, confirm: bool) -> MasterKey:
    if os.environ.get(password_var) or os.environ.get(key_file_var) or not sys.stdin.isatty():
        return MasterKey.from_environment(os.environ, str(vault), password_var, key_file_var)
    label = "New master password" if password_var == NEW_PASSWORD_VAR else "Master password"
    password: str = typer.prompt(label, hide_input=True, confirmation_prompt=confirm)
    if not password:
        raise VaultError(Problem.NO_MASTER_KEY, str(vault), "the master password is empty")
    return MasterKey.from_password(password, "the prompt")


def _open(file: Path | None) -> FileVault:
    path = _path(file)
    return FileVault(path, _master(path, PASSWORD_VAR, KEY_FILE_VAR, confirm=False))


def _stdin_value(vault: str) -> str:
    """The value piped in: UTF-8 text, one trailing newline dropped. Read as bytes, so a
    value that is not UTF-8 is an error naming the byte, never a traceback."""
    data = sys.stdin.buffer.read(fmt.MAX_VALUE_BYTES + 2)
    try:
        value = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VaultError(
            Problem.BAD_VALUE,
            vault,
            f"the value on stdin is not UTF-8 text (at byte {exc.start + 1}); "
            "store binary secrets base64-encoded",
        ) from None
    return value.removesuffix("\n").removesuffix("\r")


def _kdf(log_n: int) -> fmt.KdfParams:
    return fmt.KdfParams(n=2**log_n, r=fmt.DEFAULT_KDF.r, p=fmt.DEFAULT_KDF.p)


@app.command()
def init(file: VaultFile = None, kdf_log_n: LogN = DEFAULT_LOG_N) -> None:
    """Create an empty vault (never overwrites one)."""
    with _reported():
        path = _path(file)
        FileVault.create(path, _master(path, PASSWORD_VAR, KEY_FILE_VAR, True), _kdf(kdf_log_n))
        typer.echo(f"created {path}; add secrets with `etlc vault put <path>#<key>`")


@app.command()
def put(name: Name, file: VaultFile = None) -> None:
    """Store a secret, read from stdin (one trailing newline dropped) or a hidden prompt."""
    with _reported():
        vault = _open(file)
        ref = Reference.entry(name, vault.location)
        if sys.stdin.isatty():
            value: str = typer.prompt(str(ref), hide_input=True, confirmation_prompt=True)
        else:
            value = _stdin_value(vault.location)
        vault.put(ref, Secret(value))
        typer.echo(f"stored {ref}")


@app.command()
def get(
    name: Name,
    file: VaultFile = None,
    reveal: Annotated[bool, typer.Option("--reveal", help="Print the value itself.")] = False,
) -> None:
    """Check that a secret exists and decrypts; print it only with --reveal."""
    with _reported():
        vault = _open(file)
        ref = Reference.entry(name, vault.location)
        secret = vault.get(ref.path, ref.key)
        if reveal:
            typer.echo(secret.reveal())
        else:
            typer.echo(f"{ref}: {secret} (add --reveal to print the value)")


@app.command(name="list")
def list_(file: VaultFile = None) -> None:
    """The references of every entry, one a line (no values)."""
    with _reported():
        for name in _open(file).names():
            typer.echo(f"vault://{name}")


@app.command()
def rm(name: Name, file: VaultFile = None) -> None:
    """Remove a secret."""
    with _reported():
        vault = _open(file)
        ref = Reference.entry(name, vault.location)
        vault.remove(ref)
        typer.echo(f"removed {ref}")


@app.command(name="rotate-key")
def rotate_key(file: VaultFile = None, kdf_log_n: LogN = DEFAULT_LOG_N) -> None:
    """Re-encrypt every secret under a new master key.

    The new key comes from $ETLC_VAULT_NEW_PASSWORD, the file named by
    $ETLC_VAULT_NEW_KEY_FILE, or a hidden prompt; the current one as for every command.
    """
    with _reported():
        vault = _open(file)
        vault.names()  # the current key is checked before a new one is asked for
        new = _master(vault.path, NEW_PASSWORD_VAR, NEW_KEY_FILE_VAR, confirm=True)
        vault.rotate(new, _kdf(kdf_log_n))
        typer.echo(f"rotated the master key of {vault.path}")
