"""Connection profiles as the driver opens them: named in a definition, defined per
environment, secrets from the vault.

An environment file holds, under ``connections``, one object per profile::

    "crm": {"system": "mysql", "host": "127.0.0.1", "port": 3306, "database": "crm",
            "user": "etl", "password": "vault://db/crm#password"}

A step's driver code asks for the profile's type (:mod:`etlc.profiles`), and gets it with
its ``vault://`` references resolved as :class:`Secret` objects (once per run, on the
driver), or a :class:`ConfigurationError` naming the file, the profile and the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from etlc.profiles import Profile, ProfileError, Resolve
from etlc.runtime.errors import ConfigurationError

P = TypeVar("P", bound=Profile)


def open_profile(name: str, doc: object, source: str, resolve: Resolve, kind: type[P]) -> P:
    """The profile ``doc`` (``connections.<name>`` of the environment file ``source``) as a
    ``kind``, its vault references resolved by ``resolve``."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("system"), str):
        raise ConfigurationError(f"{source}: connection `{name}` needs a `system`")
    try:
        return kind.parse(name, doc, resolve)
    except ProfileError as err:
        raise ConfigurationError(f"{source}: {err}") from None
