"""Redaction: every secret value this process has seen is cut out of text before it leaves.

A :class:`~etlc.vault.secret.Secret` registers its value here when it is made, so whatever
path a value takes into a log line or an exception message (a driver that echoes its
connection string, an f-string in a connector) the text is scrubbed on the way out. Each value
is matched in every spelling it is likely to take: raw, URL-encoded, JSON-escaped and base64
(standard and URL-safe, at each of the three byte alignments, since a secret is often
base64-encoded inside a longer string such as ``user:password``).

Spark logs and plans are covered by Spark's own redaction settings, which etlc extends
(:data:`SPARK_REDACTION_CONF`); they match configuration keys, since Spark never sees the
registry.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
import threading
import traceback
from types import TracebackType
from typing import Any
from urllib.parse import quote, quote_plus

HIDDEN = "[hidden]"

# Spark 4.2's defaults, kept verbatim at the front so nothing Spark hides today shows up,
# extended with the names etlc's connectors give their credentials. `spark.redaction.regex`
# matches conf keys and values (environment page, event logs); the options regex matches
# the option maps of data sources in plans and `EXPLAIN` (JDBC `password`, S3A keys, Kafka's
# `kafka.sasl.jaas.config`).
SPARK_DEFAULT_REDACTION_REGEX = "(?i)secret|password|token|access[.]?key"
SPARK_DEFAULT_OPTIONS_REDACTION_REGEX = "(?i)url"
_EXTRA = "password|secret|token|key|credential|vault|jaas"
SPARK_REDACTION_CONF: tuple[tuple[str, str], ...] = (
    ("spark.redaction.regex", f"{SPARK_DEFAULT_REDACTION_REGEX}|key|credential|vault|jaas"),
    ("spark.sql.redaction.options.regex", f"{SPARK_DEFAULT_OPTIONS_REDACTION_REGEX}|{_EXTRA}"),
)

_URLSAFE = str.maketrans("+/", "-_")
_MIN_BASE64_FRAGMENT = 4


def spellings(value: str) -> set[str]:
    """Every form of ``value`` that redaction removes (and the leak canary looks for)."""
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }
    forms |= _base64_spellings(value.encode("utf-8"))
    return {f for f in forms if f}


def _base64_spellings(raw: bytes) -> set[str]:
    padded = base64.b64encode(raw).decode("ascii")
    forms = {padded, padded.rstrip("=")}
    # Inside a longer encoded string the value starts at byte offset 0, 1 or 2 of a 3-byte
    # group; keep only the characters that depend on the value's bits alone.
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        start = -(-8 * shift // 6)
        end = 8 * (shift + len(raw)) // 6
        if end - start >= _MIN_BASE64_FRAGMENT:
            forms.add(encoded[start:end])
    return forms | {f.translate(_URLSAFE) for f in forms}


class Redactor:
    """The set of values to hide and one compiled pattern over all their spellings."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str) -> None:
        if not value or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            self._forms |= spellings(value)
            # Longest first, so a value inside a longer spelling goes as a whole.
            ordered = sorted(self._forms, key=lambda f: (-len(f), f))
            self._pattern = re.compile("|".join(re.escape(f) for f in ordered))

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def clear(self) -> None:
        """Forget every value. A driver runs one pipeline per process and never needs this;
        a test session runs many, and one test's secrets must not blank another's text."""
        with self._lock:
            self._values.clear()
            self._forms.clear()
            self._pattern = None

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        return pattern.sub(HIDDEN, text)

    def scrub_value(self, value: Any) -> Any:
        """``value`` with every string in it scrubbed, recursively.

        Dict keys are left alone: they are field, option and column names chosen by code and
        schemas, and scrubbing them for a short secret would rename the fields of every line.
        """
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {k: self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_value(v) for v in value]
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        # Anything else is rendered the way the JSON formatter would render it, then scrubbed.
        return self.scrub(str(value))


REDACTOR = Redactor()


def register(value: str) -> None:
    REDACTOR.register(value)


def scrub(text: str) -> str:
    return REDACTOR.scrub(text)


def scrub_value(value: Any) -> Any:
    return REDACTOR.scrub_value(value)


class RedactingFilter(logging.Filter):
    """A handler filter that scrubs a record's message, its fields and its exception text.

    It sits on the handler (not the logger) so records from child loggers such as
    ``etlc.connectors.postgres`` pass through it too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not REDACTOR.active:
            return True
        record.msg = scrub(record.getMessage())
        record.args = None
        fields = getattr(record, "etlc", None)
        if fields:
            record.etlc = scrub_value(fields)
        if record.exc_info and record.exc_info[1] is not None:
            # The formatter reuses exc_text when it is set, so the traceback it prints (with
            # every chained cause, whose messages etlc does not control) is the scrubbed one.
            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        return True


def install_excepthook() -> None:
    """Scrub the traceback of an exception nothing caught, before Python prints it."""
    if getattr(sys.excepthook, "_etlc_redacting", False):
        return

    def hook(cls: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(scrub("".join(traceback.format_exception(cls, exc, tb))))

    hook._etlc_redacting = True  # type: ignore[attr-defined]
    sys.excepthook = hook
