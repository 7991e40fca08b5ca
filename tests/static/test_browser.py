"""The web page in a real browser: Debian's headless Chromium, driven by Playwright, against a real
uvicorn server on a tiny model store.

CI installs the browser (``apt-get install -y chromium chromium-driver``); without it this test
fails rather than skips, so a broken page can never pass unnoticed. ``playwright install`` is never
needed: the test drives the system's Chromium.

(The README's picture of the page is drawn on the shipped model by ``scripts/docs_images.py``.)
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import uvicorn
from PIL import Image, PngImagePlugin
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from app.main import create_app
from gan.networks import Classifier
from gan.store import CLASSIFIER_WEIGHTS_FILE, WEIGHTS_FILE, Manifest, ModelStore
from support.app import app_settings, preserved_process_state
from support.models import TINY_GENERATOR, tiny_generator

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "browser-test-token"
MAX_N, MAX_SCALE = 16, 8
# A job long enough to be cancelled mid-way, on networks small enough to start at once.
TINY_JOB = {
    "latent_dim": "8",
    "embed_dim": "4",
    "g_channels": "8",
    "d_channels": "8",
    "eval_per_digit": "10",
}
TINY_B_METRICS = {
    "conditional_accuracy": 0.97312,
    "fid": 12.3456,
    "precision": 0.81234,
    "recall": 0.65432,
    "diversity": 0.98765,
}
# Errors the test provokes on purpose; the browser logs each failed request as a console error.
EXPECTED_CONSOLE_ERRORS = [
    re.compile(r"status of 422 .*@ .*/digits/\d\.png"),  # scale over the limit
    re.compile(r"status of 401 .*@ .*/jobs$"),  # the wrong admin token
    re.compile(r"status of 404 .*@ .*/jobs/[0-9a-f]{32}/samples\.png"),  # no sample grid yet
    re.compile(r"status of 503 .*@ .*/generate$"),  # a busy server (simulated)
    re.compile(r"status of 403 .*@ .*/jobs$"),  # admin disabled (simulated)
]


@pytest.fixture
def browser_store(tiny_store: ModelStore) -> ModelStore:
    """The tiny store, a classifier (jobs evaluate what they train) and a second version."""
    torch.manual_seed(0)
    tiny_store.publish(
        Manifest(
            kind="classifier", version="classifier", weights_file=CLASSIFIER_WEIGHTS_FILE,
            weights_sha256="",
        ),
        Classifier().state_dict(),
    )  # fmt: skip
    tiny_store.publish(
        Manifest(
            kind="generator", version="tiny-b", architecture=TINY_GENERATOR.to_dict(),
            weights_file=WEIGHTS_FILE, weights_sha256="", metrics=TINY_B_METRICS,
        ),
        tiny_generator(1).state_dict(),
    )  # fmt: skip
    return tiny_store


@pytest.fixture
def server(browser_store: ModelStore, tmp_path: Path, mnist_dir: Path) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free loopback port; yields its base URL."""
    settings = app_settings(
        browser_store.root,
        state_dir=tmp_path / "state",
        data_dir=mnist_dir,
        admin_token=TOKEN,
        max_n=MAX_N,
        max_scale=MAX_SCALE,
        job_cancel_grace_s=5.0,
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        create_app(settings), log_config=None, access_log=False, timeout_graceful_shutdown=5
    )
    server = uvicorn.Server(config)
    with preserved_process_state():
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            wait_ready(base)
            yield base
        finally:
            server.should_exit = True
            thread.join(30)
            sock.close()
    assert not thread.is_alive(), "the server did not shut down"


def wait_ready(base: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"{base}/readyz not 200 within {timeout_s}s")


def post_request(url: str, body: dict[str, Any]) -> urllib.request.Request:
    return urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )


def post_json(url: str, body: dict[str, Any]) -> Any:
    with urllib.request.urlopen(post_request(url, body), timeout=10) as response:
        return json.loads(response.read())


def wait_for_images(page: Page, count: int, scale: int) -> None:
    """All ``count`` result images loaded, each a real PNG of 28 * scale pixels."""
    page.wait_for_function(
        """([count, width]) => {
            const images = [...document.querySelectorAll('#results img')];
            return images.length === count
                && images.every((img) => img.complete && img.naturalWidth === width);
        }""",
        arg=[count, 28 * scale],
        timeout=15_000,
    )


def captions(page: Page) -> list[str]:
    return page.locator("#results figcaption").all_inner_texts()


def save_screenshot(page: Page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "page.png"
    page.screenshot(path=str(shot), full_page=True)


def test_page_generates_reports_errors_and_runs_a_job(server: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y chromium chromium-driver` "
            "(the browser test fails rather than skips without it)"
        )
    console: list[str] = []
    page_errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.append(f"{message.text} @ {message.location.get('url', '')}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 900})
            page.on("console", on_console)
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.set_default_timeout(15_000)
            run_scenario(page, server, console)
        finally:
            browser.close()
    unexpected = [
        line for line in console if not any(p.search(line) for p in EXPECTED_CONSOLE_ERRORS)
    ]
    assert unexpected == [] and page_errors == [], (unexpected, page_errors)


def run_scenario(page: Page, base: str, console: list[str]) -> None:
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
            .map((el) => el.id)"""
    )
    assert unlabelled == []
    assert page.evaluate("() => [...document.images].every((img) => img.alt.trim() !== '')")

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

    # A new seed regenerates.
    page.get_by_label("Digit", exact=True).select_option("random")
    page.get_by_label("How many", exact=True).fill("10")
    page.get_by_role("button", name="Regenerate with a new seed", exact=True).click()
    wait_for_images(page, count=10, scale=3)
    assert page.get_by_label("Seed", exact=True).input_value() != "42"

    # Admin: a wrong token is explained...
    page.get_by_label("Admin token", exact=True).fill("wrong")
    page.get_by_role("button", name="Start job", exact=True).click()
    admin_message = page.locator("#admin-message")
    expect(admin_message).to_contain_text("admin token was not accepted")
    page.get_by_label("Admin token", exact=True).fill(TOKEN)

    # Versions: activating the other one serves it, with its metrics, and the page draws with it.
    page.get_by_role("button", name="Refresh versions", exact=True).click()
    page.get_by_role("button", name="Activate version tiny-b", exact=True).click()
    expect(page.locator("#model-version")).to_have_text("tiny-b")
    expect(admin_message).to_contain_text("tiny-b is now served")
    expect(page.locator("#results img").first).to_have_attribute(
        "src", re.compile("version=tiny-b")
    )
    wait_for_images(page, count=10, scale=3)
    metrics = page.locator("#model-metrics")
    for shown in ("97.3 %", "12.35", "0.812", "0.654", "0.988"):
        expect(metrics).to_contain_text(shown)

    # A job's progress streams in...
    page.get_by_label("Steps", exact=True).fill("5000")
    page.get_by_label("Batch size", exact=True).fill("16")
    page.locator("details summary").click()
    for name, value in TINY_JOB.items():
        page.locator(f"#job-form [name={name}]").fill(value)
    page.get_by_role("button", name="Start job", exact=True).click()
    expect(admin_message).to_contain_text("started")
    try:
        page.wait_for_function(
            "() => document.getElementById('job-progress').value > 0", timeout=60_000
        )
    except PlaywrightTimeoutError:
        with urllib.request.urlopen(f"{base}/jobs", timeout=10) as response:
            job = json.loads(response.read())[0]
        raise AssertionError(f"no progress shown; the job: {job}") from None
    expect(page.locator("#job-state")).to_have_text("running")
    expect(page.locator("#job-stats")).to_contain_text("of 5,000")
    save_screenshot(page)
    # ...and cancelling it says so.
    page.get_by_role("button", name="Cancel job", exact=True).click()
    expect(page.locator("#job-state")).to_have_text("cancelled", timeout=20_000)
    expect(admin_message).to_contain_text("cancelled")

    # What other servers answer, simulated: busy (503 with Retry-After), admin disabled (403).
    page.route(
        "**/generate",
        lambda route: route.fulfill(
            status=503,
            headers={"Retry-After": "7"},
            json={"detail": "the queue is full"},
        ),
    )
    page.get_by_role("button", name="Download grid (PNG)", exact=True).click()
    expect(message).to_contain_text("busy: the queue is full")
    expect(message).to_contain_text("Retry-After: 7")
    page.unroute("**/generate")
    page.route(
        "**/jobs",
        lambda route: route.fulfill(status=403, json={"detail": "admin endpoints are disabled"}),
    )
    page.get_by_role("button", name="Start job", exact=True).click()
    expect(admin_message).to_contain_text("Administration is disabled on this server")
    page.unroute("**/jobs")

    # A phone-sized screen: nothing wider than the viewport.
    page.set_viewport_size({"width": 360, "height": 740})
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(ARTIFACTS / "page-narrow.png"), full_page=True)
