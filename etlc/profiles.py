"""Connection profiles, one frozen type per system.

An environment file's ``connections`` object holds one profile per name, and its ``system``
decides its type here. The compiler names the type each step needs; the driver asks the
environment for exactly that type (``env.connection("crm", PostgresProfile)``, which mypy
checks against the connector's constructor), and the connector reads typed fields instead of
a map of text. A profile refuses, when it is made, what cannot work: an unknown field, a
credential that is not a vault reference, a Kafka SASL setting without its protocol. Errors
name the profile and the field, never a value: a misplaced value may well be a password.

Imports neither the compiler nor the runtime, nor pyspark: both sides share these types.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from etlc.vault.reference import CREDENTIAL_NAME, is_reference
from etlc.vault.secret import Secret

Resolve = Callable[[str], Secret]
P = TypeVar("P", bound="Profile")

# How a field's value is read: plain text, a vault reference (resolved to a Secret on the
# driver), or either.
TEXT = "text"
SECRET = "secret"
EITHER = "either"


class ProfileError(ValueError):
    """A profile that cannot work; the message names the profile and the field."""


def _kind(value: str) -> dict[str, str]:
    return {"value": value}


def _properties_field() -> Any:
    """The client's own settings (JDBC driver properties, Kafka client settings, S3A
    options), as text; never read from the vault, so never a credential."""
    return field(default_factory=dict)


# Required fields come before those with defaults, and each concrete profile ends with its
# `properties`: drivers run on Python 3.9, whose dataclasses have no kw_only.
@dataclass(frozen=True)
class Profile:
    system: ClassVar[str]
    name: str

    @classmethod
    def document_keys(cls) -> frozenset[str]:
        """The keys a profile document of this type may hold."""
        return frozenset({"system", *(f.name for f in dataclasses.fields(cls) if f.name != "name")})

    @classmethod
    def parse(cls: type[P], name: str, doc: Mapping[str, Any], resolve: Resolve) -> P:
        """The profile ``doc`` (an environment file's ``connections.<name>``), its vault
        references resolved by ``resolve``."""
        if doc.get("system") != cls.system:
            raise ProfileError(
                f"connection `{name}` is a `{doc.get('system')}` profile, not `{cls.system}`"
            )
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "name"}
        known = cls.document_keys()
        unknown = sorted(k for k in doc if k not in known)
        if unknown:
            raise ProfileError(
                f"{cls.system} connection `{name}` has unknown fields: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        values: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "properties":
                values[key] = _properties(name, value)
            elif key != "system":
                kind = fields[key].metadata.get("value", TEXT)
                values[key] = _value(name, key, value, kind, resolve)
        missing = [
            k
            for k, f in fields.items()
            if k not in values
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ProfileError(f"connection `{name}` has no `{missing[0]}`")
        return cls(name=name, **values)


def _text(name: str, key: str, value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ProfileError(f"connection `{name}`.`{key}` must be text, a number or a boolean")


def _value(name: str, key: str, value: object, kind: str, resolve: Resolve) -> str | Secret:
    if isinstance(value, str) and is_reference(value):
        if kind == TEXT:
            raise ProfileError(
                f"connection `{name}`: `{key}` is plain text; a vault reference is not "
                "resolved here"
            )
        return resolve(value)
    if kind == SECRET:
        raise ProfileError(
            f"connection `{name}`: `{key}` must be a vault reference (vault://<path>#<key>)"
        )
    return _text(name, key, value)


def _properties(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ProfileError(f"connection `{name}`.`properties` must be an object")
    return {str(k): _text(name, f"properties.{k}", v) for k, v in value.items()}


# --- PostgreSQL and MySQL ------------------------------------------------------------------

# A host name, an IPv4 address or a bracketed IPv6 address: pasted into the JDBC URL as it
# is, so a host such as `h/db?socketFactory=...` must not add driver properties of its own.
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:.]{2,45}\]")


@dataclass(frozen=True)
class JdbcProfile(Profile):
    default_port: ClassVar[str]
    host: str
    database: str
    user: str
    password: Secret = field(repr=False, metadata=_kind(SECRET))
    description: str = ""
    port: str = ""
    properties: Mapping[str, str] = _properties_field()

    def __post_init__(self) -> None:
        if not _HOST.fullmatch(self.host):
            raise ProfileError(f"connection `{self.name}`: `host` is not a host name or address")
        if not (self.address_port.isdigit() and 0 < int(self.address_port) < 65536):
            raise ProfileError(f"connection `{self.name}`: `port` is not a port number")

    @property
    def address_port(self) -> str:
        return self.port or self.default_port


@dataclass(frozen=True)
class PostgresProfile(JdbcProfile):
    system: ClassVar[str] = "postgres"
    default_port: ClassVar[str] = "5432"


@dataclass(frozen=True)
class MySqlProfile(JdbcProfile):
    system: ClassVar[str] = "mysql"
    default_port: ClassVar[str] = "3306"


# --- Kafka ---------------------------------------------------------------------------------

PROTOCOLS = frozenset({"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"})
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# Client settings the profile's own fields own; `properties` may not set them.
KAFKA_OWNED_SETTINGS = frozenset(
    {"bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.jaas.config"}
)


@dataclass(frozen=True)
class KafkaProfile(Profile):
    system: ClassVar[str] = "kafka"
    bootstrap_servers: str
    description: str = ""
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    username: str | Secret | None = field(default=None, metadata=_kind(EITHER))
    password: Secret | None = field(default=None, repr=False, metadata=_kind(SECRET))
    properties: Mapping[str, str] = _properties_field()

    def __post_init__(self) -> None:
        # Written in either case in the file; Kafka's clients take upper case.
        object.__setattr__(self, "security_protocol", self.security_protocol.upper())
        object.__setattr__(self, "sasl_mechanism", self.sasl_mechanism.upper())
        where = f"kafka connection `{self.name}`"
        if self.security_protocol not in PROTOCOLS:
            raise ProfileError(
                f"{where}: security_protocol must be one of {', '.join(sorted(PROTOCOLS))}"
            )
        if self.sasl:
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ProfileError(
                    f"{where} uses {self.security_protocol}: set `sasl_mechanism` to one of "
                    f"{', '.join(SASL_MECHANISMS)}"
                )
            if self.username is None:
                raise ProfileError(f"connection `{self.name}` has no `username`")
            if self.password is None:
                raise ProfileError(
                    f"connection `{self.name}` has no secret `password` (a vault reference)"
                )
        elif self.username is not None or self.password is not None or self.sasl_mechanism:
            raise ProfileError(
                f"{where}: username, password and sasl_mechanism need security_protocol "
                "SASL_SSL or SASL_PLAINTEXT"
            )
        for key, value in self.properties.items():
            if key in KAFKA_OWNED_SETTINGS:
                raise ProfileError(
                    f"{where}: set `{key}` through the profile's fields, not `properties`"
                )
            if CREDENTIAL_NAME.search(key) or is_reference(value):
                raise ProfileError(
                    f"{where}: `properties.{key}` cannot carry a credential (properties are "
                    "plain text; only `password` is read from the vault)"
                )

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")


# --- S3 ------------------------------------------------------------------------------------

_CREDENTIAL_PROPERTY = re.compile(r"(?i)key|secret|token|password|credential")


@dataclass(frozen=True)
class S3Profile(Profile):
    system: ClassVar[str] = "s3"
    endpoint: str = ""  # AWS's own when empty
    region: str = ""
    path_style_access: str = ""
    access_key: Secret | None = field(default=None, repr=False, metadata=_kind(SECRET))
    secret_key: Secret | None = field(default=None, repr=False, metadata=_kind(SECRET))
    session_token: Secret | None = field(default=None, repr=False, metadata=_kind(SECRET))
    properties: Mapping[str, str] = _properties_field()

    def __post_init__(self) -> None:
        if self.path_style_access not in ("", "true", "false"):
            raise ProfileError(
                f"connection `{self.name}`: `path_style_access` must be true or false"
            )
        pair = (self.access_key is None, self.secret_key is None)
        if pair[0] != pair[1] or (self.session_token is not None and all(pair)):
            raise ProfileError(
                f"connection `{self.name}` needs both `access_key` and `secret_key` "
                "(or neither, for S3A's default credential chain)"
            )
        for key in self.properties:
            if _CREDENTIAL_PROPERTY.search(key.removeprefix("fs.s3a.")):
                raise ProfileError(
                    f"connection `{self.name}`: property `{key}` looks like a credential; "
                    "give credentials as `access_key`/`secret_key` vault references"
                )

    @property
    def has_keys(self) -> bool:
        return self.access_key is not None


PROFILES: Mapping[str, type[Profile]] = {
    p.system: p for p in (PostgresProfile, MySqlProfile, KafkaProfile, S3Profile)
}
