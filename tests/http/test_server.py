"""The server's connection limits on both HTTP parsers, in process: uvicorn's protocol classes
as ``app.http.server`` bounds them, fed bytes through a fake transport (no sockets, no model).
tests/hostile/test_server_e2e.py runs the same limits against a real ``python -m app``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from app.config import ConfigError
from app.http import server
from app.http.server import Parser, bounded_protocol, resolve_parser

PARSERS: list[Parser] = ["httptools", "h11"]
HEAD_LIMIT = 1024


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> Parser:
    if request.param == "httptools" and not server.httptools_installed():
        pytest.skip("httptools is not installed")
    chosen: Parser = request.param
    return chosen


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def echo_length(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers ``ok <body length>``; ``/slow`` takes 0.3 s first."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    if scope["path"] == "/slow":
        await asyncio.sleep(0.3)
    body = f"ok {size}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Connection:
    """One connection to a bounded protocol."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol
        self.transport = FakeTransport()
        protocol.connection_made(self.transport)

    def send(self, data: bytes) -> None:
        self.protocol.data_received(data)

    async def answers(self, count: int = 1, within_s: float = 2.0) -> bytes:
        """What was written once ``count`` responses (or a close) are there."""
        deadline = asyncio.get_running_loop().time() + within_s
        while self.transport.written.count(b"HTTP/1.1 ") < count and not self.transport.closed:
            assert asyncio.get_running_loop().time() < deadline, bytes(self.transport.written)
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)  # the rest of the response
        return bytes(self.transport.written)

    def close(self) -> None:
        self.protocol.connection_lost(None)


def connector(
    parser: Parser, *, max_connections: int = 10, header_timeout_s: float = 10.0
) -> Callable[[], Connection]:
    config = uvicorn.Config(
        echo_length, h11_max_incomplete_event_size=HEAD_LIMIT, log_config=None, lifespan="off"
    )
    protocol_class = bounded_protocol(parser, max_connections, header_timeout_s, HEAD_LIMIT)
    state = ServerState()

    def connect() -> Connection:
        protocol = protocol_class(  # type: ignore[call-arg]
            config=config, server_state=state, app_state={}, _loop=asyncio.get_running_loop()
        )
        return Connection(protocol)

    return connect


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())  # type: ignore[arg-type]


def request(path: str = "/", *, padding: int = 0, body: bytes = b"") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nX-Pad: {'a' * padding}\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_a_head_under_the_limit_is_served_with_a_larger_body_in_the_same_read(
    parser: Parser,
) -> None:
    async def test() -> None:
        connection = connector(parser)()
        connection.send(request(padding=HEAD_LIMIT - 200, body=b"x" * 5000))
        answer = await connection.answers()
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok 5000"), answer
        connection.close()

    run(test)


def test_each_request_of_a_connection_has_its_own_head_limit(parser: Parser) -> None:
    async def test() -> None:
        connection = connector(parser)()
        for count in (1, 2, 3):
            connection.send(request(padding=HEAD_LIMIT - 200, body=b"abc"))
            answer = await connection.answers(count)
            assert answer.count(b"HTTP/1.1 200") == count, answer
        connection.close()

    run(test)


@pytest.mark.parametrize(
    "data",
    [
        # Twice the limit: h11 checks a head still incomplete after a read, so it lets through a
        # head up to one read (here 256 bytes) larger than the limit.
        request(padding=2 * HEAD_LIMIT),  # one header
        b"GET /" + b"a" * 2 * HEAD_LIMIT + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # the URL
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1234567890\r\n" % i for i in range(150)) + b"\r\n",
    ],
    ids=["header", "url", "many-headers"],
)
def test_a_head_over_the_limit_is_400_and_closed(parser: Parser, data: bytes) -> None:
    async def test() -> None:
        connection = connector(parser)()
        for start in range(0, len(data), 256):  # as it comes off the network, in reads
            if not connection.transport.closed:
                connection.send(data[start : start + 256])
        answer = await connection.answers()
        assert answer.startswith(b"HTTP/1.1 400"), answer
        assert answer.endswith(b"Invalid HTTP request received."), answer
        assert connection.transport.closed

    run(test)


def test_httptools_counts_a_head_that_arrives_whole_in_one_read() -> None:
    """h11 bounds only a head still incomplete after a read (h11_max_incomplete_event_size), so
    a head up to one read larger may pass it; httptools counts the URL and every header."""
    if not server.httptools_installed():
        pytest.skip("httptools is not installed")

    async def test() -> None:
        connection = connector("httptools")()
        connection.send(request(padding=HEAD_LIMIT + 10))
        assert (await connection.answers()).startswith(b"HTTP/1.1 400")
        assert connection.transport.closed

    run(test)


def test_a_header_that_never_ends_is_cut_off_soon_after_the_limit(parser: Parser) -> None:
    """httptools keeps a header's value until it ends: the bytes of unfinished heads count."""

    async def test() -> None:
        connection = connector(parser)()
        connection.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent = 0
        while not connection.transport.closed and sent < 64 * HEAD_LIMIT:
            connection.send(b"a" * 256)
            sent += 256
        assert connection.transport.closed
        assert sent <= 2 * HEAD_LIMIT
        assert connection.transport.written.startswith(b"HTTP/1.1 400")

    run(test)


def test_a_connection_over_the_cap_gets_503_and_is_closed(parser: Parser) -> None:
    async def test() -> None:
        connect = connector(parser, max_connections=2)
        first, second, third = connect(), connect(), connect()
        assert not first.transport.closed and not second.transport.closed
        assert third.transport.closed
        assert third.transport.written.startswith(b"HTTP/1.1 503 Service Unavailable")
        third.close()
        first.close()
        fourth = connect()  # a place is free again
        assert not fourth.transport.closed
        second.close()
        fourth.close()

    run(test)


def test_the_head_deadline_closes_silent_slow_and_idle_connections(parser: Parser) -> None:
    async def test() -> None:
        connect = connector(parser, header_timeout_s=0.1)
        silent, slow, idle = connect(), connect(), connect()
        slow.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        idle.send(request(body=b"abc"))
        assert (await idle.answers()).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.05)
        idle.send(b"GET / HTTP/1.1\r\n")  # the next head started, not finished
        await asyncio.sleep(0.2)
        assert silent.transport.closed and slow.transport.closed and idle.transport.closed

    run(test)


def test_the_head_deadline_spares_a_request_being_served(parser: Parser) -> None:
    """A slow answer (its head arrived) and a pipelined request behind one are not cut off."""

    async def test() -> None:
        connection = connector(parser, header_timeout_s=0.1)()
        connection.send(request("/slow", body=b"a") + request("/slow", body=b"bc"))
        answer = await connection.answers(2)
        assert answer.count(b"HTTP/1.1 200") == 2, answer
        assert answer.endswith(b"ok 2")
        connection.close()

    run(test)


def test_auto_is_httptools_when_installed_else_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_parser("h11") == "h11"
    monkeypatch.setattr(server, "httptools_installed", lambda: True)
    assert resolve_parser("auto") == "httptools"
    assert resolve_parser("httptools") == "httptools"
    monkeypatch.setattr(server, "httptools_installed", lambda: False)
    assert resolve_parser("auto") == "h11"
    with pytest.raises(ConfigError, match="GAN_HTTP_PARSER=httptools"):
        resolve_parser("httptools")
