"""Raw-socket clients of the hostile-input benchmark, for what an HTTP library will not send: a
request sent in chunks until the server answers or closes (huge heads, a head byte by byte), and
a flood of connections that send nothing. Every loop is bounded by a count and a deadline.
"""

from __future__ import annotations

import re
import select
import selectors
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field


def status_of(answer: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(match.group(1)) if match else None


@dataclass
class Exchange:
    """What one raw request got."""

    status: int | None  # of the answer; None: the server closed without answering
    answer_head: str  # the answer's first line
    bytes_sent: int  # what the server took before it answered or closed
    answer_s: float | None  # first byte sent to first byte of the answer
    closed_s: float | None  # first byte sent to the server closing the connection
    send_error: str | None  # why sending stopped early (EPIPE, reset, timeout), if it did


def _readable(sock: socket.socket, wait_s: float) -> bool:
    readable, _, _ = select.select([sock], [], [], wait_s)
    return bool(readable)


def exchange(
    host: str,
    port: int,
    chunks: Iterable[bytes],
    *,
    pause_s: float = 0.0,
    timeout_s: float = 10.0,
    max_s: float = 60.0,
    read_to_close: bool = True,
) -> Exchange:
    """Send ``chunks`` in turn (``pause_s`` between them), stopping as soon as the server answers
    or closes, then read until it closes (or, without ``read_to_close``, until the answer's
    first bytes); ``max_s`` bounds the whole exchange."""
    answer = bytearray()
    sent, answer_s, closed_s, send_error = 0, None, None, None
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        started = time.perf_counter()
        deadline = started + max_s
        for chunk in chunks:
            if _readable(sock, 0) or time.perf_counter() > deadline:
                break
            try:
                sock.sendall(chunk)
            except OSError as error:
                send_error = error.strerror or type(error).__name__
                break
            sent += len(chunk)
            if pause_s and _readable(sock, pause_s):
                break
        while time.perf_counter() < deadline:
            try:
                data = sock.recv(65536)
            except OSError as error:  # reset (a close), or nothing within timeout_s
                if isinstance(error, ConnectionResetError):
                    closed_s = time.perf_counter() - started
                send_error = send_error or error.strerror or type(error).__name__
                break
            if not data:
                closed_s = time.perf_counter() - started
                break
            if answer_s is None:
                answer_s = time.perf_counter() - started
            answer += data[: max(0, 4096 - len(answer))]
            if not read_to_close:
                break
    head = bytes(answer).split(b"\r\n", 1)[0].decode("latin-1")
    return Exchange(status_of(bytes(answer)), head, sent, answer_s, closed_s, send_error)


@dataclass
class IdleFlood:
    """``count`` connections opened at once that never send a byte."""

    count: int
    connect_errors: int = 0
    refused_503: int = 0  # answered 503
    refused_s: list[float] = field(default_factory=list)  # connect to the 503, each
    closed: int = 0  # closed without an answer
    closed_s: list[float] = field(default_factory=list)  # connect to the close, each
    other_answers: dict[str, int] = field(default_factory=dict)
    still_open: int = 0  # neither answered nor closed by the deadline
    open_s: float = 0.0  # time to open them all


def idle_flood(host: str, port: int, count: int, wait_s: float) -> IdleFlood:
    """Open ``count`` connections, send nothing, and watch for ``wait_s`` what becomes of each."""
    result = IdleFlood(count)
    selector = selectors.DefaultSelector()
    opened_at: dict[socket.socket, float] = {}
    started = time.monotonic()
    try:
        for _ in range(count):
            try:
                sock = socket.create_connection((host, port), timeout=5)
            except OSError:
                result.connect_errors += 1
                continue
            sock.setblocking(False)
            opened_at[sock] = time.monotonic()
            selector.register(sock, selectors.EVENT_READ)
        result.open_s = time.monotonic() - started
        deadline = time.monotonic() + wait_s
        while opened_at and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                ready = key.fileobj
                assert isinstance(ready, socket.socket)
                _classify(result, ready, time.monotonic() - opened_at.pop(ready))
                selector.unregister(ready)
                ready.close()
        result.still_open = len(opened_at)
    finally:
        for sock in opened_at:
            sock.close()
        selector.close()
    return result


def _classify(result: IdleFlood, sock: socket.socket, after_s: float) -> None:
    try:
        data = sock.recv(4096)
    except OSError:
        data = b""  # reset: closed
    if not data:
        result.closed += 1
        result.closed_s.append(after_s)
    elif status_of(data) == 503:
        result.refused_503 += 1
        result.refused_s.append(after_s)
    else:
        head = data.split(b"\r\n", 1)[0].decode("latin-1")
        result.other_answers[head] = result.other_answers.get(head, 0) + 1
