"""The page in a real browser (tests/support/browser.py): the "Active model" card and the "Draw
digits" panel, its errors, and a layout that fits a desktop and a phone.

(The README's pictures of the page are drawn on the shipped model by ``scripts/docs_images.py``.)
"""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin
from playwright.sync_api import Browser, Page, expect

from support.browser import (
    DESKTOP,
    MAX_N,
    MAX_SCALE,
    PHONE,
    assert_fits,
    captions,
    open_page,
    post_json,
    post_request,
    wait_for_images,
)

pytestmark = pytest.mark.slow


def test_page_generates_and_reports_errors(server: str, browser: Browser) -> None:
    with open_page(browser, viewport={"width": 1000, "height": 900}) as (page, console):
        page_loads_with_random_digits(page, server, console.errors)
        draws_one_digit_and_downloads_the_grid(page, server)
        draws_truncated_digits(page, server)
        names_the_field_of_each_error(page)
        # A new seed regenerates.
        page.get_by_label("Digit", exact=True).select_option("random")
        page.get_by_label("How many", exact=True).fill("10")
        page.get_by_role("button", name="Regenerate with a new seed", exact=True).click()
        wait_for_images(page, count=10, scale=3)
        assert page.get_by_label("Seed", exact=True).input_value() != "42"
        explains_a_busy_server(page)
        # Nothing wider than the screen, from a desktop down to a small phone.
        assert_fits(page, DESKTOP, "page-desktop.png")
        assert_fits(page, PHONE, "page-phone.png")
        assert_fits(page, {"width": 360, "height": 740}, "page-narrow.png")


def page_loads_with_random_digits(page: Page, base: str, console: list[str]) -> None:
    # The page loads, shows the model and, at once, ten random digits of seed 0.
    page.goto(base + "/")
    expect(page.locator("#model-version")).to_have_text("tiny")
    expect(page.locator("#model-metrics")).to_contain_text("not evaluated")
    wait_for_images(page, count=10, scale=3)
    # Random digits are the server's own choice for each seed (what POST /generate draws).
    served = post_json(f"{base}/generate", {"n": 10, "seed": 0, "format": "base64"})
    expected = [f"{image['digit']} · seed {image['seed']}" for image in served["images"]]
    assert [text.removesuffix(" PNG").strip() for text in captions(page)] == expected
    assert console == [], console

    # Accessible: every control has a label, every image a text alternative.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
            .map((el) => el.id || el.name)"""
    )
    assert unlabelled == []
    assert page.evaluate("() => [...document.images].every((img) => img.alt.trim() !== '')")


def draws_one_digit_and_downloads_the_grid(page: Page, base: str) -> None:
    # One digit, a seed, a count and a scale: real PNGs from the cacheable GET URLs.
    page.get_by_label("Digit", exact=True).select_option("7")
    page.get_by_label("Seed", exact=True).fill("42")
    page.get_by_label("How many", exact=True).fill("5")
    page.get_by_label("Scale", exact=True).fill("2")
    page.get_by_role("button", name="Generate", exact=True).click()
    wait_for_images(page, count=5, scale=2)
    assert captions(page)[0].startswith("7 · seed 42")
    assert captions(page)[4].startswith("7 · seed 46")
    first = page.locator("#results img").first.get_attribute("src")
    assert first == "/digits/7.png?seed=42&scale=2&version=tiny"
    expect(page.locator("#generate-message")).to_contain_text("5 images of the digit 7")

    # The grid download is the server's PNG of exactly these five images.
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download grid (PNG)", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "digits-7-seed-42-n5-x2.png"
    body = {"digit": 7, "n": 5, "seed": 42, "scale": 2, "format": "png", "grid": True}
    with urllib.request.urlopen(post_request(f"{base}/generate", body), timeout=10) as response:
        reference = Image.open(io.BytesIO(response.read()))
    with Image.open(io.BytesIO(Path(download.path()).read_bytes())) as grid:
        assert grid.format == "PNG" and grid.size == reference.size
        assert isinstance(grid, PngImagePlugin.PngImageFile)
        assert grid.text["seed"] == "42,43,44,45,46"  # provenance: these very images


def draws_truncated_digits(page: Page, base: str) -> None:
    # The truncation control (default 1, left out of every URL) names the images it draws: the
    # GET URLs carry it and reproduce what POST /generate draws at that truncation.
    truncation = page.get_by_label("Truncation", exact=True)
    expect(truncation).to_have_value("1")
    truncation.fill("0.5")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.wait_for_function(
        "() => document.querySelector('#results img').src.includes('truncation=0.5')"
    )
    wait_for_images(page, count=5, scale=2)
    first = page.locator("#results img").first.get_attribute("src")
    assert first == "/digits/7.png?seed=42&scale=2&truncation=0.5&version=tiny"
    assert captions(page)[0].startswith("7 · seed 42")
    alt = page.locator("#results img").first.get_attribute("alt")
    assert alt == "A generated handwritten 7 (seed 42, truncation 0.5)"
    expect(page.locator("#generate-message")).to_contain_text("truncation 0.5, model tiny")
    with urllib.request.urlopen(base + first, timeout=10) as response:
        shown = response.read()
    body = {"digit": 7, "seed": 42, "scale": 2, "format": "png", "truncation": 0.5}
    with urllib.request.urlopen(post_request(f"{base}/generate", body), timeout=10) as response:
        assert response.read() == shown
    with urllib.request.urlopen(base + first.replace("0.5", "1"), timeout=10) as response:
        assert response.read() != shown

    # The grid download asks for the same truncation, and its PNG says so.
    with (
        page.expect_request("**/generate") as request_info,
        page.expect_download() as download_info,
    ):
        page.get_by_role("button", name="Download grid (PNG)", exact=True).click()
    assert request_info.value.post_data_json == {
        "n": 5, "seed": 42, "scale": 2, "format": "png", "grid": True, "truncation": 0.5,
        "digit": 7,
    }  # fmt: skip
    download = download_info.value
    assert download.suggested_filename == "digits-7-seed-42-n5-x2-t0.5.png"
    with Image.open(io.BytesIO(Path(download.path()).read_bytes())) as grid:
        assert isinstance(grid, PngImagePlugin.PngImageFile)
        assert grid.text["truncation"] == "0.5"

    # Random digits: the page asks the server which digit each seed draws, at this truncation.
    page.get_by_label("Digit", exact=True).select_option("random")
    with page.expect_request("**/generate") as request_info:
        page.get_by_role("button", name="Generate", exact=True).click()
    assert request_info.value.post_data_json == {
        "n": 5, "seed": 42, "format": "base64", "truncation": 0.5,
    }  # fmt: skip
    served = post_json(f"{base}/generate", request_info.value.post_data_json)
    expected = [f"{image['digit']} · seed {image['seed']}" for image in served["images"]]
    expect(page.locator("#results figcaption")).to_contain_text(expected)
    wait_for_images(page, count=5, scale=2)
    src = page.locator("#results img").first.get_attribute("src") or ""
    assert src.startswith(
        f"/digits/{served['images'][0]['digit']}.png?seed=42&scale=2&truncation=0.5"
    )

    # Out of the control's range: the page names the field.
    truncation.fill("1.5")
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(page.locator("#generate-message")).to_contain_text(
        "Truncation (truncation): enter a number from 0.1 to 1"
    )
    expect(truncation).to_have_attribute("aria-invalid", "true")
    truncation.fill("1")
    page.get_by_label("Digit", exact=True).select_option("7")


def names_the_field_of_each_error(page: Page) -> None:
    # Errors name the field: the server's 422 for a scale over its limits...
    page.get_by_label("Scale", exact=True).fill("99")
    page.get_by_role("button", name="Generate", exact=True).click()
    message = page.locator("#generate-message")
    expect(message).to_contain_text("Scale (scale)")
    # Past the hard cap too, the server names the limit in force (one limits table).
    expect(message).to_contain_text(f"less than or equal to {MAX_SCALE} (server limit")
    expect(page.get_by_label("Scale", exact=True)).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Scale", exact=True).fill(str(MAX_SCALE + 1))
    page.get_by_label("Scale", exact=True).press("Enter")  # the keyboard submits the form too
    expect(message).to_contain_text(
        f"Scale (scale): Input should be less than or equal to {MAX_SCALE} "
        "(server limit GAN_MAX_SCALE)"
    )
    # ...and the server's GAN_MAX_N for a count over it.
    page.get_by_label("Scale", exact=True).fill("3")
    page.get_by_label("How many", exact=True).fill(str(MAX_N + 1))
    page.get_by_role("button", name="Generate", exact=True).click()
    expect(message).to_contain_text("How many (n)")
    expect(message).to_contain_text("GAN_MAX_N")


def explains_a_busy_server(page: Page) -> None:
    # What other servers answer, simulated: busy (503 with Retry-After).
    page.route(
        "**/generate",
        lambda route: route.fulfill(
            status=503, headers={"Retry-After": "7"}, json={"detail": "the queue is full"}
        ),
    )
    page.get_by_role("button", name="Download grid (PNG)", exact=True).click()
    message = page.locator("#generate-message")
    expect(message).to_contain_text("busy: the queue is full")
    expect(message).to_contain_text("Retry-After: 7")
    page.unroute("**/generate")
