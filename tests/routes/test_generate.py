"""POST /generate: formats, determinism, provenance, pinning, validation and backpressure."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.schemas.common import MAX_REQUEST_SEED
from gan.store import ModelStore
from support.app import (
    assert_422,
    base64_images,
    decode,
    diff,
    gated_loader,
    generate,
    image,
    pixels,
    serve,
    single_png,
    wait_until,
)
from support.models import TINY_VERSION as VERSION
from support.models import tiny_generator


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


def test_truncation_one_is_the_untruncated_image(client: TestClient) -> None:
    """truncation=1 is exactly the request without it: the same bytes, JSON and headers."""
    plain = generate(client, digit=3, seed=21, format="png", scale=2)
    one = generate(client, digit=3, seed=21, format="png", scale=2, truncation=1)
    assert one.content == plain.content
    assert "x-truncation" not in one.headers and "x-truncation" not in plain.headers
    assert "truncation" not in image(one.content).text  # type: ignore[attr-defined]
    assert generate(client, n=3, seed=21, format="base64", truncation=1.0).json() == (
        generate(client, n=3, seed=21, format="base64").json()
    )
    assert [item["truncation"] for item in base64_images(client, n=2, seed=21)] == [1.0, 1.0]


def test_truncation_changes_the_image_and_names_it(client: TestClient) -> None:
    plain = single_png(client, digit=3, seed=21)
    response = generate(client, digit=3, seed=21, format="png", truncation=0.5)
    assert response.headers["x-truncation"] == "0.5"
    assert response.headers["x-seed"] == "21"
    assert not np.array_equal(pixels(response.content), pixels(plain))
    # Reproducible: same seed, version and truncation, same bytes.
    assert single_png(client, digit=3, seed=21, truncation=0.5) == response.content
    assert single_png(client, digit=3, seed=21, truncation=0.25) != response.content
    assert image(response.content).text["truncation"] == "0.5"  # type: ignore[attr-defined]
    # Per image in the JSON; image i is seed + i at the same truncation, alone.
    batch = base64_images(client, digit=3, n=3, seed=20, truncation=0.5)
    assert [(item["seed"], item["truncation"]) for item in batch] == [
        (20, 0.5), (21, 0.5), (22, 0.5),
    ]  # fmt: skip
    assert diff(pixels(decode(batch[1])), pixels(response.content)) <= 1
    grid = single_png(client, digit=3, n=2, seed=20, grid=True, truncation=0.5)
    assert image(grid).text["truncation"] == "0.5"  # type: ignore[attr-defined]


def test_random_digits_do_not_depend_on_truncation(client: TestClient) -> None:
    """The digit drawn from a seed is the same at every truncation: only the latent is scaled."""
    digits = [item["digit"] for item in base64_images(client, n=8, seed=3)]
    assert [item["digit"] for item in base64_images(client, n=8, seed=3, truncation=0.3)] == (
        digits
    )


def test_generate_pinned_to_the_active_version(client: TestClient) -> None:
    pinned = generate(client, digit=4, n=2, seed=9, version=VERSION)
    assert pinned.json() == generate(client, digit=4, n=2, seed=9).json()
    assert pinned.headers["x-model-version"] == VERSION


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


@pytest.mark.parametrize(
    ("body", "loc", "fragments"),
    [
        ({"n": 0}, ["body", "n"], ["greater than or equal to 1"]),
        ({"n": 9}, ["body", "n"], ["8", "GAN_MAX_N"]),
        # Past the hard cap too, the message names the limit in force, not the cap.
        ({"n": 5000}, ["body", "n"], ["equal to 8 ", "GAN_MAX_N"]),
        ({"scale": 100}, ["body", "scale"], ["equal to 4 ", "GAN_MAX_SCALE"]),
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
        ({"truncation": 0}, ["body", "truncation"], ["greater than 0"]),
        ({"truncation": -0.1}, ["body", "truncation"], ["greater than 0"]),
        ({"truncation": 1.5}, ["body", "truncation"], ["less than or equal to 1"]),
        ({"truncation": "NaN"}, ["body", "truncation"], ["valid number"]),  # no coercion
        ({"truncation": "0.5"}, ["body", "truncation"], ["valid number"]),
        ({"truncation": True}, ["body", "truncation"], ["valid number"]),
    ],
)
def test_generate_validation_errors(
    strict_client: TestClient, body: dict[str, Any], loc: list[Any], fragments: list[str]
) -> None:
    assert_422(strict_client.post("/generate", json=body), loc, *fragments)


def test_non_finite_truncation_is_422_naming_it(strict_client: TestClient) -> None:
    for number in ("NaN", "Infinity", "-Infinity", "1e400"):
        response = strict_client.post(
            "/generate",
            content=f'{{"seed": 1, "truncation": {number}}}',
            headers={"Content-Type": "application/json"},
        )
        assert_422(response, ["body", "truncation"], "finite number")


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
