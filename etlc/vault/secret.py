"""``Secret``: a credential that prints as ``[hidden]`` everywhere.

Secret values travel as ``Secret`` from the vault to the one call that needs the raw text
(the JDBC ``password`` option, the S3A key conf, the Kafka SASL conf), which calls
:meth:`Secret.reveal`. Making one registers its value for redaction, so even a revealed value
that wanders into a log line or an exception message is cut out of it.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn, final

from etlc.vault import redaction


@final
class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__}")
        self._value = value
        redaction.register(value)

    def reveal(self) -> str:
        """The raw value: call this only at the last call that needs it, never to log it."""
        return self._value

    def __str__(self) -> str:
        return redaction.HIDDEN

    def __repr__(self) -> str:
        return redaction.HIDDEN

    def __format__(self, spec: str) -> str:
        return redaction.HIDDEN

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    # A Secret must not be pickled: that is how a value would travel into a Spark closure and
    # on to the executors, outside the driver where redaction runs.
    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: reveal it on the driver, where it is used")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self
