"""The serving API, in process: every endpoint and format, determinism, caching, provenance,
request ids, backpressure, readiness and validation errors."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import numpy as np
import pytest
from app_helpers import (
    gated_loader,
    preserved_process_state,
    serve,
    wait_ready,
    wait_until,
)
from conftest import tiny_generator
from fastapi.testclient import TestClient
from PIL import Image

from app.schemas import MAX_REQUEST_SEED
from gan.store import ModelStore

VERSION = "tiny"


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    with preserved_process_state():
        yield


@pytest.fixture
def client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store) as client:
        yield client


def image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(image(png))


def diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def generate(client: TestClient, **body: Any) -> httpx2.Response:
    response = client.post("/generate", json=body)
    assert response.status_code == 200, response.text
    return response


def single_png(client: TestClient, **body: Any) -> bytes:
    return generate(client, format="png", **body).content


def base64_images(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    payload = generate(client, format="base64", **body).json()
    assert payload["model_version"] == VERSION
    images: list[dict[str, Any]] = payload["images"]
    return images


def decode(item: dict[str, Any]) -> bytes:
    return base64.b64decode(item["png_base64"], validate=True)


# ----- endpoints and formats ---------------------------------------------------------------------
def test_generate_single_png(client: TestClient) -> None:
    response = generate(client, digit=3, seed=42, format="png", scale=2)
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model-version"] == VERSION
    assert response.headers["x-seed"] == "42"
    assert response.headers["cache-control"] == "no-store"
    picture = image(response.content)
    assert picture.size == (56, 56)
    assert picture.mode == "L"
    # nearest-neighbour upscale: every pixel is a 2x2 block
    array = pixels(response.content)
    assert np.array_equal(array, np.repeat(np.repeat(array[::2, ::2], 2, 0), 2, 1))


def test_generate_grid_png_tiles_the_images(client: TestClient) -> None:
    grid = single_png(client, digit=1, n=12, seed=0, grid=True, scale=2)
    picture = image(grid)
    # 10 columns x 2 rows of 28px tiles with 2px gutters, upscaled x2
    assert picture.size == ((10 * 30 + 2) * 2, (2 * 30 + 2) * 2)
    assert picture.mode == "L"
    mosaic = pixels(grid)[::2, ::2]
    for index in (0, 11):
        row, col = divmod(index, 10)
        tile = mosaic[2 + row * 30 : 30 + row * 30, 2 + col * 30 : 30 + col * 30]
        alone = pixels(single_png(client, digit=1, seed=index))
        assert diff(tile, alone) <= 1


def test_grid_without_format_is_png(client: TestClient) -> None:
    response = generate(client, n=3, seed=0, grid=True)
    assert response.headers["content-type"] == "image/png"
    assert image(response.content).size == (3 * 30 + 2, 30 + 2)


def test_generate_base64_json(client: TestClient) -> None:
    response = generate(client, digit=5, n=3, seed=7, scale=3, format="base64")
    assert response.headers["content-type"] == "application/json"
    payload = response.json()
    assert payload["model_version"] == VERSION
    assert [item["seed"] for item in payload["images"]] == [7, 8, 9]
    assert [item["digit"] for item in payload["images"]] == [5, 5, 5]
    for item in payload["images"]:
        picture = image(decode(item))
        assert picture.size == (84, 84)
        assert picture.mode == "L"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("image/png", "image/png"),
        ("image/*", "image/png"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        ("text/html", "application/json"),
        ("image/png;q=0", "application/json"),
        ("application/json;q=0.2, image/png;q=0.8", "image/png"),
        ("image/png, application/json", "application/json"),
    ],
)
def test_accept_header_picks_the_format(client: TestClient, accept: str, media_type: str) -> None:
    response = client.post("/generate", json={"digit": 2, "seed": 1}, headers={"Accept": accept})
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    if media_type == "image/png":
        assert image(response.content).size == (28, 28)
    else:
        assert len(response.json()["images"]) == 1


def test_explicit_format_wins_over_accept(client: TestClient) -> None:
    response = client.post(
        "/generate",
        json={"digit": 2, "seed": 1, "format": "base64"},
        headers={"Accept": "image/png"},
    )
    assert response.headers["content-type"] == "application/json"


def test_digit_png_url(client: TestClient) -> None:
    response = client.get("/digits/7.png", params={"seed": 3, "scale": 2})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-model-version"] == VERSION
    assert response.headers["x-seed"] == "3"
    picture = image(response.content)
    assert (picture.size, picture.mode) == ((56, 56), "L")
    same = single_png(client, digit=7, seed=3, scale=2)
    assert np.array_equal(pixels(response.content), pixels(same))


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_info(tiny_store: ModelStore) -> None:
    with serve(tiny_store, max_n=8, max_scale=4, max_queue_images=100) as client:
        info = client.get("/info").json()
    assert info["model_version"] == VERSION
    assert info["device"] == "cpu"
    assert info["dtype"] == "float32"
    assert (info["max_n"], info["max_scale"], info["max_queue_images"]) == (8, 4, 100)
    assert info["max_batch_images"] == 32
    assert isinstance(info["metrics"], dict)


def test_metrics(client: TestClient) -> None:
    generate(client, digit=0, n=3, seed=0, format="base64")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "gan_http_requests_total",
        "gan_batch_images",
        "gan_queue_wait_seconds",
        "gan_images_generated_total",
        "gan_model_info",
    ):
        assert f"\n{name}" in text, name
    assert re.search(r'^gan_model_info\{version="tiny"\} 1\.0$', text, re.M)
    assert re.search(
        r'^gan_http_requests_total\{method="POST",route="/generate",status="200"\} 1\.0$',
        text,
        re.M,
    )
    generated = re.search(r"^gan_images_generated_total (\S+)$", text, re.M)
    assert generated is not None and float(generated.group(1)) == 3.0


@pytest.mark.parametrize(
    ("path", "media_type"),
    [("/", "text/html"), ("/static/app.js", "text/javascript"), ("/static/style.css", "text/css")],
)
def test_page_files_are_revalidated(client: TestClient, path: str, media_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.headers["cache-control"] == "no-cache"
    unchanged = client.get(path, headers={"If-None-Match": response.headers["etag"]})
    assert unchanged.status_code == 304


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


def test_405_lists_every_method_of_the_path(client: TestClient) -> None:
    response = client.request("DELETE", "/generate")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    response = client.request("DELETE", "/jobs")  # GET and POST are two routes
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["allow"].split(",")} >= {"GET", "POST"}


# ----- determinism -------------------------------------------------------------------------------
def test_same_seed_same_pixels(client: TestClient) -> None:
    first = single_png(client, digit=8, seed=1234)
    second = single_png(client, digit=8, seed=1234)
    other = single_png(client, digit=8, seed=1235)
    assert np.array_equal(pixels(first), pixels(second))
    assert not np.array_equal(pixels(first), pixels(other))


def test_batch_image_i_equals_single_with_seed_plus_i(client: TestClient) -> None:
    batch = base64_images(client, digit=2, n=5, seed=100)
    for i, item in enumerate(batch):
        assert item["seed"] == 100 + i
        alone = pixels(single_png(client, digit=2, seed=100 + i))
        assert diff(pixels(decode(item)), alone) <= 1


def test_random_digit_is_deterministic_with_seed(client: TestClient) -> None:
    first = base64_images(client, n=6, seed=9)
    second = base64_images(client, n=6, seed=9)
    digits = [item["digit"] for item in first]
    assert digits == [item["digit"] for item in second]
    assert all(0 <= digit <= 9 for digit in digits)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(pixels(decode(a)), pixels(decode(b)))
    # each image's digit comes from its own seed, so it is the same when requested alone
    for i, item in enumerate(first):
        (alone,) = base64_images(client, seed=9 + i)
        assert alone["digit"] == item["digit"]


def test_unseeded_request_reports_a_seed_that_reproduces_it(client: TestClient) -> None:
    response = generate(client, digit=4, format="png")
    seed = int(response.headers["x-seed"])
    assert 0 <= seed <= MAX_REQUEST_SEED
    again = single_png(client, digit=4, seed=seed)
    assert np.array_equal(pixels(response.content), pixels(again))


# ----- caching: ETag and Cache-Control ----------------------------------------------------------
def test_seeded_get_has_strong_etag_and_public_cache(client: TestClient) -> None:
    response = client.get("/digits/3.png", params={"seed": 5})
    etag = response.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong: no W/ prefix
    assert response.headers["cache-control"] == "public, max-age=300"
    # the tag is a function of (version, digit, seed, scale)
    assert client.get("/digits/3.png", params={"seed": 5}).headers["etag"] == etag
    assert client.get("/digits/3.png", params={"seed": 6}).headers["etag"] != etag
    assert client.get("/digits/3.png", params={"seed": 5, "scale": 2}).headers["etag"] != etag


def test_pinned_version_is_immutable(client: TestClient) -> None:
    response = client.get("/digits/3.png", params={"seed": 5, "version": VERSION})
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "public" in response.headers["cache-control"]
    assert response.headers["etag"]


def test_if_none_match_gives_304_without_body(client: TestClient) -> None:
    params: dict[str, str | int] = {"seed": 5, "version": VERSION}
    etag = client.get("/digits/3.png", params=params).headers["etag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        response = client.get(
            "/digits/3.png", params=params, headers={"If-None-Match": if_none_match}
        )
        assert response.status_code == 304, if_none_match
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert "immutable" in response.headers["cache-control"]
    stale = client.get("/digits/3.png", params=params, headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    assert stale.content


def test_generate_pinned_to_the_active_version(client: TestClient) -> None:
    pinned = generate(client, digit=4, n=2, seed=9, version=VERSION)
    assert pinned.json() == generate(client, digit=4, n=2, seed=9).json()
    assert pinned.headers["x-model-version"] == VERSION


@pytest.mark.parametrize("path", ["/generate", "/digits/4.png"])
def test_pinned_to_another_version_is_404(client: TestClient, path: str) -> None:
    if path == "/generate":
        response = client.post(path, json={"digit": 4, "seed": 1, "version": "older"})
    else:
        response = client.get(path, params={"seed": 1, "version": "older"})
    assert response.status_code == 404
    assert response.json()["detail"] == "model version 'older' is not served here (active: 'tiny')"


def test_swap_after_the_check_gives_404_not_another_models_image(tiny_store: ModelStore) -> None:
    tiny_store.publish(
        tiny_store.manifest(VERSION).model_copy(update={"version": "next"}),
        tiny_generator(seed=1).state_dict(),
    )
    loader, model = gated_loader(open_gate=False)
    with serve(tiny_store, loader, max_wait_ms=0) as client, ThreadPoolExecutor(2) as pool:
        worker = client.app.state.services.worker  # type: ignore[attr-defined]
        try:
            busy = pool.submit(client.post, "/generate", json={"seed": 0, "format": "png"})
            assert model().entered.wait(10), "the worker never started a forward pass"
            pinned = pool.submit(
                client.post, "/generate", json={"digit": 2, "seed": 0, "version": VERSION}
            )
            wait_until(lambda: worker.queued_images == 1)  # checked against 'tiny', queued
            worker.swap(tiny_store.load_generator("next"))
        finally:
            model().gate.set()
        assert busy.result(timeout=10).headers["x-model-version"] == VERSION
        response = pinned.result(timeout=10)
        assert response.status_code == 404
        assert "'tiny' is not served here (active: 'next')" in response.json()["detail"]


def test_unseeded_get_is_not_cacheable(client: TestClient) -> None:
    response = client.get("/digits/3.png")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "etag" not in response.headers
    assert int(response.headers["x-seed"]) >= 0


def test_pinned_version_not_served_is_404(client: TestClient) -> None:
    response = client.get("/digits/3.png", params={"seed": 5, "version": "other-1"})
    assert response.status_code == 404
    assert "other-1" in response.json()["detail"]


# ----- provenance --------------------------------------------------------------------------------
def assert_provenance(png: bytes, digit: str, seed: str) -> None:
    text = image(png).text  # type: ignore[attr-defined]
    assert text["Source"] == "synthetic"
    assert text["Generator"] == "mnist-digit-gan"
    assert text["model_version"] == VERSION
    assert text["digit"] == digit
    assert text["seed"] == seed


def test_provenance_chunks(client: TestClient) -> None:
    assert_provenance(single_png(client, digit=6, seed=11), "6", "11")
    assert_provenance(client.get("/digits/6.png", params={"seed": 11}).content, "6", "11")
    (item,) = base64_images(client, digit=6, seed=11)
    assert_provenance(decode(item), "6", "11")
    grid = single_png(client, digit=6, n=3, seed=11, grid=True)
    assert_provenance(grid, "6,6,6", "11,12,13")


# ----- request ids -------------------------------------------------------------------------------
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


# ----- backpressure and readiness ----------------------------------------------------------------
def test_queue_full_is_503_with_retry_after(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with (
        serve(tiny_store, loader, max_queue_images=2, max_wait_ms=0) as client,
        ThreadPoolExecutor(3) as pool,
    ):
        gate = model().gate
        try:
            worker = client.app.state.services.worker  # type: ignore[attr-defined]

            def post(seed: int) -> httpx2.Response:
                return client.post("/generate", json={"digit": 1, "seed": seed, "format": "png"})

            busy = pool.submit(post, 0)
            assert model().entered.wait(10), "the worker never started a forward pass"
            queued = [pool.submit(post, seed) for seed in (1, 2)]
            wait_until(lambda: worker.queued_images == 2)

            rejected = post(3)
            assert rejected.status_code == 503
            assert rejected.headers["retry-after"] == "1"
            assert "queue full" in rejected.json()["detail"]
            assert "limit 2" in rejected.json()["detail"]
        finally:
            gate.set()
        for future in (busy, *queued):
            response = future.result(timeout=10)
            assert response.status_code == 200
            assert image(response.content).size == (28, 28)
        assert model().batch_sizes == [1, 2]  # the two queued requests shared one forward pass
        metrics = client.get("/metrics").text
        assert 'gan_rejected_requests_total{reason="queue_full"} 1.0' in metrics


def test_request_deadline_is_503_with_retry_after(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with serve(tiny_store, loader, request_timeout_s=0.2) as client:
        try:
            response = client.post("/generate", json={"digit": 1, "seed": 0, "format": "png"})
        finally:
            model().gate.set()
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert "0.2s" in response.json()["detail"]
        # the worker is not stuck: the next request is served
        assert client.get("/digits/1.png", params={"seed": 0}).status_code == 200


def test_not_ready_until_warm_up_finishes(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with serve(tiny_store, loader, ready=False, warmup_batches=1) as client:
        try:
            assert model().entered.wait(10), "warm-up never started"
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["status"] == "warming up"
            assert client.get("/healthz").status_code == 200  # alive while not ready
        finally:
            model().gate.set()
        wait_ready(client)
        assert model().batch_sizes[0] == 32  # warm-up runs the largest batch
        assert client.get("/digits/0.png", params={"seed": 1}).status_code == 200


# ----- validation errors -------------------------------------------------------------------------
@pytest.fixture
def strict_client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store, max_n=8, max_scale=4, max_body_bytes=256) as client:
        yield client


def assert_422(response: httpx2.Response, loc: list[Any], *fragments: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    for fragment in fragments:
        assert fragment in error["msg"], (fragment, error["msg"])


@pytest.mark.parametrize(
    ("body", "loc", "fragments"),
    [
        ({"n": 0}, ["body", "n"], ["greater than or equal to 1"]),
        ({"n": 9}, ["body", "n"], ["8", "GAN_MAX_N"]),
        ({"n": 5000}, ["body", "n"], ["4096"]),
        ({"scale": 0}, ["body", "scale"], ["greater than or equal to 1"]),
        ({"scale": 5}, ["body", "scale"], ["4", "GAN_MAX_SCALE"]),
        ({"digit": 10}, ["body", "digit"], ["less than or equal to 9"]),
        ({"digit": -1}, ["body", "digit"], ["greater than or equal to 0"]),
        ({"seed": -1}, ["body", "seed"], ["greater than or equal to 0"]),
        ({"seed": MAX_REQUEST_SEED + 1}, ["body", "seed"], [str(MAX_REQUEST_SEED)]),
        ({"n": "x"}, ["body", "n"], ["valid integer"]),
        ({"n": "2"}, ["body", "n"], ["valid integer"]),  # no coercion from strings
        ({"n": 1.5}, ["body", "n"], ["valid integer"]),
        ({"grid": 0}, ["body", "grid"], ["valid boolean"]),
        ({"colour": "red"}, ["body", "colour"], ["Extra inputs are not permitted"]),
        ({"format": "gif"}, ["body", "format"], ["'png' or 'base64'"]),
        ({"n": 2, "grid": True, "format": "base64"}, ["body", "grid"], ["format=png"]),
        ({"n": 2, "format": "png"}, ["body", "n"], ["grid=true", "n=1"]),
        ({"version": "../x"}, ["body", "version"], ["should match pattern"]),
    ],
)
def test_generate_validation_errors(
    strict_client: TestClient, body: dict[str, Any], loc: list[Any], fragments: list[str]
) -> None:
    assert_422(strict_client.post("/generate", json=body), loc, *fragments)


def test_integral_float_is_an_integer(strict_client: TestClient) -> None:
    """JSON Schema counts 2.0 as an integer, so the server does too."""
    response = strict_client.post("/generate", json={"n": 2.0, "seed": 0, "format": "base64"})
    assert response.status_code == 200
    assert len(response.json()["images"]) == 2


def test_png_with_n_over_1_via_accept_needs_grid(strict_client: TestClient) -> None:
    response = strict_client.post("/generate", json={"n": 2}, headers={"Accept": "image/png"})
    assert_422(response, ["body", "n"], "grid=true")


def test_malformed_json_is_422(strict_client: TestClient) -> None:
    response = strict_client.post(
        "/generate", content=b'{"n": 1,', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"][0] == "body"
    assert error["type"] == "json_invalid"


@pytest.mark.parametrize(
    ("path", "params", "loc", "fragments"),
    [
        ("/digits/10.png", {}, ["path", "digit"], ["less than or equal to 9"]),
        ("/digits/x.png", {}, ["path", "digit"], ["valid integer"]),
        ("/digits/3.png", {"scale": 0}, ["query", "scale"], ["greater than or equal to 1"]),
        ("/digits/3.png", {"scale": 5}, ["query", "scale"], ["4", "GAN_MAX_SCALE"]),
        ("/digits/3.png", {"seed": -1}, ["query", "seed"], ["greater than or equal to 0"]),
        ("/digits/3.png", {"version": "bad/../name"}, ["query", "version"], ["pattern"]),
        ("/digits/3.png", {"version": "bad version"}, ["query", "version"], ["pattern"]),
    ],
)
def test_digit_url_validation_errors(
    strict_client: TestClient,
    path: str,
    params: dict[str, Any],
    loc: list[Any],
    fragments: list[str],
) -> None:
    assert_422(strict_client.get(path, params=params), loc, *fragments)


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


def test_concurrent_requests_are_all_served(client: TestClient) -> None:
    """Requests arriving together (batched by the worker) each get their own images."""
    seeds = list(range(20, 28))
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda seed: client.get("/digits/5.png", params={"seed": seed}), seeds)
        )
    for seed, response in zip(seeds, results, strict=True):
        assert response.status_code == 200
        assert response.headers["x-seed"] == str(seed)
        alone = single_png(client, digit=5, seed=seed)
        assert diff(pixels(response.content), pixels(alone)) <= 1
