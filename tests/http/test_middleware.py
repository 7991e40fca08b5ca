"""Middleware: Allow on 405, request ids, the body size limit."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi.testclient import TestClient


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("DELETE", "/generate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    response = client.request("DELETE", "/jobs")  # GET and POST are two routes
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


def test_request_id_generated_when_absent(client: TestClient) -> None:
    first = client.get("/healthz").headers["x-request-id"]
    second = client.get("/healthz").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_request_id_echoed_when_sent(client: TestClient) -> None:
    response = client.post(
        "/generate", json={"digit": 1, "seed": 1}, headers={"X-Request-ID": "trace-42.a:b"}
    )
    assert response.headers["x-request-id"] == "trace-42.a:b"
    error = client.post("/generate", json={"n": 0}, headers={"X-Request-ID": "trace-43"})
    assert error.status_code == 422
    assert error.headers["x-request-id"] == "trace-43"


def test_malformed_request_id_is_replaced(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "not a valid id!"})
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def test_body_over_limit_is_413(strict_client: TestClient) -> None:
    body = b'{"digit": 1' + b" " * 300 + b"}"
    response = strict_client.post(
        "/generate", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "256" in detail
    assert "GAN_MAX_BODY_BYTES" in detail


def test_streamed_body_over_limit_is_413(strict_client: TestClient) -> None:
    """Without Content-Length (chunked) the limit is enforced while reading."""

    def chunks() -> Iterator[bytes]:
        yield b'{"digit": 1'
        for _ in range(10):
            yield b" " * 50
        yield b"}"

    response = strict_client.post(
        "/generate", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert "GAN_MAX_BODY_BYTES" in response.json()["detail"]


def test_body_under_limit_is_served(strict_client: TestClient) -> None:
    body = b'{"digit": 1, "seed": 1' + b" " * 100 + b"}"
    assert len(body) < 256
    response = strict_client.post(
        "/generate", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
