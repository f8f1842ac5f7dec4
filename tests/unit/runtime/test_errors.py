"""The error taxonomy decides retries by type, including along Java cause chains."""

from __future__ import annotations

import errno
from typing import Any

from etlc.runtime.errors import (
    ConfigurationError,
    TerminalError,
    TransientError,
    classify,
    is_transient,
    java_cause,
    java_classes,
    java_origin,
    no_space_left,
    summary,
)


class FakeJavaClass:
    def __init__(self, name: str) -> None:
        self.name = name

    def getName(self) -> str:  # noqa: N802 - mirrors the Java API
        return self.name


class FakeJavaException:
    def __init__(self, name: str, cause: Any = None) -> None:
        self.cls = FakeJavaClass(name)
        self.cause = cause

    def getClass(self) -> FakeJavaClass:  # noqa: N802
        return self.cls

    def getCause(self) -> Any:  # noqa: N802
        return self.cause


class CapturedLikeError(Exception):
    """Shaped like pyspark's captured exceptions: the JVM exception in ``_origin``."""

    def __init__(self, origin: Any, desc: str) -> None:
        super().__init__(desc)
        self._origin = origin
        self._desc = desc


def test_java_cause_chain_decides_transience() -> None:
    chain = FakeJavaException(
        "org.apache.spark.SparkException", FakeJavaException("java.net.ConnectException")
    )
    exc = CapturedLikeError(chain, "Job aborted\n\tat org.apache...")
    assert list(java_classes(exc)) == [
        "org.apache.spark.SparkException",
        "java.net.ConnectException",
    ]
    assert is_transient(exc)
    err = classify(exc, "orders")
    assert isinstance(err, TransientError)
    assert err.step == "orders"
    assert str(err) == "step `orders`: CapturedLikeError: Job aborted"
    assert err.__cause__ is exc


def test_unknown_java_errors_are_terminal() -> None:
    exc = CapturedLikeError(
        FakeJavaException("org.apache.spark.sql.AnalysisException"), "PATH_NOT_FOUND"
    )
    assert not is_transient(exc)
    assert isinstance(classify(exc, "x"), TerminalError)


def test_python_network_errors_are_transient() -> None:
    assert isinstance(classify(ConnectionRefusedError("refused"), None), TransientError)
    assert isinstance(classify(TimeoutError(), None), TransientError)
    assert isinstance(classify(KeyError("k"), None), TerminalError)


def test_etlc_errors_pass_through_and_keep_their_first_step() -> None:
    err = ConfigurationError("missing variable")
    assert classify(err, "a") is err
    assert classify(err, "b").step == "a"
    assert str(err) == "step `a`: missing variable"


def test_summary_is_the_first_line_only() -> None:
    assert summary(ValueError("first\nsecond")) == "first"
    assert summary(ValueError("")) == "ValueError"


def test_a_dead_gateway_ends_the_chain() -> None:
    class Broken:
        def getClass(self) -> Any:  # noqa: N802
            raise RuntimeError("gateway closed")

    assert list(java_classes(CapturedLikeError(Broken(), "x"))) == []


class Py4JLikeError(Exception):
    """Shaped like py4j's Py4JJavaError: the JVM exception in ``java_exception``, and a text
    that starts with the call that failed."""

    def __init__(self, origin: Any) -> None:
        super().__init__("An error occurred while calling z:etlc.jvm.transform.JvmSteps.apply.")
        self.java_exception = origin


class FakeJavaThrowable(FakeJavaException):
    def toString(self) -> str:  # noqa: N802
        return f"{self.cls.name}: it broke\n\tat somewhere"


def test_java_cause_finds_a_class_along_the_chain() -> None:
    inner = FakeJavaException("etlc.jvm.transform.JvmStepException")
    exc = Py4JLikeError(FakeJavaException("java.lang.RuntimeException", inner))
    assert java_cause(exc, "etlc.jvm.transform.JvmStepException") is inner
    assert java_cause(exc, "java.io.IOException") is None
    assert java_cause(ValueError("x"), "java.io.IOException") is None


def test_a_raw_py4j_error_is_summarized_by_its_java_exception() -> None:
    exc = Py4JLikeError(FakeJavaThrowable("java.lang.IllegalStateException"))
    assert summary(exc) == "java.lang.IllegalStateException: it broke"


class MessagedJavaException(FakeJavaException):
    def __init__(self, name: str, message: str | None, cause: Any = None) -> None:
        super().__init__(name, cause)
        self.message = message

    def getMessage(self) -> str | None:  # noqa: N802
        return self.message


def test_a_full_filesystem_is_recognised_in_python_and_along_the_java_chain() -> None:
    assert no_space_left(OSError(errno.ENOSPC, "No space left on device"))
    assert no_space_left(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not no_space_left(OSError(errno.EACCES, "Permission denied"))
    full = MessagedJavaException("java.io.IOException", "No space left on device")
    task = MessagedJavaException("org.apache.spark.SparkException", None, full)
    assert no_space_left(CapturedLikeError(task, "Task failed while writing rows"))
    other = MessagedJavaException("java.io.IOException", "Stream closed")
    assert not no_space_left(CapturedLikeError(other, "Task failed"))
    assert not no_space_left(RuntimeError("no Java side"))
    assert no_space_left(RuntimeError("java.io.IOException: No space left on device"))

    class Broken:
        def getMessage(self) -> str:  # noqa: N802
            raise RuntimeError("gateway closed")

    assert not no_space_left(CapturedLikeError(Broken(), "x"))


def test_a_failed_query_exception_stands_on_its_converted_cause() -> None:
    """PySpark converts a streaming query's Java cause into ``_cause`` and keeps no origin."""
    timeout = FakeJavaException("org.apache.kafka.common.errors.TimeoutException")

    class QueryFailedError(Exception):
        _origin = None
        _cause = CapturedLikeError(timeout, "Timed out")

    assert java_origin(QueryFailedError("query failed")) is timeout
    assert is_transient(QueryFailedError("query failed"))
    assert java_origin(RuntimeError("plain")) is None
