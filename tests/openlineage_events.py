"""OpenLineage events in tests: a receiver for what a driver POSTs, and a check of each event
against OpenLineage's own JSON schemas, kept as test data.

The schemas (``tests/unit/runtime/data/openlineage``) are OpenLineage's ``spec/OpenLineage.json``
and the facet schemas etlc writes, as published in the OpenLineage repository (Apache 2.0).
:func:`validate` checks the event against the run event's schema, then each facet against the
schema of its kind; a facet with no schema here is an error, so a new facet cannot pass
unchecked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "unit" / "runtime" / "data" / "openlineage"


@cache
def _registry() -> tuple[Registry, dict[str, dict[str, Any]]]:
    registry: Registry = Registry()
    facets: dict[str, dict[str, Any]] = {}
    for path in sorted(SCHEMAS.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        registry = registry.with_resource(doc["$id"], Resource.from_contents(doc))
        for key in doc.get("properties", {}) if path.name != "OpenLineage.json" else ():
            facets[key] = doc
    return registry, facets


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    registry, _ = _registry()
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def facets_of(event: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, facet name, facet) for every facet of the event."""
    yield from (("run", k, v) for k, v in event["run"].get("facets", {}).items())
    yield from (("job", k, v) for k, v in event["job"].get("facets", {}).items())
    for side in ("inputs", "outputs"):
        for dataset in event.get(side, []):
            where = f"{side} {dataset['namespace']} {dataset['name']}"
            for group in ("facets", "inputFacets", "outputFacets"):
                yield from ((where, k, v) for k, v in dataset.get(group, {}).items())


def validate(event: dict[str, Any]) -> None:
    """Raise jsonschema's ValidationError (or AssertionError for a facet with no schema)."""
    registry, facets = _registry()
    root = registry.contents("https://openlineage.io/spec/2-0-2/OpenLineage.json")
    _validator(root).validate(event)
    for where, name, facet in facets_of(event):
        assert name in facets, f"{where}: facet `{name}` has no schema in {SCHEMAS}"
        schema = facets[name]
        _validator(schema).validate({name: facet})
        assert facet["_schemaURL"].startswith(schema["$id"]), (where, name, facet["_schemaURL"])


class _Handler(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(
            {
                "path": self.path,
                "type": self.headers["Content-Type"],
                "authorization": self.headers["Authorization"],
                "body": body.decode(),
            }
        )
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def receiver(status: int = 201) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local endpoint (its URL) answering ``status``, and what was POSTed to it: each
    request's path, content type, authorization and body as sent."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Handler,), {"received": received, "status": status})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/lineage", received
    finally:
        server.shutdown()
        server.server_close()
