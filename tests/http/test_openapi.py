"""The OpenAPI document and the docs pages."""

from __future__ import annotations

from fastapi.testclient import TestClient

from gan.store import ModelStore
from support.app import (
    serve,
)


def test_openapi_and_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/generate", "/digits/{digit}.png", "/healthz", "/readyz", "/info", "/metrics"):
        assert path in schema["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text.lower()


def test_openapi_documents_the_configured_limits(tiny_store: ModelStore) -> None:
    """The schema promises what this server accepts (GAN_MAX_N, GAN_MAX_SCALE), not the hard
    ceilings, so a schema-valid request is never a 422."""
    with serve(tiny_store, max_n=8, max_scale=4) as client:
        schema = client.get("/openapi.json").json()
    body = schema["components"]["schemas"]["GenerateRequest"]["properties"]
    assert body["n"]["maximum"] == 8
    assert body["scale"]["maximum"] == 4
    (scale,) = [
        p
        for p in schema["paths"]["/digits/{digit}.png"]["get"]["parameters"]
        if p["name"] == "scale"
    ]
    assert scale["schema"]["maximum"] == 4
