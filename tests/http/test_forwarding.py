"""The relay of another worker to the primary, while the primary is away (app.http.forwarding).
The relay to a live primary runs in tests/http/test_workers.py, with real worker processes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from app.http.forwarding import PrimaryForwardingMiddleware, PrimaryRelay
from app.metrics import ServiceMetrics


async def local_app(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("answered here")(scope, receive, send)


def test_a_relayed_route_answers_503_while_the_primary_is_away(tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    relay = PrimaryRelay(tmp_path / "primary.sock", retry_after_s=3, metrics=metrics)
    app = PrimaryForwardingMiddleware(local_app, relay, [re.compile(r"^/jobs(/.*)?$")])

    async def calls() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            listed = await client.get("/jobs")
            started = await client.post("/jobs", json={"preset": "smoke"})
            local = await client.get("/generate-elsewhere")
        await relay.close()
        return listed, started, local

    listed, started, local = asyncio.run(calls())
    for refused in (listed, started):
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "3"
        assert "primary worker" in refused.json()["detail"]
    assert local.status_code == 200 and local.text == "answered here"
    sample = metrics.registry.get_sample_value
    assert sample("gan_rejected_requests_total", {"reason": "primary_unavailable"}) == 2
    labels = {"method": "POST", "route": "relay", "status": "503"}
    assert sample("gan_http_requests_total", labels) == 1
