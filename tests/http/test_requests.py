"""Request shapes every route shares: JSON bodies must say they are JSON (415 otherwise), and
probes and image URLs answer HEAD."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gan.store import ModelStore
from support.app import serve

TOKEN = "requests-token"


@pytest.mark.parametrize(
    "path", ["/generate", "/datasets", "/jobs", "/models/tiny/activate", "/v1/images/generations"]
)
@pytest.mark.parametrize(
    "content_type", [None, "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
)
def test_a_json_body_without_a_json_content_type_is_415(
    tiny_store: ModelStore, path: str, content_type: str | None
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    with serve(tiny_store, admin_token=TOKEN) as client:
        response = client.post(path, content=b'{"digit": 1}', headers=headers)
    assert response.status_code == 415, response.text
    text = response.text
    assert "application/json" in text and (content_type or "none") in text


def test_json_with_a_charset_or_a_suffix_is_json(client: TestClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.api+json"):
        response = client.post(
            "/generate", content=b'{"digit": 1}', headers={"Content-Type": content_type}
        )
        assert response.status_code == 200, response.text


def test_an_activation_without_a_body_needs_no_content_type(tiny_store: ModelStore) -> None:
    with serve(tiny_store, admin_token=TOKEN) as client:
        response = client.post(
            "/models/tiny/activate", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/digits/4.png?seed=1"])
def test_probes_and_images_answer_head(client: TestClient, path: str) -> None:
    get, head = client.get(path), client.head(path)
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    for header in ("content-type", "etag", "cache-control"):
        assert head.headers.get(header) == get.headers.get(header)
