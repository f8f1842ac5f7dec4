"""``vault://<path>#<key>`` references, as they stand in environment files and definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from etlc.vault.errors import Problem, VaultError

SCHEME = "vault://"
# The same shape the compiler's lint rule E502 accepts.
_PATH = r"[A-Za-z0-9_.\-/]+"
_KEY = r"[A-Za-z0-9_.\-]+"
REFERENCE = re.compile(rf"^vault://({_PATH})#({_KEY})\Z")
_NAME = re.compile(rf"^(?:vault://)?({_PATH})#({_KEY})\Z")
MAX_NAME_LENGTH = 256

# Names under which a value must be a vault reference, never a literal (lint rule E501).
CREDENTIAL_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)$",
    re.IGNORECASE,
)


@dataclass(frozen=True, order=True)
class Reference:
    path: str  # e.g. db/crm
    key: str  # e.g. password

    @property
    def name(self) -> str:
        """The entry name in a vault file: ``db/crm#password``."""
        return f"{self.path}#{self.key}"

    def __str__(self) -> str:
        return f"{SCHEME}{self.name}"

    @classmethod
    def parse(cls, text: str, vault: str) -> Reference:
        """A full ``vault://path#key`` reference; the text is not echoed if it is malformed."""
        return cls._match(REFERENCE, text, vault)

    @classmethod
    def entry(cls, text: str, vault: str) -> Reference:
        """An entry name as the CLI takes it: ``path#key`` or a full reference."""
        return cls._match(_NAME, text, vault)

    @classmethod
    def _match(cls, pattern: re.Pattern[str], text: str, vault: str) -> Reference:
        match = _matched(pattern, text)
        if match is None:
            raise VaultError(
                Problem.BAD_REFERENCE,
                vault,
                "malformed vault reference: write vault://<path>#<key> "
                "(letters, digits, `_.-/` in the path; letters, digits, `_.-` in the key)",
            )
        return cls(match.group(1), match.group(2))


def is_reference(text: str) -> bool:
    return text.startswith(SCHEME)


def is_well_formed(text: str) -> bool:
    """Whether ``text`` is a reference :meth:`Reference.parse` accepts (lint rule E502)."""
    return _matched(REFERENCE, text) is not None


def _matched(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    # Bounded before matching: a reference is a short name, never a document.
    return pattern.match(text) if len(text) <= MAX_NAME_LENGTH else None
