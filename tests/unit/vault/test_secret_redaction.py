"""``Secret`` prints as [hidden]; redaction scrubs every spelling from logs and exceptions."""

from __future__ import annotations

import base64
import copy
import io
import json
import logging
import pickle
import sys
from urllib.parse import quote, quote_plus

import pytest

from etlc.runtime.logs import EventLog, RunContext, configure
from etlc.vault import Secret, redaction
from tests.leak_canary import Canary, assert_no_leak, canary_value, find_leaks

VALUE = "LEAK_CANARY_0123456789/p@ss:w+rd&q=1 é"


def test_a_secret_never_prints_its_value() -> None:
    secret = Secret(VALUE)
    assert str(secret) == repr(secret) == f"{secret}" == f"{secret:>20}" == "[hidden]"
    assert "{} {!r}".format(secret, secret) == "[hidden] [hidden]"  # noqa: UP032
    assert repr([secret]) == "[[hidden]]"
    assert secret.reveal() == VALUE
    assert secret == Secret(VALUE) and secret != Secret("other-value-xyz")
    assert hash(secret) == hash(Secret(VALUE))
    assert copy.deepcopy(secret) is secret and copy.copy(secret) is secret
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_making_a_secret_registers_it_for_redaction() -> None:
    text = f"connecting with {VALUE}"
    assert redaction.scrub(text) == text
    Secret(VALUE)
    assert redaction.scrub(text) == "connecting with [hidden]"


@pytest.mark.parametrize(
    "spelling",
    [
        VALUE,
        quote(VALUE, safe=""),
        quote(VALUE),
        quote_plus(VALUE),
        json.dumps(VALUE)[1:-1],
        base64.b64encode(VALUE.encode()).decode(),
        base64.urlsafe_b64encode(VALUE.encode()).decode().rstrip("="),
    ],
)
def test_every_spelling_is_scrubbed(spelling: str) -> None:
    Secret(VALUE)
    scrubbed = redaction.scrub(f"before {spelling} after")
    assert scrubbed == "before [hidden] after"


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"etl_loader:"])
def test_base64_inside_a_longer_string_is_scrubbed(prefix: bytes) -> None:
    """HTTP basic auth and SASL PLAIN encode ``user:password`` as one string."""
    Secret(VALUE)
    encoded = base64.b64encode(prefix + VALUE.encode() + b";tail").decode()
    scrubbed = redaction.scrub(encoded)
    assert "[hidden]" in scrubbed
    # What is left cannot give the value back.
    left = scrubbed.replace("[hidden]", "")
    assert len(left) < len(encoded) - len(VALUE)


def test_scrub_value_walks_structures() -> None:
    Secret(VALUE)
    value = {"a": [VALUE, {"k": f"x{VALUE}"}], "t": (VALUE,), "n": 2, "ok": True, "none": None}
    assert redaction.scrub_value(value) == {
        "a": ["[hidden]", {"k": "x[hidden]"}],
        "t": ["[hidden]"],
        "n": 2,
        "ok": True,
        "none": None,
    }


def test_the_json_log_hides_values_in_events_fields_and_exceptions() -> None:
    stream = io.StringIO()
    configure(stream)
    secret = Secret(VALUE)
    log = EventLog(RunContext("p"))
    log.error("attempt_failed", error=f"password {secret.reveal()} refused", extra=[secret])
    child = logging.getLogger("etlc.connectors.test")
    child.warning("dsn=%s", f"postgresql://etl:{quote(VALUE, safe='')}@db/crm")
    try:
        raise RuntimeError(f"driver said: {VALUE}")
    except RuntimeError:
        child.exception("failed with %s", VALUE)
    configure()  # back to stdout for the tests after this one
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)
    assert json.loads(lines[0])["extra"] == ["[hidden]"]
    assert_no_leak(lines, [Canary("vault://t#v", VALUE)])


def test_the_filter_scrubs_tracebacks_for_any_formatter() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(redaction.RedactingFilter())
    logger = logging.getLogger("etlc-redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    Secret(VALUE)
    try:
        try:
            raise ValueError(f"inner {VALUE}")
        except ValueError as inner:
            raise RuntimeError("outer") from inner
    except RuntimeError:
        logger.exception("boom %s", VALUE, stack_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "ValueError: inner [hidden]" in text and "boom [hidden]" in text
    assert_no_leak([text], [Canary("vault://t#v", VALUE)])


def test_the_excepthook_scrubs_uncaught_tracebacks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    redaction.install_excepthook()
    hook = sys.excepthook
    redaction.install_excepthook()
    assert sys.excepthook is hook  # installed once
    Secret(VALUE)
    try:
        raise RuntimeError(f"uncaught {VALUE}")
    except RuntimeError as exc:
        sys.excepthook(RuntimeError, exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "RuntimeError: uncaught [hidden]" in err and VALUE not in err


def test_the_canary_helper_finds_every_form() -> None:
    canary = Canary("vault://db#password", canary_value())
    for name, form in canary.forms().items():
        assert find_leaks({"t": b"..." + form + b"..."}, [canary]) == [
            f"t: {n} of vault://db#password"
            for n, f in canary.forms().items()
            if f in b"..." + form + b"..."
        ], name
    with pytest.raises(AssertionError, match="raw of vault://db#password"):
        assert_no_leak([f"x{canary.value}x"], [canary])
    assert_no_leak(["clean", b"bytes too"], [canary])


def test_clear_forgets_every_value() -> None:
    from etlc.vault.redaction import Redactor

    redactor = Redactor()
    redactor.register("test")
    assert redactor.scrub("latest") == "la[hidden]"
    redactor.clear()
    assert not redactor.active and redactor.scrub("latest") == "latest"
