"""Pure ASGI middleware: request ids, access logs and HTTP metrics; the request body size limit;
complete ``Allow`` headers on 405."""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import time

from fastapi import FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.http.disconnect import CLIENT_CLOSED_REQUEST, ClientDisconnectedError
from app.limits import MAX_BODY_BYTES
from app.metrics import HTTP_METHODS, ServiceMetrics

access_log = logging.getLogger("app.access")
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Request ids are 32 hex digits from a generator of their own, seeded from os.urandom once:
# uuid4 reads os.urandom per request, a system call that hands the GIL to the inference and
# encoder threads in the middle of the event loop's work (6% of its samples under load).
_ids = random.Random()  # unique, not secret


def new_request_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


class RequestContextMiddleware:
    """Gives every response an ``X-Request-ID`` (the client's, if well formed), logs one access
    line per request and counts it by route template (never by raw path: bounded cardinality)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = Headers(scope=scope).get("x-request-id", "")
        request_id = offered if REQUEST_ID_PATTERN.match(offered) else new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnectedError:
            # Nobody reads this answer; it only keeps the ASGI contract (a response per request).
            status = CLIENT_CLOSED_REQUEST
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe_request(scope["method"], route, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):  # GAN_LOG_LEVEL=WARNING: no record at all
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": route,
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


class BodySizeLimitMiddleware:
    """413 for bodies over ``max_bytes``: at once from Content-Length, or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, counting_receive, send)

    def _message(self) -> str:
        return (
            f"request body larger than {self.max_bytes} bytes (server limit {MAX_BODY_BYTES.env})"
        )

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"detail": self._message()}, status_code=413)(scope, receive, send)


# Routes that queue images, by method and path prefix: shed before their body is read.
SHED_ROUTES = (
    ("POST", "/generate"),
    ("GET", "/digits/"),
    ("POST", "/datasets"),
    ("POST", "/v1/images/generations"),
)
_SHED_PREFIXES = {
    method: tuple(prefix for m, prefix in SHED_ROUTES if m == method) for method, _ in SHED_ROUTES
}


class LoadSheddingMiddleware:
    """Before the body is read or validated: a request for images waits at the door (asleep) for
    room in the inference queue, and is answered 503 if none comes within
    ``GAN_ADMISSION_WAIT_S``. Outermost, and as cheap as an answer gets (pre-encoded bytes, a
    counter, no access line): an overloaded server spends its CPU on the work it admitted, not
    on refusing the rest. One warning per second says how many requests were shed."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics, retry_after_s: int) -> None:
        self.app = app
        self.metrics = metrics
        self.headers = [
            (b"content-type", b"application/json"),
            (b"retry-after", str(retry_after_s).encode()),
        ]
        self._shed_since_report = 0
        self._last_report = time.monotonic()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        if scope["type"] == "http" and services is not None and _queues_images(scope):
            refused = await services.worker.wait_for_room(1)
            if refused is not None:
                await self._shed(scope, send, *refused)
                return
        await self.app(scope, receive, send)

    async def _shed(self, scope: Scope, send: Send, reason: str, message: str) -> None:
        body = json.dumps({"detail": message}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": self.headers})
        await send({"type": "http.response.body", "body": body})
        self.metrics.refused(scope["method"], "shed", reason)
        self._shed_since_report += 1
        now = time.monotonic()
        if now - self._last_report >= 1.0:
            access_log.warning(
                "shedding load: %d requests refused (%s)", self._shed_since_report, reason
            )
            self._shed_since_report, self._last_report = 0, now


def _queues_images(scope: Scope) -> bool:
    prefixes = _SHED_PREFIXES.get(scope["method"])
    return prefixes is not None and scope["path"].startswith(prefixes)


class AllowHeaderMiddleware:
    """Makes a 405's ``Allow`` list every method of the path, not only those of the one route
    that answered: Starlette answers from a single route, so a path served by two routes (GET and
    POST ``/jobs``) would otherwise advertise only one of its methods (RFC 9110, 15.5.6). The
    methods come from the app's OpenAPI document, plus whatever the route already listed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = MutableHeaders(scope=message)
                methods = {m.strip() for m in headers.get("allow", "").split(",") if m.strip()}
                methods |= _documented_methods(scope)
                if methods:
                    headers["Allow"] = ", ".join(sorted(methods))
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _documented_methods(scope: Scope) -> set[str]:
    openapi = getattr(scope.get("app"), "openapi", None)
    if openapi is None:
        return set()
    paths = openapi().get("paths", {})
    if scope["path"] in paths:  # a literal path wins over templates it would also match
        matching = [paths[scope["path"]]]
    else:
        matching = [
            ops for t, ops in paths.items() if _template_pattern(t).fullmatch(scope["path"])
        ]
    return {method.upper() for ops in matching for method in ops if method.upper() in HTTP_METHODS}


@functools.lru_cache(maxsize=256)
def _template_pattern(template: str) -> re.Pattern[str]:
    """``/jobs/{job_id}/events`` -> a pattern matching one path segment per parameter."""
    parts = re.split(r"(\{[^/{}]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


EXPOSED_HEADERS = [
    "X-Request-ID",
    "X-Model-Version",
    "X-Seed",
    "X-Truncation",
    "ETag",
    "Retry-After",
    "X-Digit",
    "X-Digit-Score",
    "X-Reconstruction-Error",
]


def install_middleware(app: FastAPI, settings: Settings, metrics: ServiceMetrics) -> None:
    """The middleware stack, innermost first: Allow headers, body limit, CORS, request context
    (its access line and metrics see every response the app gives, errors included), and
    outermost load shedding (it counts what it sheds itself)."""
    app.add_middleware(AllowHeaderMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Authorization", "X-Request-ID", "Idempotency-Key"],
        expose_headers=EXPOSED_HEADERS,
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(
        LoadSheddingMiddleware, metrics=metrics, retry_after_s=settings.retry_after_s
    )
