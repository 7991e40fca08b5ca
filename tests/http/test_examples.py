"""Every request example of the OpenAPI document succeeds against the shipped model (a copy of
the repository's model_store), as a reader of /docs would try it."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from support.app import app_settings, wait_ready
from support.process import ROOT

TOKEN = "examples-token"


def request_examples(openapi: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(method, path, body) for every example of every JSON request body."""
    components = openapi["components"]["schemas"]
    found = []
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[-1]]
            for example in schema.get("examples", []):
                found.append((method.upper(), path, example))
    return found


def test_every_openapi_example_succeeds_on_the_shipped_model(tmp_path: Path) -> None:
    store = tmp_path / "model_store"
    shutil.copytree(ROOT / "model_store", store)
    settings = app_settings(
        store,
        admin_token=TOKEN,
        data_dir=ROOT / "tests" / "fixtures" / "mnist",
        training_command=[sys.executable, "-c", "pass"],  # jobs are accepted, train nothing
        warmup_batches=0,
    )
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        examples = request_examples(client.get("/openapi.json").json())
        assert len(examples) >= 8
        for method, path, body in examples:
            response = client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert 200 <= response.status_code < 300, (path, body, response.text[:300])
            if path == "/jobs":  # one job at a time: let the stand-in finish first
                job_id = response.json()["id"]
                deadline = time.monotonic() + 30
                while client.get(f"/jobs/{job_id}").json()["state"] in ("queued", "running"):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
