"""POST /datasets on the tiny model: both archive formats and their content, exact regeneration,
limits and validation, and streaming (memory stays at a few chunks; a client that leaves stops
the generation)."""

from __future__ import annotations

import asyncio
import io
import json
import tracemalloc
import zipfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.applications.datasets import DatasetPlan
from app.main import create_app
from gan.store import ModelStore
from support.app import app_settings, gated_loader, wait_ready
from training.data import IMAGES_MAGIC, LABELS_MAGIC, parse_idx


@pytest.fixture
def client(tiny_store: ModelStore) -> Iterator[TestClient]:
    app = create_app(app_settings(tiny_store.root, dataset_max_per_digit=50))
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def dataset(client: TestClient, **body: Any) -> bytes:
    response = client.post("/datasets", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


def test_npz_holds_images_labels_seeds_and_a_manifest(client: TestClient) -> None:
    response = client.post("/datasets", json={"digits": [1, 7], "per_digit": 3, "seed": 5})
    assert response.status_code == 200, response.text
    assert response.headers["x-model-version"] == "tiny"
    assert response.headers["x-seed"] == "5"
    assert 'filename="synthetic-mnist-5-6.npz"' in response.headers["content-disposition"]
    archive = np.load(io.BytesIO(response.content), allow_pickle=False)
    images, labels = archive["images"], archive["labels"]
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [1, 1, 1, 7, 7, 7] and labels.dtype == np.uint8
    assert archive["seeds"].tolist() == [5, 6, 7, 8, 9, 10]
    assert str(archive["version"]) == "tiny"
    manifest = json.loads(archive["manifest.json"])
    assert manifest["model_version"] == "tiny"
    assert manifest["seed"] == 5
    assert manifest["digits"] == [1, 7] and manifest["per_digit"] == 3
    assert manifest["count"] == 6 and manifest["format"] == "npz"
    assert manifest["synthetic"] is True
    assert len(np.unique(images.reshape(6, -1), axis=0)) == 6  # every seed its own image


def test_images_are_those_generate_draws_for_each_digit_and_seed(client: TestClient) -> None:
    archive = np.load(io.BytesIO(dataset(client, digits=[4, 0], per_digit=2, seed=100)))
    for i, (digit, seed) in enumerate(zip(archive["labels"], archive["seeds"], strict=True)):
        png = client.post(
            "/generate", json={"digit": int(digit), "seed": int(seed), "format": "png"}
        ).content
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), archive["images"][i])


def test_idx_zip_holds_the_mnist_pair(client: TestClient) -> None:
    content = dataset(client, digits=[2, 3, 9], per_digit=4, seed=11, format="idx")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert sorted(archive.namelist()) == [
            "images-idx3-ubyte",
            "labels-idx1-ubyte",
            "manifest.json",
        ]
        images = parse_idx(Path("images"), archive.read("images-idx3-ubyte"), IMAGES_MAGIC)
        labels = parse_idx(Path("labels"), archive.read("labels-idx1-ubyte"), LABELS_MAGIC)
        manifest = json.loads(archive.read("manifest.json"))
    assert tuple(images.shape) == (12, 28, 28)
    assert labels.tolist() == [2] * 4 + [3] * 4 + [9] * 4
    assert manifest["format"] == "idx" and manifest["seed"] == 11
    assert manifest["model_version"] == "tiny"
    same = np.load(io.BytesIO(dataset(client, digits=[2, 3, 9], per_digit=4, seed=11)))
    assert np.array_equal(images.numpy(), same["images"])  # one data set, two formats


def test_same_request_gives_the_same_bytes(client: TestClient) -> None:
    for fmt in ("npz", "idx"):
        first = dataset(client, per_digit=5, seed=3, format=fmt)
        assert dataset(client, per_digit=5, seed=3, format=fmt) == first
    assert dataset(client, per_digit=5, seed=4) != dataset(client, per_digit=5, seed=3)


def test_a_random_seed_is_reported_and_regenerates_the_data_set(client: TestClient) -> None:
    response = client.post("/datasets", json={"per_digit": 2})
    assert response.status_code == 200
    seed = int(response.headers["x-seed"])
    manifest = json.loads(np.load(io.BytesIO(response.content))["manifest.json"])
    assert manifest["seed"] == seed
    assert dataset(client, per_digit=2, seed=seed) == response.content


def test_a_truncated_data_set_is_the_truncated_images_and_says_so(client: TestClient) -> None:
    response = client.post(
        "/datasets", json={"digits": [4, 0], "per_digit": 2, "seed": 100, "truncation": 0.5}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-truncation"] == "0.5"
    assert 'filename="synthetic-mnist-100-4-t0.5.npz"' in response.headers["content-disposition"]
    archive = np.load(io.BytesIO(response.content))
    for i, (digit, seed) in enumerate(zip(archive["labels"], archive["seeds"], strict=True)):
        body = {"digit": int(digit), "seed": int(seed), "format": "png", "truncation": 0.5}
        png = client.post("/generate", json=body).content
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), archive["images"][i])
    manifest = json.loads(archive["manifest.json"])
    assert manifest["truncation"] == 0.5 and manifest["regenerate"]["truncation"] == 0.5
    # The manifest's regenerate block is itself the request that rebuilds it, byte for byte.
    assert dataset(client, **manifest["regenerate"]) == response.content
    untruncated = np.load(io.BytesIO(dataset(client, digits=[4, 0], per_digit=2, seed=100)))
    assert not np.array_equal(untruncated["images"], archive["images"])


def test_truncation_one_is_the_untruncated_data_set(client: TestClient) -> None:
    plain = client.post("/datasets", json={"per_digit": 2, "seed": 8})
    one = client.post("/datasets", json={"per_digit": 2, "seed": 8, "truncation": 1})
    assert one.content == plain.content and "x-truncation" not in one.headers
    manifest = json.loads(np.load(io.BytesIO(one.content))["manifest.json"])
    assert "truncation" not in manifest and "truncation" not in manifest["regenerate"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"per_digit": 51}, "per_digit", "GAN_DATASET_MAX_PER_DIGIT"),
        ({"per_digit": 0}, "per_digit", "greater than or equal to 1"),
        ({"per_digit": "3"}, "per_digit", "valid integer"),
        ({}, "per_digit", "Field required"),
        ({"per_digit": 1, "digits": [3, 3]}, "digits", "unique"),
        ({"per_digit": 1, "digits": [10]}, "digits", "less than or equal to 9"),
        ({"per_digit": 1, "digits": []}, "digits", "at least 1"),
        ({"per_digit": 1, "format": "csv"}, "format", "'npz' or 'idx'"),
        ({"per_digit": 1, "seed": -1}, "seed", "greater than or equal to 0"),
        ({"per_digit": 1, "colour": "red"}, "colour", "Extra inputs"),
        ({"per_digit": 1, "truncation": 0}, "truncation", "greater than 0"),
        ({"per_digit": 1, "truncation": -0.1}, "truncation", "greater than 0"),
        ({"per_digit": 1, "truncation": 1.5}, "truncation", "less than or equal to 1"),
        ({"per_digit": 1, "truncation": "NaN"}, "truncation", "valid number"),
    ],
)
def test_bad_requests_name_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/datasets", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][:2] == ["body", field] and words in e["msg"] for e in errors), errors


def test_plan_orders_digit_by_digit_with_consecutive_seeds() -> None:
    plan = DatasetPlan((5, 2), per_digit=3, seed=10, format="npz")
    assert plan.labels().tolist() == [5, 5, 5, 2, 2, 2]
    assert plan.labels(2, 5).tolist() == [5, 2, 2]
    assert plan.seeds(1, 3).tolist() == [11, 12]


# ----- streaming, driven as raw ASGI so nothing buffers the response --------------------------
def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/datasets",
        "raw_path": b"/datasets",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }


async def _stream(
    app: FastAPI, request: dict[str, Any], on_body: Any, leave_after: int | None = None
) -> None:
    """POST /datasets into the running ``app``; ``on_body(chunk)`` sees each body piece, which
    is then dropped. With ``leave_after``, the client disconnects after that many pieces."""
    body = json.dumps(request).encode()
    sent = False
    left = asyncio.Event()
    pieces = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await left.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal pieces
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body" and message.get("body"):
            on_body(message["body"])
            pieces += 1
            if leave_after is not None and pieces >= leave_after:
                left.set()
            await asyncio.sleep(0)

    await app(_scope(body), receive, send)


def test_a_large_data_set_streams_in_small_pieces(tiny_store: ModelStore) -> None:
    per_digit, chunk = 1500, 100  # 15,000 images: 11.8 MB of pixels, 150 forward passes
    loader, model = gated_loader(open_gate=True)
    settings = app_settings(
        tiny_store.root, dataset_max_per_digit=per_digit, max_batch_images=chunk
    )
    app = create_app(settings, loader)
    sizes: list[int] = []
    calls_at_first_piece: list[int] = []

    def on_body(piece: bytes) -> None:
        if not calls_at_first_piece:
            calls_at_first_piece.append(model().calls)
        sizes.append(len(piece))

    async def run() -> int:
        async with app.router.lifespan_context(app):
            await asyncio.to_thread(app.state.services.worker.ready.wait, 10)
            tracemalloc.start()
            try:
                # A small data set first, so one-off allocations (lazy imports, caches) are done.
                await _stream(app, {"per_digit": 1, "format": "idx"}, lambda _: None)
                tracemalloc.reset_peak()
                before, _ = tracemalloc.get_traced_memory()
                calls_before = model().calls
                await _stream(app, {"per_digit": per_digit, "format": "idx"}, on_body)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        calls_at_first_piece[0] -= calls_before
        return peak - before

    peak = asyncio.run(run())
    total = sum(sizes)
    assert model().calls == 1 + 10 * per_digit // chunk
    assert calls_at_first_piece[0] <= 2  # bytes flowed long before the images were all drawn
    assert len(sizes) >= 10 * per_digit // chunk
    assert total > 5_000_000
    # Python-side memory (numpy arrays, bytes) while streaming: a few chunks, not the archive.
    assert peak < total / 5, f"peak {peak} bytes for a {total}-byte archive"


def test_a_client_that_leaves_stops_the_generation(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=True)
    settings = app_settings(tiny_store.root, dataset_max_per_digit=1000, max_batch_images=100)
    app = create_app(settings, loader)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            await asyncio.to_thread(app.state.services.worker.ready.wait, 10)
            await _stream(app, {"per_digit": 1000}, lambda _: None, leave_after=3)

    asyncio.run(run())
    assert model().calls < 10  # of the 100 chunks the whole data set needs


def test_a_pinned_data_set_names_its_version_and_regenerates_exactly(client: TestClient) -> None:
    body = {"digits": [2], "per_digit": 3, "seed": 9, "version": "tiny"}
    response = client.post("/datasets", json=body)
    assert response.status_code == 200, response.text
    manifest = json.loads(np.load(io.BytesIO(response.content))["manifest.json"])
    assert manifest["regenerate"]["version"] == "tiny"
    again = client.post("/datasets", json=manifest["regenerate"])
    assert again.content == response.content
    other = client.post("/datasets", json={**body, "version": "other"})
    assert other.status_code == 404 and "not served here" in other.json()["detail"]
