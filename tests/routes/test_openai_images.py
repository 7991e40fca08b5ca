"""POST /v1/images/generations: the OpenAI Images API shape, driven in process and by the
official ``openai`` client against a real server process."""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin

from app.schemas.openai import PromptError, digit_of
from gan.store import ModelStore
from support.app import single_png
from support.process import ServerProcess, running_server


@pytest.mark.parametrize(
    ("prompt", "digit"),
    [("7", 7), ("seven", 7), ("a handwritten 7", 7), ("Draw a SEVEN please", 7), ("0", 0)],
)
def test_the_prompt_names_the_digit(prompt: str, digit: int) -> None:
    assert digit_of(prompt) == digit


@pytest.mark.parametrize("prompt", ["a cat", "17", "3 or 4", "seven and eight", ""])
def test_a_prompt_without_one_digit_is_refused(prompt: str) -> None:
    with pytest.raises(PromptError, match="name one digit"):
        digit_of(prompt)


def test_b64_json_images_of_the_asked_size(client: TestClient) -> None:
    response = client.post(
        "/v1/images/generations", json={"prompt": "a handwritten 3", "n": 2, "size": "56x56"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["created"], int) and len(body["data"]) == 2
    for item in body["data"]:
        image = Image.open(io.BytesIO(base64.b64decode(item["b64_json"])))
        assert isinstance(image, PngImagePlugin.PngImageFile)
        assert image.size == (56, 56) and image.text["digit"] == "3"
        assert item["revised_prompt"].startswith("a handwritten 3 (seed ")


def test_url_format_gives_the_services_own_pinned_image_urls(client: TestClient) -> None:
    response = client.post(
        "/v1/images/generations", json={"prompt": "4", "response_format": "url", "size": "28x28"}
    )
    (item,) = response.json()["data"]
    url = item["url"]
    assert url.startswith("http://testserver/digits/4.png?seed=") and "version=tiny" in url
    image = client.get(url)
    assert image.status_code == 200 and image.headers["cache-control"].endswith("immutable")


def test_truncation_is_an_extra_body_field_named_in_urls_and_prompts(client: TestClient) -> None:
    def images(**body: object) -> list[dict[str, str]]:
        response = client.post("/v1/images/generations", json={"prompt": "4", **body})
        assert response.status_code == 200, response.text
        data: list[dict[str, str]] = response.json()["data"]
        return data

    (item,) = images(response_format="url", truncation=0.5)
    assert "truncation=0.5" in item["url"]
    assert ", truncation 0.5, model tiny)" in item["revised_prompt"]
    seed = int(item["url"].split("seed=")[1].split("&")[0])
    png = client.get(item["url"]).content
    assert png == single_png(client, digit=4, seed=seed, truncation=0.5)
    assert png != single_png(client, digit=4, seed=seed)
    (b64,) = images(truncation=0.5)
    drawn = base64.b64decode(b64["b64_json"])
    assert Image.open(io.BytesIO(drawn)).text["truncation"] == "0.5"  # type: ignore[attr-defined]
    (plain,) = images(response_format="url", truncation=1)
    assert "truncation" not in plain["url"] and "truncation" not in plain["revised_prompt"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "a cat"}, "prompt"),
        ({"prompt": "7", "size": "1024x1024"}, "size"),
        ({"prompt": "7", "n": 0}, "n"),
        ({"prompt": "7", "n": 10_000}, "n"),
        ({"prompt": "7", "response_format": "gif"}, "response_format"),
        ({"n": 1}, "prompt"),
        ('{"prompt": "7", "n": NaN}', "n"),
        ({"prompt": "7", "truncation": 0}, "truncation"),
        ({"prompt": "7", "truncation": -0.1}, "truncation"),
        ({"prompt": "7", "truncation": 1.5}, "truncation"),
        ({"prompt": "7", "truncation": "NaN"}, "truncation"),
        ('{"prompt": "7", "truncation": NaN}', "truncation"),
    ],
)
def test_errors_come_in_openais_shape(
    client: TestClient, body: dict[str, object] | str, param: str
) -> None:
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post(
        "/v1/images/generations", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]


def test_another_model_is_a_404_in_openais_shape(client: TestClient) -> None:
    response = client.post("/v1/images/generations", json={"prompt": "7", "model": "other"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


@pytest.fixture
def live(tiny_store: ModelStore, tmp_path: Path) -> Iterator[ServerProcess]:
    with running_server(tiny_store.root, tmp_path) as server:
        yield server


@pytest.mark.slow
def test_the_official_openai_client_works_unchanged(live: ServerProcess) -> None:
    client = openai.OpenAI(base_url=f"{live.base}/v1", api_key="any-key")
    result = client.images.generate(prompt="a handwritten 7", n=3, size="112x112")
    assert result.data is not None and len(result.data) == 3 and result.created > 0
    for item in result.data:
        assert item.b64_json is not None
        assert Image.open(io.BytesIO(base64.b64decode(item.b64_json))).size == (112, 112)
    urls = client.images.generate(prompt="seven", response_format="url", model="tiny")
    assert urls.data is not None and urls.data[0].url is not None
    assert "/digits/7.png?seed=" in urls.data[0].url
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(prompt="a cat")
    assert refused.value.param == "prompt"
    # Truncation is no OpenAI parameter: the client sends it as an extra body field.
    truncated = client.images.generate(
        prompt="7", response_format="url", extra_body={"truncation": 0.5}
    )
    assert truncated.data is not None and truncated.data[0].url is not None
    url = truncated.data[0].url
    assert "truncation=0.5" in url
    seed = int(url.split("seed=")[1].split("&")[0])
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["X-Truncation"] == "0.5"
        from_url = response.read()
    assert Image.open(io.BytesIO(from_url)).text["seed"] == str(seed)  # type: ignore[attr-defined]
    # The b64 image is the one its seed's GET URL draws at that truncation, byte for byte.
    b64 = client.images.generate(prompt="7", extra_body={"truncation": 0.5})
    assert b64.data is not None and b64.data[0].b64_json is not None
    prompt = b64.data[0].revised_prompt or ""
    assert ", truncation 0.5, model tiny)" in prompt
    b64_seed = prompt.split("(seed ")[1].split(",")[0]
    get_url = f"{live.base}/digits/7.png?seed={b64_seed}&truncation=0.5"
    with urllib.request.urlopen(get_url, timeout=10) as response:
        assert base64.b64decode(b64.data[0].b64_json) == response.read()
    with pytest.raises(openai.BadRequestError) as out_of_range:
        client.images.generate(prompt="7", extra_body={"truncation": 1.5})
    assert out_of_range.value.param == "truncation"
