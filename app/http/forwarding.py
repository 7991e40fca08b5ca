"""The other workers' side of the primary (``app.http.workers``): relay its requests to it.

Which requests: those of every route that needs the job manager or the admin credential
(``primary_only``): the job endpoints and activations. They are found from the routes' own
dependencies, so a new admin route is relayed without being listed anywhere. The relay is
outermost and streams both ways (a job's Server-Sent Events arrive as they happen, an upload is
never held whole); the primary applies every limit, check and log line itself.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.workers import FOLLOW_WAIT_S
from app.metrics import ServiceMetrics

HOP_BY_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"}
BODY_HEADERS = (b"content-length", b"transfer-encoding")
# An activation may wait FOLLOW_WAIT_S for the other workers; job events send a keep-alive
# every 15 s. A primary silent for longer than this is stuck.
READ_TIMEOUT_S = FOLLOW_WAIT_S + 30


def _needs(dependant: Dependant, calls: set[Callable[..., Any]]) -> bool:
    return dependant.call in calls or any(_needs(d, calls) for d in dependant.dependencies)


def primary_only(
    routers: Iterable[APIRouter], calls: set[Callable[..., Any]]
) -> list[re.Pattern[str]]:
    """The path patterns of the routes that depend on one of ``calls``."""
    patterns = {
        route.path_regex.pattern: route.path_regex
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute) and _needs(route.dependant, calls)
    }
    return list(patterns.values())


class PrimaryRelay:
    """An HTTP client of the primary's Unix socket (one connection pool per worker)."""

    def __init__(self, socket_path: Path, retry_after_s: int, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self.client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=str(socket_path)),
            base_url="http://primary",
            timeout=httpx.Timeout(READ_TIMEOUT_S, connect=5.0),
        )
        self.unavailable = [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after_s).encode()),
        ]

    async def close(self) -> None:
        await self.client.aclose()

    async def relay(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        if scope.get("client"):
            headers.append((b"x-forwarded-for", str(scope["client"][0]).encode()))
        has_body = any(k.lower() in BODY_HEADERS for k, _ in scope["headers"])
        request = self.client.build_request(
            scope["method"],
            (scope.get("raw_path") or scope["path"].encode()).decode("latin-1") + _query(scope),
            headers=headers,
            content=_body(receive) if has_body else None,
        )
        try:
            upstream = await self.client.send(request, stream=True)
        except httpx.TransportError:
            await self._unavailable(scope, send)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": upstream.status_code,
                    "headers": [
                        (k, v) for k, v in upstream.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            await _stream_until_disconnect(upstream.aiter_raw(), receive, send)
        except httpx.TransportError:
            pass  # the primary went away mid-answer: the client sees the response end early
        finally:
            await upstream.aclose()
        await send({"type": "http.response.body", "body": b""})

    async def _unavailable(self, scope: Scope, send: Send) -> None:
        """The relay's own answer, so counted here (the primary counts what it answers)."""
        body = json.dumps(
            {"detail": "the primary worker (jobs and activations) is restarting; retry shortly"}
        ).encode()
        await send({"type": "http.response.start", "status": 503, "headers": self.unavailable})
        await send({"type": "http.response.body", "body": body})
        self.metrics.refused(scope["method"], "relay", "primary_unavailable")


def _query(scope: Scope) -> str:
    query: bytes = scope.get("query_string", b"")
    return "?" + query.decode("latin-1") if query else ""


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise httpx.ReadError("the client closed the connection")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def _stream_until_disconnect(
    chunks: AsyncIterator[bytes], receive: Receive, send: Send
) -> None:
    """Pass ``chunks`` on; stop early if the client disconnects (a long event stream would
    otherwise be read from the primary for nobody). The request body, if any, is read whole by
    now (httpx sends it before it reads the answer), so ``receive`` has only the disconnect
    left to say."""

    async def pump() -> None:
        async for chunk in chunks:
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})

    async def disconnected() -> None:
        message: Message = {"type": ""}
        while message["type"] != "http.disconnect":
            message = await receive()

    pumping = asyncio.ensure_future(pump())
    watcher = asyncio.ensure_future(disconnected())
    try:
        done, _ = await asyncio.wait({pumping, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if pumping in done:
            pumping.result()
    finally:
        pumping.cancel()
        watcher.cancel()


class PrimaryForwardingMiddleware:
    def __init__(self, app: ASGIApp, relay: PrimaryRelay, paths: list[re.Pattern[str]]) -> None:
        self.app = app
        self.relay = relay
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and any(p.match(scope["path"]) for p in self.paths):
            await self.relay.relay(scope, receive, send)
            return
        await self.app(scope, receive, send)
