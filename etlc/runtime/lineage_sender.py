"""Sending OpenLineage events to an HTTP endpoint: in the background, bounded, never failing a
run.

Events are POSTed one at a time, in the order they were made, by a daemon thread, so a slow or
silent endpoint never holds up a stream's polling or a run's end by more than the bounded wait
at :meth:`Sender.close`. A failed POST, a full queue, or events still queued at the end are
warnings. The endpoint is an http(s) URL without a user or password (it is logged, without its
query); an API key comes from the vault and travels only in the ``Authorization`` header.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

from etlc.runtime.errors import ConfigurationError
from etlc.runtime.logs import EventLog

# The schema's pattern for etlc.openlineage_url (schemas/environment.schema.json), checked here
# again for drivers whose environment did not pass through etlc's Scala classes.
URL_PATTERN = r"^(https?://([^/@\s:\[\]?#]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?([/?#]\S*)?)?$"
SEND_TIMEOUT_S = 5.0
QUEUE_SIZE = 100
# What the end of a run waits at most for events still queued: a few sends' timeouts.
CLOSE_WAIT_S = 3 * SEND_TIMEOUT_S

Post = Callable[[str, bytes, Mapping[str, str]], None]


def check_url(url: str, where: str) -> str:
    """The endpoint events are POSTed to: http(s), a host, no user or password."""
    if not re.match(URL_PATTERN, url):
        raise ConfigurationError(
            f"{where}: write an http:// or https:// URL with no user or password"
        )
    port = re.match(r"^https?://[^/?#]*:([0-9]+)", url)
    if port is not None and not 0 < int(port.group(1)) < 65536:
        raise ConfigurationError(f"{where}: the port is not a port number")
    return url


def shown(url: str) -> str:
    """The URL as logged: without a query or fragment, which may hold a token."""
    return urlsplit(url)._replace(query="", fragment="").geturl()


def post(url: str, body: bytes, headers: Mapping[str, str]) -> None:
    """One POST of one event; anything but a 2xx answer is an error."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as answer:
        if not 200 <= answer.status < 300:
            raise urllib.error.HTTPError(url, answer.status, answer.reason, answer.headers, None)


class Sender:
    """POSTs queued events to ``url`` from a daemon thread."""

    def __init__(
        self, url: str, log: EventLog, headers: Mapping[str, str], send: Post = post
    ) -> None:
        self.url = url
        self.log = log
        self.headers = dict(headers)
        self.send = send
        self.queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue(QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="etlc-openlineage", daemon=True)
        self.thread.start()

    def put(self, kind: str, body: bytes) -> None:
        try:
            self.queue.put_nowait((kind, body))
        except queue.Full:
            self.log.warning("openlineage_not_sent", event_type=kind, url=shown(self.url),
                             error=f"{QUEUE_SIZE} events are waiting for the endpoint")  # fmt: skip

    def close(self, wait_s: float = CLOSE_WAIT_S) -> None:
        """Send what is queued, waiting at most ``wait_s``; what is left is a warning."""
        deadline = time.monotonic() + wait_s
        with contextlib.suppress(queue.Full):  # then the join below times out too
            self.queue.put(None, timeout=wait_s)
        self.thread.join(max(0.0, deadline - time.monotonic()))
        if self.thread.is_alive():
            self.log.warning(
                "openlineage_not_sent",
                url=shown(self.url),
                error=f"the endpoint took longer than {wait_s:g} s; queued events are dropped",
            )

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            kind, body = item
            try:
                self.send(self.url, body, self.headers)
            except Exception as exc:  # any failure of the endpoint is a warning, never the run
                self.log.warning(
                    "openlineage_not_sent",
                    event_type=kind,
                    url=shown(self.url),
                    error=str(exc) or type(exc).__name__,
                )
