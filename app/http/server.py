"""The HTTP server around the app: uvicorn, with the connection-level limits it lacks.

The HTTP/1.1 parser is ``GAN_HTTP_PARSER``: httptools (llhttp, in C; ``uvicorn[standard]``) by
default when it is installed, else h11 (pure Python, several times the CPU per request). The event
loop is uvloop when installed. Both parsers get the same limits:

- a bounded request head (``max_header_bytes``): a larger one is a 400 and the connection is
  closed, before the head is buffered whole. h11 counts it itself
  (``h11_max_incomplete_event_size``); on httptools the URL and headers are counted as they are
  parsed, and so are the bytes of a head still incomplete at the end of a read (httptools
  accumulates a header's value until it ends, so a single endless header is cut off too);
- a deadline for each request head (``header_timeout_s``): a connection that sends nothing, or a
  head byte by byte, is closed instead of holding a file descriptor for ever (slowloris);
- a cap on open connections (``max_connections``): one more gets a raw 503 and is closed at once,
  so the process never runs out of file descriptors;
- draining on SIGTERM: ``/readyz`` turns 503 at the first signal, the server keeps serving for
  ``drain_s`` (so a load balancer stops sending first), then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import resource
import socket
import threading
from types import FrameType
from typing import Any, Literal

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.config import ConfigError, Settings
from app.limits import env_name

log = logging.getLogger(__name__)
OVER_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"retry-after: 1\r\nconnection: close\r\ncontent-length: 34\r\n\r\n"
    b"too many open connections; retry\r\n"
)
FD_RESERVE = 64  # descriptors kept for the store, the jobs database, logs and subprocesses
INVALID_REQUEST = "Invalid HTTP request received."  # uvicorn's 400 body, both parsers
Parser = Literal["httptools", "h11"]


def httptools_installed() -> bool:
    return importlib.util.find_spec("httptools") is not None


def resolve_parser(choice: str) -> Parser:
    """The parser ``GAN_HTTP_PARSER`` asks for: ``auto`` is httptools when it is installed."""
    if choice == "h11":
        return "h11"
    if httptools_installed():
        return "httptools"
    if choice == "httptools":
        raise ConfigError(
            f"{env_name('http_parser')}=httptools: httptools is not installed "
            "(pip install 'uvicorn[standard]')"
        )
    return "h11"


class RequestHeadTooLargeError(Exception):
    """Raised from a parser callback: httptools stops and uvicorn answers its 400."""


class _Limits:
    """The head deadline and the connection cap, for either uvicorn protocol. The attributes
    below are the protocol's; the protocol classes call these methods from their callbacks."""

    max_connections: int
    header_timeout_s: float
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any  # the current request's RequestResponseCycle, None before the first head
    _head_timer: asyncio.TimerHandle | None = None
    _waiting_since: object = None

    # The three callbacks wrap the protocol's own (this class comes first in the MRO).
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._admit(self.transport)  # the protocol's, set by its connection_made

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm_head_timer()  # the next request's head has its own deadline

    def _admit(self, transport: asyncio.Transport) -> None:
        """After uvicorn's ``connection_made``: a 503 past the cap, else the head deadline."""
        if len(self.connections) > self.max_connections:
            transport.write(OVER_CAPACITY)
            transport.close()
            return
        self._arm_head_timer()

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _arm_head_timer(self) -> None:
        """The next request head has ``header_timeout_s`` from now to arrive whole."""
        self._disarm()
        self._waiting_since = self.cycle  # a new cycle means a new head arrived
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        # Still no new head, and not busy with a (pipelined) request whose head did arrive.
        idle = self.cycle is None or bool(self.cycle.response_complete)
        if idle and self.cycle is self._waiting_since and not self.transport.is_closing():
            self.transport.close()


def bounded_protocol(
    parser: Parser, max_connections: int, header_timeout_s: float, max_header_bytes: int
) -> type[asyncio.Protocol]:
    """uvicorn's ``parser`` protocol with a request-head deadline and size limit and a
    connection cap."""
    if parser == "h11":
        return _bounded_h11(max_connections, header_timeout_s)
    return _bounded_httptools(max_connections, header_timeout_s, max_header_bytes)


def _bounded_h11(max_connections: int, header_timeout_s: float) -> type[asyncio.Protocol]:
    class BoundedH11Protocol(_Limits, H11Protocol):
        """The head size is h11's own h11_max_incomplete_event_size (set in serve)."""

    BoundedH11Protocol.max_connections = max_connections
    BoundedH11Protocol.header_timeout_s = header_timeout_s
    return BoundedH11Protocol


def _bounded_httptools(
    max_connections: int, header_timeout_s: float, max_header_bytes: int
) -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class BoundedHttpToolsProtocol(_Limits, HttpToolsProtocol):
        # Bytes of the current head's URL and complete headers (exact, from the callbacks).
        _head_bytes = 0
        # True from the connection's start, and from each message's end, to the next head's end;
        # while it is, _pending_bytes counts the bytes received in reads that did not finish it.
        _head_pending = True
        _pending_bytes = 0

        def data_received(self, data: bytes) -> None:
            if self._head_pending:
                self._pending_bytes += len(data)
            super().data_received(data)
            if (
                self._head_pending
                and self._pending_bytes > max_header_bytes
                and not self.transport.is_closing()
            ):
                # Still no end of head after more than the limit: refuse it as h11 does.
                self.logger.warning(INVALID_REQUEST)
                self.send_400_response(INVALID_REQUEST)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = 0

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._head_pending, self._pending_bytes = False, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_pending, self._pending_bytes = True, 0
            super().on_message_complete()

        def _count(self, size: int) -> None:
            self._head_bytes += size
            if self._head_bytes > max_header_bytes:
                raise RequestHeadTooLargeError  # uvicorn: 400 INVALID_REQUEST, closed

    BoundedHttpToolsProtocol.max_connections = max_connections
    BoundedHttpToolsProtocol.header_timeout_s = header_timeout_s
    return BoundedHttpToolsProtocol


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


def serve(
    app: Any,
    settings: Settings,
    draining: threading.Event,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Run ``app`` until a signal ends it, on ``sockets`` (a worker's) or on host and port."""
    max_connections = usable_connections(settings.max_connections)
    parser = resolve_parser(settings.http_parser)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=bounded_protocol(
            parser, max_connections, settings.header_timeout_s, settings.max_header_bytes
        ),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        loop="auto",  # uvloop when installed
        ws="none",  # no WebSocket routes: an upgrade stays plain HTTP (uvicorn[standard] has one)
        # No uvicorn limit_concurrency: it would count the connections being refused above and
        # answer 503 to a client that was let in. One request per connection bounds the tasks.
        timeout_graceful_shutdown=int(settings.graceful_shutdown_s),
        access_log=False,  # the app logs its own access lines, with request ids
        # The app never reads the client's address, so uvicorn's X-Forwarded-For rewriting
        # would only cost every request a middleware layer.
        proxy_headers=False,
        log_config=None,
    )
    DrainingServer(config, draining, settings.drain_s).run(sockets)
