"""Installing a plugin in a test, as its `etlc.plugins` entry point would install it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from etlc import plugins
from etlc.dsl import checker, steps


class _EntryPoint:
    def __init__(self, name: str, loaded: Any) -> None:
        self.name = name
        self._loaded = loaded

    def load(self) -> Any:
        return self._loaded


@contextmanager
def installed(monkeypatch: pytest.MonkeyPatch, name: str, loaded: Any) -> Iterator[None]:
    """``loaded`` (what the entry point's object is) registered for the block; the plugin
    table and the definition schema built from it are rebuilt on the way in and out."""
    monkeypatch.setattr(plugins, "entry_points", lambda group: [_EntryPoint(name, loaded)])
    steps.plugin_table.cache_clear()
    checker.definition_schema.cache_clear()
    try:
        yield
    finally:
        # The caches go; monkeypatch restores the entry points after the test, before any
        # later call builds the table again.
        steps.plugin_table.cache_clear()
        checker.definition_schema.cache_clear()
