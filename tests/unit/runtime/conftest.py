"""The runtime tests' event log: one JSON line per event, read back by :mod:`log_lines`."""

from __future__ import annotations

import io
import logging

import pytest

from etlc.runtime.logs import configure


@pytest.fixture
def log_stream() -> io.StringIO:
    stream = io.StringIO()
    configure(stream, logging.INFO)
    return stream
