"""GET /digits/{digit}.png: image URLs, caching (ETag, Cache-Control) and version pins."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from support.app import (
    assert_422,
    image,
    pixels,
    single_png,
)
from support.models import TINY_VERSION as VERSION


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


def test_seeded_get_has_weak_etag_and_public_cache(client: TestClient) -> None:
    response = client.get("/digits/3.png", params={"seed": 5})
    etag = response.headers["etag"]
    assert re.fullmatch(r'W/"[0-9a-f]{32}"', etag)  # weak: the same image, maybe not the bytes
    assert response.headers["cache-control"] == "public, max-age=300"
    # the tag is a function of (version, digit, seed, scale)
    assert client.get("/digits/3.png", params={"seed": 5}).headers["etag"] == etag
    assert client.get("/digits/3.png", params={"seed": 6}).headers["etag"] != etag
    assert client.get("/digits/3.png", params={"seed": 5, "scale": 2}).headers["etag"] != etag


def test_the_get_url_with_truncation_reproduces_the_post(client: TestClient) -> None:
    params: dict[str, str | int | float] = {"seed": 3, "scale": 2, "truncation": 0.5}
    response = client.get("/digits/7.png", params=params)
    assert response.status_code == 200
    assert response.headers["x-truncation"] == "0.5"
    assert response.content == single_png(client, digit=7, seed=3, scale=2, truncation=0.5)
    untruncated = client.get("/digits/7.png", params={"seed": 3, "scale": 2})
    assert response.content != untruncated.content
    # truncation=1 is the URL without it: same bytes, same ETag, no X-Truncation.
    one = client.get("/digits/7.png", params={"seed": 3, "scale": 2, "truncation": 1})
    assert one.content == untruncated.content
    assert one.headers["etag"] == untruncated.headers["etag"]
    assert "x-truncation" not in one.headers


def test_the_etag_varies_with_truncation(client: TestClient) -> None:
    def etag(**params: str | int | float) -> str:
        return client.get("/digits/3.png", params={"seed": 5, **params}).headers["etag"]

    tags = {etag(), etag(truncation=0.5), etag(truncation=0.7), etag(truncation=0.25)}
    assert len(tags) == 4
    assert etag(truncation=0.5) == etag(truncation="0.50")  # the value, not its spelling
    params: dict[str, str | int | float] = {"seed": 5, "truncation": 0.5, "version": VERSION}
    first = client.get("/digits/3.png", params=params)
    assert "immutable" in first.headers["cache-control"]
    cached = client.get(
        "/digits/3.png", params=params, headers={"If-None-Match": first.headers["etag"]}
    )
    assert cached.status_code == 304
    other = client.get(
        "/digits/3.png",
        params={**params, "truncation": 0.7},
        headers={"If-None-Match": first.headers["etag"]},
    )
    assert other.status_code == 200 and other.content != first.content


def test_pinned_version_is_immutable(client: TestClient) -> None:
    response = client.get("/digits/3.png", params={"seed": 5, "version": VERSION})
    assert response.status_code == 200
    assert "immutable" in response.headers["cache-control"]
    assert "public" in response.headers["cache-control"]
    assert response.headers["etag"]


def test_if_none_match_gives_304_without_body(client: TestClient) -> None:
    params: dict[str, str | int] = {"seed": 5, "version": VERSION}
    etag = client.get("/digits/3.png", params=params).headers["etag"]
    strong = etag.removeprefix("W/")
    for if_none_match in (etag, strong, f'"other", {etag}', f'W/"other", {strong}', "*"):
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


@pytest.mark.parametrize("path", ["/generate", "/digits/4.png"])
def test_pinned_to_another_version_is_404(client: TestClient, path: str) -> None:
    if path == "/generate":
        response = client.post(path, json={"digit": 4, "seed": 1, "version": "older"})
    else:
        response = client.get(path, params={"seed": 1, "version": "older"})
    assert response.status_code == 404
    assert response.json()["detail"] == "model version 'older' is not served here (active: 'tiny')"


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
        ("/digits/3.png", {"truncation": 0}, ["query", "truncation"], ["greater than 0"]),
        ("/digits/3.png", {"truncation": -0.1}, ["query", "truncation"], ["greater than 0"]),
        ("/digits/3.png", {"truncation": 1.5}, ["query", "truncation"], ["less than or equal"]),
        ("/digits/3.png", {"truncation": "NaN"}, ["query", "truncation"], ["finite number"]),
        ("/digits/3.png", {"truncation": "inf"}, ["query", "truncation"], ["finite number"]),
        ("/digits/3.png", {"truncation": "x"}, ["query", "truncation"], ["valid number"]),
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
