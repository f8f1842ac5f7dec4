"""Environment configuration: ``pipelines/env/<env>.json``, read by the driver at run time.

The same driver runs in dev and prod; only this file changes. It holds the values of the
``${var}`` references in the definition, Spark settings, and etlc's own settings.

Credentials are never values here: a variable may hold a ``vault://<path>#<key>`` reference,
which :meth:`Environment.secret` resolves (once per run, on the driver) through the backend
the file's ``vault`` object names (``{"backend": "file", "path": ...}`` by default; ``env``;
``hadoop`` for Hadoop credential providers, :mod:`etlc.runtime.hadoop_credentials`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from etlc.profiles import Profile
from etlc.runtime import (
    environment_file,
    # Imported so that the `hadoop` backend registers its kind wherever an environment file
    # is read; it imports pyspark only when it resolves a secret.
    hadoop_credentials,  # noqa: F401
)
from etlc.runtime.connections import open_profile
from etlc.runtime.errors import ConfigurationError, VaultAccessError
from etlc.vault import FileVault, Reference, Secret, SecretBackend, VaultError, open_backend
from etlc.vault.reference import CREDENTIAL_NAME, is_reference

P = TypeVar("P", bound=Profile)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Settings:
    stage_dir: str = ".etlc/stage"  # where extract outputs land as validated Avro files
    # Serialize every transform output (and a one-pass run's extracts) through its Avro schema.
    avro_boundary: bool = True
    sample_size: int = 20  # offending records logged when validation fails
    keep_stage: bool = False  # keep the stage files after a successful run (debugging)
    spark_log_level: str = "WARN"  # Spark's own log level; etlc's JSON lines are separate
    dead_letter_dir: str = ".etlc/dead-letter"  # <dir>/<pipeline>/<run id>.jsonl
    # Records a quarantine expectation set aside: <dir>/<pipeline>/<step>/<run id>/.
    quarantine_dir: str = ".etlc/quarantine"
    # A local folder: <dir>/<pipeline>/<run id>.jsonl (the run's lines) and .json (results).
    runs_dir: str = ".etlc/runs"
    # Streaming: each load's query checkpoints under <dir>/<pipeline>/<load id>.
    checkpoint_dir: str = ".etlc/checkpoints"
    trigger_interval: str = "1 second"  # how often a micro-batch starts
    # Incremental extracts: the positions a load other than a database's commits, under
    # <dir>/<pipeline>/<load id>/ (a database load keeps them in its own database).
    state_dir: str = ".etlc/state"
    # A micro-batch that leaves more of the driver's heap in use than this logs a warning.
    memory_warning_fraction: float = 0.8
    # A stream that ran this long, every load committing, before it failed has a new outage:
    # its retry budget starts over, so a stream survives outages days apart.
    retry_reset_after: str = "10 minutes"
    # OpenLineage run events: always JSON log lines; POSTed here too when set (http(s) URL).
    openlineage_url: str = ""
    openlineage_namespace: str = "etlc"  # the job's namespace in the events
    openlineage_interval: str = "1 minute"  # streaming: a RUNNING event this often
    openlineage_api_key: str = ""  # a vault reference: sent as `Authorization: Bearer <key>`


@dataclass(frozen=True)
class Environment:
    name: str
    path: str
    variables: Mapping[str, str] = field(default_factory=dict)
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    settings: Settings = Settings()
    profiles: Mapping[str, Any] = field(default_factory=dict, repr=False)
    vault: SecretBackend = field(
        default_factory=lambda: FileVault.configure({}, os.environ), compare=False, repr=False
    )
    # Secrets resolved so far in this run, by reference: each is fetched once, on the driver.
    _secrets: dict[str, Secret] = field(default_factory=dict, init=False, compare=False, repr=False)

    def interpolate(self, text: str) -> str:
        def value(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in self.variables:
                raise ConfigurationError(
                    f"variable `{var}` is not defined in {self.path} (add it under `variables`)"
                )
            if is_reference(self.variables[var]):
                # Spliced into a URL, a path or a query, a secret would leave as plain text.
                raise ConfigurationError(
                    f"variable `{var}` in {self.path} is a vault reference and cannot be "
                    "interpolated into text; pass it to the step as a secret"
                )
            return self.variables[var]

        return _VAR.sub(value, text)

    def secret(self, name_or_ref: str) -> Secret:
        """The secret named by a ``vault://`` reference, or by a variable that holds one."""
        if is_reference(name_or_ref):
            ref, what = name_or_ref, "a vault reference"
        elif name_or_ref in self.variables and is_reference(self.variables[name_or_ref]):
            ref, what = self.variables[name_or_ref], f"variable `{name_or_ref}`"
        else:
            raise ConfigurationError(
                f"`{name_or_ref}` is neither a vault reference nor a variable in {self.path} "
                "that holds one (vault://<path>#<key>)"
            )
        cached = self._secrets.get(ref)
        if cached is not None:
            return cached
        try:
            secret = self.vault.resolve(ref)
        except VaultError as exc:
            raise VaultAccessError(f"{what}: {exc}") from exc
        self._secrets[ref] = secret
        return secret

    def connection(self, name: str, kind: type[P]) -> P:
        """The connection profile ``name`` from `connections`, as a ``kind`` (the system's
        type), its vault references resolved as secrets."""
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise ConfigurationError(
                f"connection `{name}` is not defined in {self.path} (defined: {known})"
            )
        return open_profile(name, self.profiles[name], self.path, self.secret, kind)

    @classmethod
    def load(
        cls,
        path: str | Path,
        environ: Mapping[str, str] = os.environ,
        defaults: Settings = Settings(),
    ) -> Environment:
        """Read an environment file; ``environ`` feeds the vault backend (master key, paths).
        ``defaults`` are the settings the file's ``etlc`` object does not set (the project's
        stage and checkpoint folders)."""
        p = Path(path)
        try:
            doc = environment_file.read(p)
        except environment_file.EnvironmentFileError as exc:
            raise ConfigurationError(str(exc)) from None
        return cls.from_document(doc, p, environ, defaults)

    @classmethod
    def from_document(
        cls,
        doc: Mapping[str, Any],
        path: str | Path,
        environ: Mapping[str, str] = os.environ,
        defaults: Settings = Settings(),
    ) -> Environment:
        """The environment an already read file holds: as written, or as etlc's Scala classes
        read it (:func:`etlc.runtime.jvm_config.load_environment`)."""
        p = Path(path)
        try:
            variables = environment_file.strings(doc.get("variables", {}), p, "variables")
            spark_conf = environment_file.strings(doc.get("spark", {}), p, "spark")
        except environment_file.EnvironmentFileError as exc:
            raise ConfigurationError(str(exc)) from None
        _check_credentials(variables, p)
        return cls(
            name=p.stem,
            path=str(p),
            variables=variables,
            spark_conf=spark_conf,
            settings=_settings(doc.get("etlc", {}), p, defaults),
            profiles=_profiles(doc.get("connections", {}), p),
            vault=_vault(doc.get("vault", {}), p, environ),
        )


def _check_credentials(variables: Mapping[str, str], path: Path) -> None:
    """References must parse, and a credential is never a literal. Errors name the variable,
    never its value: a malformed reference may well be the password itself."""
    for name, value in sorted(variables.items()):
        if is_reference(value):
            try:
                Reference.parse(value, str(path))
            except VaultError:
                raise ConfigurationError(
                    f"{path}: variable `{name}` is a malformed vault reference "
                    "(write vault://<path>#<key>)"
                ) from None
        elif CREDENTIAL_NAME.search(name):
            raise ConfigurationError(
                f"{path}: variable `{name}` holds a literal credential; store it with "
                "`etlc vault put <path>#<key>` and write vault://<path>#<key>"
            )


def _profiles(obj: Any, path: Path) -> dict[str, Any]:
    """Connection profiles; credential-named fields must be vault references."""
    if not isinstance(obj, dict) or not all(isinstance(v, dict) for v in obj.values()):
        raise ConfigurationError(f"{path}: `connections` must map names to objects")
    for name, profile in sorted(obj.items()):
        for key, value in sorted(profile.items()):
            if CREDENTIAL_NAME.search(key) and not (isinstance(value, str) and is_reference(value)):
                raise ConfigurationError(
                    f"{path}: `connections.{name}.{key}` holds a literal credential; store it "
                    "with `etlc vault put <path>#<key>` and write vault://<path>#<key>"
                )
    return obj


def _vault(obj: Any, path: Path, environ: Mapping[str, str]) -> SecretBackend:
    if not isinstance(obj, dict) or not all(isinstance(v, str) for v in obj.values()):
        raise ConfigurationError(f"{path}: `vault` must be an object of strings")
    try:
        return open_backend(obj, environ)
    except VaultError as exc:
        raise ConfigurationError(f"{path}: `vault`: {exc.detail}") from None


def _settings(obj: Any, path: Path, defaults: Settings) -> Settings:
    if not isinstance(obj, dict):
        raise ConfigurationError(f"{path}: `etlc` must be an object")
    unknown = sorted(set(obj) - set(defaults.__dataclass_fields__))
    if unknown:
        raise ConfigurationError(f"{path}: unknown `etlc` settings {unknown}")
    values: dict[str, Any] = {}
    for key, value in obj.items():
        expected = type(getattr(defaults, key))
        if type(value) is not expected:
            raise ConfigurationError(f"{path}: `etlc.{key}` must be a {expected.__name__}")
        values[key] = value
    return replace(defaults, **values)
