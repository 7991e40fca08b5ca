"""The HTTP server around the app: uvicorn, with the connection-level limits it lacks.

uvicorn's h11 protocol already bounds the request head (``h11_max_incomplete_event_size``: a
larger head is a 400). What it lacks is added here:

- a deadline for each request head (``header_timeout_s``): a connection that sends nothing, or a
  head byte by byte, is closed instead of holding a file descriptor for ever (slowloris);
- a cap on open connections (``max_connections``): one more gets a raw 503 and is closed at once,
  so the process never runs out of file descriptors;
- draining on SIGTERM: ``/readyz`` turns 503 at the first signal, the server keeps serving for
  ``drain_s`` (so a load balancer stops sending first), then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import Settings

log = logging.getLogger(__name__)
OVER_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: 34\r\n\r\n"
    b"too many open connections; retry\r\n"
)
FD_RESERVE = 64  # descriptors kept for the store, the jobs database, logs and subprocesses


def bounded_protocol(max_connections: int, header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a request-head deadline and a connection cap."""

    class BoundedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _waiting_since: object = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(OVER_CAPACITY)
                transport.close()
                return
            self._arm_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()  # the next request's head has its own deadline

        def _arm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._waiting_since = self.cycle  # a new cycle means a new head arrived
            self._head_timer = self.loop.call_later(header_timeout_s, self._head_timed_out)

        def _head_timed_out(self) -> None:
            waiting = self.cycle is self._waiting_since
            if waiting and not self.transport.is_closing():
                self.transport.close()

    return BoundedH11Protocol


class DrainingServer(uvicorn.Server):
    """A first SIGTERM/SIGINT sets ``draining`` (``/readyz`` answers 503) and shuts down after
    ``drain_s``; a second signal, or ``drain_s`` = 0, shuts down at once."""

    def __init__(self, config: uvicorn.Config, draining: threading.Event, drain_s: float) -> None:
        super().__init__(config)
        self.draining = draining
        self.drain_s = drain_s

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.draining.is_set() or self.drain_s <= 0:
            self.draining.set()
            super().handle_exit(sig, frame)
            return
        self.draining.set()
        log.warning("draining: /readyz is 503, shutting down in %.1fs", self.drain_s)
        timer = threading.Timer(self.drain_s, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def usable_connections(wanted: int) -> int:
    """``wanted``, or fewer if the process may not open that many files (the soft limit is
    raised to the hard one first)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(1, min(wanted, soft - FD_RESERVE))


def serve(app: Any, settings: Settings, draining: threading.Event) -> None:
    """Run ``app`` until a signal ends it."""
    max_connections = usable_connections(settings.max_connections)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=bounded_protocol(max_connections, settings.header_timeout_s),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        # No uvicorn limit_concurrency: it would count the connections being refused above and
        # answer 503 to a client that was let in. One request per connection bounds the tasks.
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        access_log=False,  # the app logs its own access lines, with request ids
        log_config=None,
    )
    DrainingServer(config, draining, settings.drain_s).run()
