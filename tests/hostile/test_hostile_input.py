"""Hostile input, in process: non-finite numbers, pathological multipart headers and bodies,
oversized images. Every case is a clear 4xx naming the field, never a 500."""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from gan.store import ModelStore
from support.app import serve

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"]
TOKEN = "hostile-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture
def admin_client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store, admin_token=TOKEN) as client:
        yield client


def png(side: int = 28) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), 0).save(buffer, format="PNG")
    return buffer.getvalue()


def assert_names_field(response: object, field: str) -> None:
    assert getattr(response, "status_code") == 422, getattr(response, "text")  # noqa: B009
    errors = response.json()["detail"]  # type: ignore[attr-defined]
    assert any(error["loc"][-1] == field for error in errors), errors


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize(
    ("path", "template", "field"),
    [
        ("/generate", '{"digit": %s}', "digit"),
        ("/generate", '{"n": %s}', "n"),
        ("/generate", '{"seed": %s}', "seed"),
        ("/generate", '{"scale": %s}', "scale"),
        ("/generate", '{"truncation": %s}', "truncation"),
        ("/datasets", '{"per_digit": %s}', "per_digit"),
        ("/datasets", '{"per_digit": 1, "seed": %s}', "seed"),
        ("/datasets", '{"per_digit": 1, "digits": [%s]}', 0),
        ("/datasets", '{"per_digit": 1, "truncation": %s}', "truncation"),
        ("/restore", '{"image": "x", "mask_rule": "black", "steps": %s}', "steps"),
        ("/restore", '{"image": "x", "mask_rule": "black", "seed": %s}', "seed"),
        ("/jobs", '{"lr_g": %s}', "lr_g"),
        ("/jobs", '{"ema_decay": %s}', "ema_decay"),
        ("/jobs", '{"steps": %s}', "steps"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(
    admin_client: TestClient, path: str, template: str, field: str | int, number: str
) -> None:
    response = admin_client.post(path, content=template % number, headers=AUTH)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(error["loc"][-1] == field for error in errors), errors


def test_a_query_number_that_is_not_finite_is_422(admin_client: TestClient) -> None:
    for value in NON_FINITE:
        response = admin_client.get("/digits/3.png", params={"seed": value})
        assert_names_field(response, "seed")
        response = admin_client.get("/digits/3.png", params={"truncation": value})
        assert_names_field(response, "truncation")


@pytest.mark.parametrize("where", ["content-type", "content-disposition"])
def test_nested_parentheses_in_multipart_headers_are_4xx(
    admin_client: TestClient, where: str
) -> None:
    comment = "(" * 500 + ")" * 500
    content_type = "multipart/form-data; boundary=x"
    disposition = 'form-data; name="image"; filename="a.png"'
    if where == "content-type":
        content_type += f" {comment}"
    else:
        disposition += f" {comment}"
    body = (
        f"--x\r\nContent-Disposition: {disposition}\r\nContent-Type: image/png\r\n\r\n".encode()
        + png()
        + b"\r\n--x--\r\n"
    )
    response = admin_client.post("/restore", content=body, headers={"Content-Type": content_type})
    assert 400 <= response.status_code < 500, response.text


def test_too_many_form_parts_are_refused(admin_client: TestClient) -> None:
    parts = b"".join(
        f'--x\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n'.encode()
        for i in range(50)
    )
    response = admin_client.post(
        "/restore",
        content=parts + b"--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert response.status_code == 422, response.text
    assert "Too many fields" in response.json()["detail"][0]["msg"]


def test_many_content_type_parameters_are_parsed_quickly(admin_client: TestClient) -> None:
    """The header is bounded by the server (see the end-to-end file); within that bound, a
    parameter-stuffed Content-Type is still an answer, not a stall or a 500."""
    content_type = "multipart/form-data; boundary=x" + "; a=b" * 3000
    response = admin_client.post(
        "/restore", content=b"--x--\r\n", headers={"Content-Type": content_type}
    )
    assert 400 <= response.status_code < 500, response.text


def huge_png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height``, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    )


def test_a_giant_png_header_is_a_size_message(admin_client: TestClient) -> None:
    image = base64.b64encode(huge_png_header(100_000, 100_000)).decode()
    response = admin_client.post("/restore", json={"image": image, "mask_rule": "black"})
    assert response.status_code == 422, response.text
    message = response.json()["detail"][0]["msg"]
    assert "100000x100000" in message, message


def test_a_form_content_type_longer_than_a_boundary_needs_is_431(admin_client: TestClient) -> None:
    """Its parameters would be parsed on the event loop: refused before, whatever the head limit."""
    content_type = "multipart/form-data; boundary=x" + "; a=b" * 200
    response = admin_client.post(
        "/restore", content=b"--x--\r\n", headers={"Content-Type": content_type}
    )
    assert response.status_code == 431, response.text
    assert "at most 512" in response.json()["detail"]
