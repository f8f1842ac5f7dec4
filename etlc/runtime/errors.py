"""The runtime's error taxonomy: transient errors are retried, terminal ones are not.

Retries look at exception *types* (Python classes, and Java classes along a JVM error's cause
chain), never at message text. Every error that leaves a step names the step, and its text is
scrubbed of every secret value the run has resolved (a driver's message may quote the
connection string it was given).
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from typing import Any

from etlc.vault import redaction
from etlc.vault.errors import VaultError

# Java exception classes (anywhere in the cause chain) that mean "try again later".
TRANSIENT_JAVA = frozenset(
    {
        "java.net.ConnectException",
        "java.net.SocketTimeoutException",
        "java.net.SocketException",
        "java.net.NoRouteToHostException",
        "java.io.InterruptedIOException",
        "java.util.concurrent.TimeoutException",
        "java.sql.SQLTransientException",
        "java.sql.SQLTransientConnectionException",
        "java.sql.SQLRecoverableException",
        "java.sql.SQLTimeoutException",
        "java.sql.SQLTransactionRollbackException",
        "org.apache.kafka.common.errors.TimeoutException",
        "org.apache.kafka.common.errors.NetworkException",
        "org.apache.kafka.common.errors.RetriableException",
        "software.amazon.awssdk.core.exception.SdkClientException",
        "org.apache.hadoop.fs.s3a.AWSServiceThrottledException",
        "org.apache.hadoop.fs.s3a.AWSStatus500Exception",
    }
)
TRANSIENT_PYTHON = (ConnectionError, TimeoutError)
MAX_CAUSES = 32
# The JVM reports ENOSPC and EDQUOT as plain IOExceptions with the C library's text.
_NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")


def error_condition(error: object) -> str:
    """A Spark error's condition (``PATH_NOT_FOUND``, ``KAFKA_DATA_LOSS.…``): getCondition from
    Spark 4.0 on, getErrorClass in 3.5; "" when it has none or the gateway is gone. A py4j
    object answers every name, so a method it lacks shows only when called."""
    for name in ("getCondition", "getErrorClass"):
        get = getattr(error, name, None)
        if not callable(get):
            continue
        try:
            return str(get() or "")
        except Exception:  # not this Spark's method, or a dead gateway
            continue
    return ""


class EtlcError(Exception):
    """An error the framework understands: one line of text, the step, retryable or not."""

    transient = False
    kind = "error"

    def __init__(self, message: str, step: str | None = None) -> None:
        message = redaction.scrub(message)
        super().__init__(message)
        self.message = message
        self.step = step

    def __str__(self) -> str:
        where = f"step `{self.step}`: " if self.step else ""
        # Scrubbed again: a secret resolved after this error was made is hidden too.
        return redaction.scrub(f"{where}{self.message}")

    def at(self, step: str) -> EtlcError:
        if self.step is None:
            self.step = step
        return self


class TransientError(EtlcError):
    transient = True
    kind = "transient"


class TerminalError(EtlcError):
    kind = "terminal"


class ConfigurationError(TerminalError):
    kind = "configuration"


class AuthenticationError(TerminalError):
    kind = "authentication"


class VaultAccessError(TerminalError):
    """A secret could not be had from the vault (wrong key, damaged file, missing entry)."""

    kind = "vault"


class DataLossError(TerminalError):
    """Records a stream had not read are gone from its source (deleted, aged out)."""

    kind = "data_loss"


class NoSpaceError(TerminalError):
    """A directory the run writes to is on a full filesystem."""

    kind = "no_space"


class SchemaIncompatibleError(TerminalError):
    kind = "schema_incompatible"


class ValidationFailedError(TerminalError):
    """Records violated their Avro schema; carries the per-rule counts and a sample."""

    kind = "validation"

    def __init__(
        self,
        message: str,
        step: str,
        violations: dict[str, int],
        sample: list[dict[str, Any]],
    ) -> None:
        super().__init__(message, step)
        self.violations = violations
        self.sample = sample
        self.logged = False  # whether its `validation_failed` line is out already


def java_origin(exc: BaseException) -> Any | None:
    """The JVM exception behind a Py4J or PySpark error, if any. A failed streaming query's
    exception (``StreamingQuery.exception()``) holds no JVM side of its own, only its cause's,
    converted (``_cause``): that one stands in for it."""
    current: BaseException | None = exc
    for _ in range(MAX_CAUSES):
        if current is None:
            return None
        origin = getattr(current, "_origin", None) or getattr(current, "java_exception", None)
        if origin is not None:
            return origin
        current = getattr(current, "_cause", None)
    return None


def java_chain(exc: BaseException) -> Iterator[Any]:
    """Each JVM exception along the cause chain of ``exc`` (py4j objects), at most MAX_CAUSES;
    it ends early where the gateway cannot say what caused one."""
    origin = java_origin(exc)
    for _ in range(MAX_CAUSES):
        if origin is None:
            return
        yield origin
        try:
            origin = origin.getCause()
        except Exception:  # a dead gateway cannot tell us more
            return


def java_classes(exc: BaseException) -> Iterator[str]:
    """Class names along the Java cause chain of a Py4J / PySpark captured exception."""
    for origin in java_chain(exc):
        try:
            yield str(origin.getClass().getName())
        except Exception:  # a dead gateway cannot tell us more
            return


def java_cause(exc: BaseException, name: str) -> Any | None:
    """The Java exception of class ``name`` along the cause chain, if any (a py4j object)."""
    for origin in java_chain(exc):
        try:
            if str(origin.getClass().getName()) == name:
                return origin
        except Exception:  # a dead gateway cannot tell us more
            return None
    return None


def no_space_left(exc: BaseException) -> bool:
    """Whether a write failed because its filesystem is full. The JVM gives that no type of
    its own, so its text is read here; only to name the directory, never to decide a retry."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    # A failed query's exception carries the JVM's text, not always its Java side.
    if any(text in str(exc) for text in _NO_SPACE_TEXT):
        return True
    for origin in java_chain(exc):
        try:
            message = str(origin.getMessage() or "")
        except Exception:  # a dead gateway cannot tell us more
            return False
        if any(text in message for text in _NO_SPACE_TEXT):
            return True
    return False


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, EtlcError):
        return exc.transient
    if isinstance(exc, TRANSIENT_PYTHON):
        return True
    return any(name in TRANSIENT_JAVA for name in java_classes(exc))


def summary(exc: BaseException) -> str:
    """The first line of an error's own description, without the JVM stack trace."""
    text = getattr(exc, "_desc", None) or _java_text(exc) or str(exc) or type(exc).__name__
    first = str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
    return first[:500]


def _java_text(exc: BaseException) -> str | None:
    """A raw py4j error's Java exception (`class: message`); its own text starts with the
    py4j call that failed, which says nothing to a user."""
    origin = getattr(exc, "java_exception", None)
    try:
        return None if origin is None else str(origin.toString())
    except Exception:  # a dead gateway
        return None


def classify(exc: BaseException, step: str | None) -> EtlcError:
    """Wrap any exception into the taxonomy, once, with the step named."""
    if isinstance(exc, EtlcError):
        return exc.at(step) if step else exc
    if isinstance(exc, VaultError):
        vault_error = VaultAccessError(str(exc), step)
        vault_error.__cause__ = exc
        return vault_error
    cls: type[EtlcError] = TransientError if is_transient(exc) else TerminalError
    err = cls(f"{type(exc).__name__}: {summary(exc)}", step)
    err.__cause__ = exc
    return err
