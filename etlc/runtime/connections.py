"""Connection profiles: named in a definition, defined per environment, secrets from the vault.

An environment file holds, under ``connections``, one object per profile::

    "crm": {"system": "mysql", "host": "127.0.0.1", "port": 3306, "database": "crm",
            "user": "etl", "password": "vault://db/crm#password"}

Values that are ``vault://`` references become :class:`Secret` objects when the profile is
opened (once per run, on the driver); everything else stays plain text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from etlc.runtime.errors import ConfigurationError
from etlc.vault import Secret
from etlc.vault.reference import is_reference


@dataclass(frozen=True)
class Connection:
    name: str
    system: str
    settings: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict, repr=False)

    def setting(self, key: str, default: str | None = None) -> str:
        if key in self.settings:
            return self.settings[key]
        if default is not None:
            return default
        raise ConfigurationError(f"connection `{self.name}` has no `{key}`")

    def secret(self, key: str) -> Secret:
        if key not in self.secrets:
            hint = " (it must be a vault:// reference)" if key in self.settings else ""
            raise ConfigurationError(f"connection `{self.name}` has no secret `{key}`{hint}")
        return self.secrets[key]

    @classmethod
    def from_profile(
        cls, name: str, profile: object, source: str, resolve: Callable[[str], Secret]
    ) -> Connection:
        if not isinstance(profile, Mapping) or not isinstance(profile.get("system"), str):
            raise ConfigurationError(f"{source}: connection `{name}` needs a `system`")
        settings: dict[str, str] = {}
        secrets: dict[str, Secret] = {}
        for key, value in profile.items():
            if isinstance(value, str) and is_reference(value):
                secrets[key] = resolve(value)
            elif isinstance(value, bool):
                settings[key] = str(value).lower()
            elif isinstance(value, str | int | float):
                settings[key] = str(value)
            elif key == "properties" and isinstance(value, Mapping):
                settings.update({f"properties.{k}": str(v) for k, v in value.items()})
            else:
                raise ConfigurationError(
                    f"{source}: connection `{name}`.`{key}` must be text, a number or a boolean"
                )
        return cls(name, str(profile["system"]), settings, secrets)

    def properties(self) -> dict[str, str]:
        """Driver properties given under `properties` in the profile."""
        prefix = "properties."
        return {k[len(prefix) :]: v for k, v in self.settings.items() if k.startswith(prefix)}
