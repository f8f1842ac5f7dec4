"""How every connector turns a failure of its system into the framework's error taxonomy.

Each connector knows which of its system's failures mean what (a refused connection is
transient, a rejected password is authentication, a missing table or topic is terminal) and
says so in one classifier; this runs a call under it. A failure the classifier does not
recognise propagates unchanged, for the pipeline's central classification by Java type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional, TypeVar

from etlc.runtime.errors import EtlcError

T = TypeVar("T")

Classifier = Callable[[Exception], Optional[Exception]]


def translated(call: Callable[[], T], classify: Classifier) -> T:
    """``call()``, with a failure ``classify`` recognises re-raised as its typed error (the
    system's own text, which may quote values or credentials, is not chained)."""
    try:
        return call()
    except EtlcError:
        raise
    except Exception as exc:
        mapped = classify(exc)
        if mapped is None:
            raise
        raise mapped from None
