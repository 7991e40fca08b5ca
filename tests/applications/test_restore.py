"""POST /restore on the tiny model: JSON and form bodies, every mask rule, the output (size,
undamaged pixels kept exactly, digit and scores), determinism, every bad input, backpressure and
independence from image generation. Also gan.restoration on its own."""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image, PngImagePlugin
from torch import nn

from gan.restoration import NothingKnownError, RestorationError, restore, restore_batch
from gan.store import LoadedGenerator, ModelStore
from support.app import (
    GATE_TIMEOUT_S,
    wait_until,
)
from support.app import serve as serve_app
from support.models import tiny_generator

FAST = {"restore_steps": 4, "restore_restarts": 2, "restore_max_upload_bytes": 2048}


def serve(
    store: ModelStore,
    loader: Callable[[ModelStore, torch.device], LoadedGenerator] | None = None,
    **overrides: Any,
) -> AbstractContextManager[TestClient]:
    """The shared ``serve`` with fast restoration settings."""
    return serve_app(store, loader, **{**FAST, **overrides})


@pytest.fixture
def client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store) as client:
        yield client


def png(pixels: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def digit_image() -> np.ndarray:
    """A crude 1: a light vertical bar on black."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 200
    return image


def damaged_bottom() -> tuple[np.ndarray, np.ndarray]:
    """The digit with its bottom half painted pure white, and that mask."""
    image = digit_image()
    missing = np.zeros((28, 28), bool)
    missing[14:] = True
    image[missing] = 255
    return image, missing


def decoded(png_bytes: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png_bytes))
    assert image.size == (28, 28) and image.mode == "L"
    return np.asarray(image)


# ----- the service ----------------------------------------------------------------------------
def test_json_with_a_mask_rule_restores_and_keeps_the_undamaged_pixels(
    client: TestClient,
) -> None:
    image, missing = damaged_bottom()
    response = client.post("/restore", json={"image": b64(png(image)), "mask_rule": "white"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "tiny"
    assert body["digit_given"] is False and 0 <= body["digit"] <= 9
    assert set(body["scores"]) == {str(d) for d in range(10)}
    assert sum(body["scores"].values()) == pytest.approx(1.0)
    assert body["score"] == body["scores"][str(body["digit"])]
    assert body["damaged_pixels"] == int(missing.sum())
    assert 0 <= body["reconstruction_error"] <= 1
    assert (body["steps"], body["restarts"], body["seed"]) == (4, 2, 0)
    restored = decoded(base64.b64decode(body["png_base64"]))
    assert np.array_equal(restored[~missing], image[~missing])  # undamaged pixels kept exactly
    assert response.headers["x-digit"] == str(body["digit"])


def test_form_upload_with_a_mask_image_and_a_known_digit_returns_a_png(
    client: TestClient,
) -> None:
    image, missing = damaged_bottom()
    image[missing] = 0  # damage of any colour: the mask says where
    mask = np.where(missing, 255, 0).astype(np.uint8)
    response = client.post(
        "/restore",
        files={"image": ("digit.png", png(image), "image/png"), "mask": ("m.png", png(mask))},
        data={"digit": "1", "format": "png", "steps": "3", "restarts": "1"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-digit"] == "1" and response.headers["x-digit-score"] == "1"
    assert response.headers["x-damaged-pixels"] == str(int(missing.sum()))
    assert float(response.headers["x-reconstruction-error"]) >= 0
    restored = decoded(response.content)
    assert np.array_equal(restored[~missing], image[~missing])
    info = Image.open(io.BytesIO(response.content)).info
    assert info["Source"] == "restored" and info["model_version"] == "tiny"


def test_accept_header_picks_png(client: TestClient) -> None:
    image, _ = damaged_bottom()
    response = client.post(
        "/restore",
        json={"image": b64(png(image)), "mask_rule": "white"},
        headers={"Accept": "image/png"},
    )
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_black_and_transparent_rules_and_data_urls(client: TestClient) -> None:
    image = digit_image()
    black = client.post("/restore", json={"image": b64(png(image)), "mask_rule": "black"})
    assert black.status_code == 200, black.text
    assert black.json()["damaged_pixels"] == int((image == 0).sum())
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[..., :3] = image[..., None]
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # the top rows erased to transparency, as a browser canvas does
    url = "data:image/png;base64," + b64(png(rgba))
    clear = client.post("/restore", json={"image": url, "mask_rule": "transparent"})
    assert clear.status_code == 200, clear.text
    assert clear.json()["damaged_pixels"] == 10 * 28
    restored = decoded(base64.b64decode(clear.json()["png_base64"]))
    assert np.array_equal(restored[10:], image[10:])


def test_same_input_and_seed_restore_the_same(client: TestClient) -> None:
    image, _ = damaged_bottom()
    request = {"image": b64(png(image)), "mask_rule": "white", "seed": 7}
    first = client.post("/restore", json=request).json()
    assert client.post("/restore", json=request).json() == first


def test_a_mask_with_nothing_damaged_returns_the_input(client: TestClient) -> None:
    image = digit_image()
    response = client.post("/restore", json={"image": b64(png(image)), "mask_rule": "white"})
    assert response.status_code == 200
    assert np.array_equal(decoded(base64.b64decode(response.json()["png_base64"])), image)


def _bad_json_cases() -> list[tuple[str, dict[str, Any], str, str]]:
    image, _ = damaged_bottom()
    good = b64(png(image))
    everything = b64(png(np.full((28, 28), 255, np.uint8)))
    wrong_size = b64(png(np.zeros((32, 28), np.uint8)))
    big = b64(padded_png(image, 3000))  # over the tests' 2048-byte upload limit
    return [
        ("not an image", {"image": b64(b"hello"), "mask_rule": "white"}, "image", "PNG"),
        ("a JPEG", {"image": b64(jpeg(image)), "mask_rule": "white"}, "image", "PNG"),
        ("wrong size", {"image": wrong_size, "mask_rule": "white"}, "image", "28x32 pixels"),
        ("bad base64", {"image": "not base64!", "mask_rule": "white"}, "image", "base64"),
        ("data URL", {"image": "data:image/png," + good, "mask_rule": "white"}, "image", "base64"),
        ("too large", {"image": big, "mask_rule": "white"}, "image", "RESTORE_MAX_UPLOAD"),
        ("no image", {"mask_rule": "white"}, "image", "required"),
        ("image null", {"image": None, "mask_rule": "white"}, "image", "valid string"),
        ("all damaged", {"image": everything, "mask_rule": "white"}, "mask_rule", "all 784"),
        ("mask all", {"image": good, "mask": everything}, "mask", "all 784"),
        ("mask size", {"image": good, "mask": wrong_size}, "mask", "28x32 pixels"),
        ("mask junk", {"image": good, "mask": b64(b"\x89PNG junk")}, "mask", "PNG"),
        ("no mask", {"image": good}, "mask", "mask_rule"),
        ("both", {"image": good, "mask": good, "mask_rule": "white"}, "mask_rule", "not both"),
        ("bad rule", {"image": good, "mask_rule": "grey"}, "mask_rule", "'white'"),
        ("no alpha", {"image": good, "mask_rule": "transparent"}, "mask_rule", "alpha"),
        ("digit 10", {"image": good, "mask_rule": "white", "digit": 10}, "digit", "9"),
        ("digit text", {"image": good, "mask_rule": "white", "digit": "3"}, "digit", "integer"),
        ("steps", {"image": good, "mask_rule": "white", "steps": 401}, "steps", "MAX_STEPS"),
        ("restarts", {"image": good, "mask_rule": "white", "restarts": 17}, "restarts", "MAX_R"),
        ("seed", {"image": good, "mask_rule": "white", "seed": -1}, "seed", "greater"),
        ("format", {"image": good, "mask_rule": "white", "format": "gif"}, "format", "'png'"),
        ("unknown", {"image": good, "mask_rule": "white", "colour": 1}, "colour", "Extra"),
    ]


def padded_png(pixels: np.ndarray, padding: int) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "x" * padding)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [case[1:] for case in _bad_json_cases()],
    ids=[case[0] for case in _bad_json_cases()],
)
def test_bad_json_bodies_are_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    response = client.post("/restore", json=body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][:2] == ["body", field] and words in e["msg"] for e in errors), errors


@pytest.mark.parametrize(
    ("files", "data", "field", "words"),
    [
        ({"image": ("d.png", b"GIF89a...")}, {"mask_rule": "white"}, "image", "PNG"),
        (
            {"image": ("d.png", png(np.zeros((28, 29), np.uint8)))},
            {"mask_rule": "white"},
            "image",
            "29x28",
        ),
        (
            {"image": ("d.png", png(digit_image()))},
            {"mask_rule": "white", "digit": "x"},
            "digit",
            "integer",
        ),
        (
            {"image": ("d.png", png(digit_image()))},
            {"mask_rule": "white", "size": "9"},
            "size",
            "Extra",
        ),
        ({"mask": ("m.png", png(digit_image()))}, {}, "image", "required"),
        (
            {"image": ("d.png", png(digit_image())), "mask": ("m.png", b"\x00" * 10)},
            {},
            "mask",
            "PNG",
        ),
        (
            {"image": ("d.png", png(digit_image()))},
            {"steps": "0", "mask_rule": "black"},
            "steps",
            "greater",
        ),
    ],
)
def test_bad_uploads_are_422_naming_the_field(
    client: TestClient, files: dict[str, Any], data: dict[str, str], field: str, words: str
) -> None:
    response = client.post("/restore", files=files, data=data)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][:2] == ["body", field] and words in e["msg"] for e in errors), errors


def test_bodies_neither_json_nor_form_and_broken_forms(client: TestClient) -> None:
    text = client.post("/restore", content=b"image", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    broken = client.post(
        "/restore",
        content=b"--x\r\nno headers here",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code == 422, broken.text
    assert broken.json()["detail"][0]["loc"] == ["body"]
    not_json = client.post("/restore", content=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 422


def test_a_body_over_the_size_limit_is_413(client: TestClient) -> None:
    response = client.post("/restore", json={"image": "A" * 20_000, "mask_rule": "white"})
    assert response.status_code == 413
    assert "GAN_MAX_BODY_BYTES" in response.json()["detail"]


def test_two_uploads_at_the_limit_fit_the_default_body_limit() -> None:
    """With the defaults, any two images each within GAN_RESTORE_MAX_UPLOAD_BYTES fit in one
    request body, as base64 JSON too."""
    from app.config import Settings

    settings = Settings(_env_file=None)
    encoded = 4 * -(-settings.restore_max_upload_bytes // 3)
    assert 2 * encoded + 200 < settings.max_body_bytes


# ----- backpressure, deadlines, independence from generation ------------------------------------
class BlockWhenOptimising(nn.Module):
    """A generator that blocks while gradients are on (a restoration optimising) until released,
    and runs freely for inference (image generation)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.release = threading.Event()
        self.optimising = threading.Event()

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and z.requires_grad:
            self.optimising.set()
            if not self.release.wait(GATE_TIMEOUT_S):
                raise RuntimeError("test never released the restoration")
        out: torch.Tensor = self.inner(z, labels)
        return out


def blocking_loader() -> tuple[
    Callable[[ModelStore, torch.device], LoadedGenerator], list[BlockWhenOptimising]
]:
    made: list[BlockWhenOptimising] = []

    def loader(store: ModelStore, device: torch.device) -> LoadedGenerator:
        loaded = store.load_generator(store.active_version(), device)
        wrapper = BlockWhenOptimising(loaded.model)
        made.append(wrapper)
        return LoadedGenerator(loaded.version, loaded.manifest, wrapper)  # type: ignore[arg-type]

    return loader, made


def test_generation_runs_while_a_restoration_is_busy_and_a_full_queue_is_503(
    tiny_store: ModelStore,
) -> None:
    loader, made = blocking_loader()
    image, _ = damaged_bottom()
    request = {"image": b64(png(image)), "mask_rule": "white"}
    with serve(tiny_store, loader, restore_queue_depth=1) as client, ThreadPoolExecutor(2) as pool:
        model = made[0]
        try:
            running = pool.submit(client.post, "/restore", json=request)
            assert model.optimising.wait(10)
            waiting = pool.submit(client.post, "/restore", json=request)
            restorer = client.app.state.services.restorer  # type: ignore[attr-defined]
            wait_until(lambda: restorer._queue.qsize() == 1)
            full = client.post("/restore", json=request)
            assert full.status_code == 503 and "GAN_RESTORE_QUEUE_DEPTH" in full.text
            assert full.headers["retry-after"] == "1"
            generated = client.post("/generate", json={"digit": 3, "seed": 1, "format": "png"})
            assert generated.status_code == 200  # generation does not wait for restorations
        finally:
            model.release.set()
        assert running.result(10).status_code == 200
        assert waiting.result(10).status_code == 200


def test_a_restoration_past_its_deadline_is_503(tiny_store: ModelStore) -> None:
    loader, made = blocking_loader()
    image, _ = damaged_bottom()
    with serve(tiny_store, loader, restore_timeout_s=0.3) as client:
        try:
            response = client.post(
                "/restore", json={"image": b64(png(image)), "mask_rule": "white"}
            )
        finally:
            made[0].release.set()
    assert response.status_code == 503 and "GAN_RESTORE_TIMEOUT_S" in response.text


# ----- the domain function --------------------------------------------------------------------
def test_restore_batch_shapes_digits_and_determinism() -> None:
    generator = tiny_generator()
    images = torch.zeros(3, 28, 28, dtype=torch.uint8)
    images[:, 5:20, 10:14] = 180
    missing = torch.zeros(3, 28, 28, dtype=torch.bool)
    missing[:, :, 14:] = True
    results = restore_batch(generator, images, missing, steps=4, restarts=2, seed=1)
    again = restore_batch(generator, images, missing, steps=4, restarts=2, seed=1)
    for result, repeat in zip(results, again, strict=True):
        assert result.image.shape == (28, 28) and result.image.dtype == torch.uint8
        assert torch.equal(result.image[:, :14], images[0, :, :14])
        assert torch.equal(result.image[:, 14:], result.generated[:, 14:])
        assert sum(result.scores.values()) == pytest.approx(1.0)
        assert result.digit == repeat.digit and torch.equal(result.image, repeat.image)
    known = restore_batch(generator, images, missing, digits=[4, 5, 6], steps=2, restarts=1)
    assert [r.digit for r in known] == [4, 5, 6]
    assert all(r.scores == {r.digit: 1.0} for r in known)


def test_restoration_lowers_the_error_on_the_known_pixels() -> None:
    generator = tiny_generator()
    with torch.no_grad():
        from gan.sampling import latents_for_seeds, to_uint8

        z, labels = latents_for_seeds([3], 8, [2])
        target = to_uint8(generator(z, labels))[0]
    missing = torch.zeros(28, 28, dtype=torch.bool)
    missing[:10] = True
    before = restore(generator, target, missing, digit=2, steps=0, restarts=1)
    after = restore(generator, target, missing, digit=2, steps=60, restarts=1)
    assert after.error < before.error


def test_restore_refuses_what_it_cannot_do() -> None:
    generator = tiny_generator()
    image = torch.zeros(28, 28, dtype=torch.uint8)
    with pytest.raises(NothingKnownError):
        restore(generator, image, torch.ones(28, 28, dtype=torch.bool))
    with pytest.raises(RestorationError, match="0-9"):
        restore(generator, image, torch.zeros(28, 28, dtype=torch.bool), digit=10)
    with pytest.raises(RestorationError, match="shape"):
        restore(generator, torch.zeros(27, 28, dtype=torch.uint8), torch.zeros(27, 28).bool())
    calls = []

    def stop() -> None:
        calls.append(1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore(generator, image, torch.zeros(28, 28, dtype=torch.bool), interrupt=stop)
    assert calls == [1]
