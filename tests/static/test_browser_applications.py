"""The application panels in a real browser (tests/support/browser.py): restoring a damaged digit
painted on the canvas (a generated digit, then an uploaded image of another size), and
downloading a data set with progress (npz and idx, and a pin on another version refused).
"""

from __future__ import annotations

import base64
import io
import re
import struct
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, FilePayload, Page, expect

from support.browser import DESKTOP, PHONE, assert_fits, drag, open_page, post_request

pytestmark = pytest.mark.slow
TIMES = "\N{MULTIPLICATION SIGN}"  # as the page writes sizes: 120 x 80


def decode_png(data_url: str) -> np.ndarray:
    payload = data_url.split(",", 1)[1] if data_url.startswith("data:") else data_url
    with Image.open(io.BytesIO(base64.b64decode(payload))) as image:
        return np.asarray(image.convert("L"))


def restored_pixels(page: Page) -> int:
    """Once the restored digit is shown: its width in pixels (28)."""
    page.wait_for_function(
        """() => {
            const img = document.getElementById('restore-output');
            return img.complete && img.naturalWidth > 0;
        }"""
    )
    width: int = page.evaluate("() => document.getElementById('restore-output').naturalWidth")
    return width


def damaged_on_canvas(page: Page) -> int:
    """The editor's red pixels: the damage painted so far."""
    count: int = page.evaluate(
        """() => {
            const canvas = document.getElementById('restore-canvas');
            const data = canvas.getContext('2d').getImageData(0, 0, 28, 28).data;
            let red = 0;
            for (let i = 0; i < data.length; i += 4) if (data[i] > data[i + 1] + 60) red += 1;
            return red;
        }"""
    )
    return count


def restore(page: Page) -> tuple[dict[str, Any], dict[str, Any]]:
    """Clicks Restore: (the request's JSON body, the response's JSON body)."""
    with page.expect_response("**/restore") as response_info:
        page.get_by_role("button", name="Restore", exact=True).click()
    response = response_info.value
    assert response.ok, response.text()
    sent = response.request.post_data_json
    assert isinstance(sent, dict)
    answer: dict[str, Any] = response.json()
    return sent, answer


def test_restore_panel_paints_damage_and_shows_the_reading(server: str, browser: Browser) -> None:
    with open_page(browser) as (page, _):
        page.goto(server + "/")
        message = page.locator("#restore-message")
        # A generated digit is loaded to start from; without damage there is nothing to restore.
        expect(message).to_contain_text("Loaded the generated 7 of seed 0")
        page.get_by_role("button", name="Restore", exact=True).click()
        expect(message).to_contain_text("Paint the damaged part first")

        # Paint a band of damage across the digit, and restore it.
        page.locator("#restore").scroll_into_view_if_needed()
        drag(page, "#restore-canvas", [(0.15, 0.45), (0.5, 0.5), (0.85, 0.55)])
        painted = damaged_on_canvas(page)
        assert painted > 20
        sent, answer = restore(page)
        image, mask = decode_png(sent["image"]), decode_png(sent["mask"])
        assert image.shape == mask.shape == (28, 28)
        assert int((mask >= 128).sum()) == painted == answer["damaged_pixels"]
        assert "digit" not in sent  # unknown: the server infers it
        assert restored_pixels(page) == 28
        expect(message).to_contain_text(f"Restored as {answer['digit']}")
        reading = page.locator("#restore-reading")
        score = f"{answer['score'] * 100:.1f} %"
        expect(reading).to_contain_text(re.compile(rf"Reading\s*{answer['digit']}\s*score {score}"))
        expect(reading).to_contain_text("Reconstruction error")
        expect(reading).to_contain_text(f"{answer['reconstruction_error']:.3f}")
        expect(reading).to_contain_text(f"{painted} of 784")
        expect(page.locator("#restore-save")).to_have_attribute("href", re.compile("^data:"))

        # An uploaded image of any size (dark on light here) is scaled to 28 x 28 and inverted.
        upload: FilePayload = {
            "name": "three.png",
            "mimeType": "image/png",
            "buffer": drawn_three(),
        }
        page.set_input_files("#restore-file", files=[upload])
        expect(message).to_contain_text(
            f"Loaded three.png (120 {TIMES} 80, scaled to 28 {TIMES} 28"
        )
        expect(message).to_contain_text("inverted to light on dark")
        drag(page, "#restore-canvas", [(0.5, 0.1), (0.5, 0.9)])
        page.get_by_label("The digit it is", exact=True).select_option("3")
        sent, answer = restore(page)
        assert sent["digit"] == 3 and answer["digit"] == 3 and answer["digit_given"]
        light = decode_png(sent["image"])
        assert light.mean() < 128  # light strokes on a dark ground, like MNIST
        expect(page.locator("#restore-reading")).to_contain_text("Digit (as you gave it)")
        expect(message).to_contain_text("Restored as 3 (the digit you gave)")
        assert_fits(page, DESKTOP, "restore-desktop.png")
        assert_fits(page, PHONE, "restore-phone.png")


def drawn_three() -> bytes:
    """A dark "3" on white, 120 x 80 pixels: not MNIST's size, shape or polarity."""
    image = Image.new("RGB", (120, 80), "white")
    draw = ImageDraw.Draw(image)
    draw.arc((40, 8, 80, 40), 200, 90, fill="black", width=7)
    draw.arc((40, 38, 80, 72), 270, 160, fill="black", width=7)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_dataset_panel_downloads_with_progress(server: str, browser: Browser) -> None:
    with open_page(browser) as (page, _):
        page.goto(server + "/")
        expect(page.locator("#dataset-version")).to_have_value("tiny")  # pinned to the served
        page.get_by_role("button", name="None", exact=True).click()
        page.locator("input[name=dataset-digit][value='3']").check()
        page.locator("input[name=dataset-digit][value='8']").check()
        page.get_by_label("Images per digit", exact=True).fill("5")
        page.get_by_label("First seed", exact=True).fill("7")

        path, sent = download(page)
        assert sent == {
            "digits": [3, 8], "per_digit": 5, "format": "npz", "seed": 7, "version": "tiny"
        }  # fmt: skip
        with np.load(path) as archive:
            assert archive["images"].shape == (10, 28, 28)
            assert archive["labels"].tolist() == [3] * 5 + [8] * 5
            assert archive["seeds"].tolist() == list(range(7, 17))
        # The same bytes as the API's own answer to the same request.
        assert Path(path).read_bytes() == post_bytes(server, sent)
        message = page.locator("#dataset-message")
        expect(message).to_contain_text("Saved synthetic-mnist-7-10.npz: 10 images")
        expect(message).to_contain_text("model tiny, first seed 7")
        bar = page.locator("#dataset-progress")
        expect(bar).to_have_attribute("aria-valuetext", re.compile(r"\d+(\.\d)? kB received"))
        assert bar.evaluate("(bar) => bar.value === bar.max && bar.max > 0")

        # The MNIST files, in a zip.
        page.get_by_label("Format", exact=True).select_option("idx")
        path, _ = download(page)
        with zipfile.ZipFile(path) as archive:
            images = archive.read("images-idx3-ubyte")
            labels = archive.read("labels-idx1-ubyte")
        assert struct.unpack(">IIII", images[:16]) == (0x803, 10, 28, 28)
        assert list(labels[8:]) == [3] * 5 + [8] * 5

        # A pin on a version that is not served is refused, and said.
        page.get_by_label("Model version", exact=True).fill("tiny-b")
        page.get_by_role("button", name="Download data set", exact=True).click()
        expect(message).to_contain_text("tiny-b")
        expect(message).to_have_class(re.compile("error"))
        assert_fits(page, DESKTOP, "datasets-desktop.png")
        assert_fits(page, PHONE, "datasets-phone.png")


def download(page: Page) -> tuple[str, dict[str, Any]]:
    """Clicks "Download data set": (the saved file's path, the request's JSON body)."""
    with page.expect_download() as download_info, page.expect_request("**/datasets") as request:
        page.get_by_role("button", name="Download data set", exact=True).click()
    sent = request.value.post_data_json
    assert isinstance(sent, dict)
    return str(download_info.value.path()), sent


def post_bytes(base: str, body: dict[str, Any]) -> bytes:
    """The bytes POST /datasets answers to ``body``."""
    with urllib.request.urlopen(post_request(f"{base}/datasets", body), timeout=30) as response:
        data: bytes = response.read()
    return data
