"""Shared pieces of the browser tests (tests/static): a real uvicorn server in a thread on a tiny
model store, Debian's headless Chromium driven by Playwright, and checks of what the page shows.

CI installs the browser (``apt-get install -y chromium chromium-driver``); without it the browser
tests fail rather than skip, so a broken page can never pass unnoticed. ``playwright install`` is
never needed: the tests drive the system's Chromium.
"""

from __future__ import annotations

import io
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import uvicorn
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from app.main import create_app
from gan.networks import Classifier
from gan.store import SAMPLES_FILE, WEIGHTS_FILE, Manifest, ModelStore
from support.app import app_settings, preserved_process_state
from support.models import TINY_GENERATOR, TINY_VERSION, evaluator_manifest, tiny_generator

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
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# tiny-b was evaluated digit by digit too (metrics.per_digit); tiny-c, like older versions, not.
TINY_B_PER_DIGIT = [
    {"digit": digit, "accuracy": 0.95 + digit * 0.002, "fid": 11.0 + digit * 0.5}
    for digit in range(10)
]
TINY_B_METRICS: dict[str, Any] = {
    "conditional_accuracy": 0.97312,
    "fid": 12.3456,
    "precision": 0.81234,
    "recall": 0.65432,
    "diversity": 0.98765,
    "per_digit": TINY_B_PER_DIGIT,
    # The independent judge's scores (its FID on its own, smaller scale).
    "judge": {"conditional_accuracy": 0.96, "fid": 0.25, "recall": 0.64, "diversity": 0.98765},
}
# Worse than tiny-b on every gated metric: activating it over tiny-b fails the quality gates.
TINY_C_METRICS = {
    "conditional_accuracy": 0.9012,
    "fid": 30.5,
    "precision": 0.7,
    "recall": 0.6,
    "diversity": 0.9,
    "judge": {"conditional_accuracy": 0.9, "fid": 0.5, "recall": 0.6, "diversity": 0.9},
}
VERSION_METRICS = {"tiny-b": TINY_B_METRICS, "tiny-c": TINY_C_METRICS}
BROKEN_VERSION = "tiny-broken"
# Errors the tests provoke on purpose: the browser logs each failed request as a console error.
EXPECTED_CONSOLE_ERRORS = [
    re.compile(r"status of 422 .*@ .*/digits/\d\.png"),  # scale over the limit
    re.compile(r"status of 401 .*@ .*/jobs(/estimate)?$"),  # the wrong admin token
    re.compile(r"status of 404 .*@ .*/jobs/[0-9a-f]{32}/samples\.png"),  # no sample grid yet
    re.compile(r"status of 503 .*@ .*/(generate|jobs)$"),  # a busy server (simulated)
    re.compile(r"status of 403 .*@ .*/jobs$"),  # admin disabled (simulated)
    re.compile(r"status of 404 .*@ .*/datasets$"),  # a data set pinned to a version not served
]


# ----- the model store and the server ---------------------------------------------------------
def sample_grid(seed: int) -> bytes:
    """A stand-in sample grid (ten rows of ten 28 px cells), different for each seed."""
    generator = torch.Generator().manual_seed(seed)
    pixels = (torch.rand(280, 280, generator=generator) * 255).to(torch.uint8).numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def add_grid(store: ModelStore, version: str, seed: int) -> None:
    (store.version_dir(version) / SAMPLES_FILE).write_bytes(sample_grid(seed))


def build_browser_store(store: ModelStore) -> ModelStore:
    """The tiny store, a classifier (jobs evaluate what they train), versions tiny-b (better
    than unevaluated tiny) and tiny-c (worse than tiny-b), a sample grid for each, and a broken
    entry (tiny-broken, an unreadable manifest)."""
    torch.manual_seed(0)
    store.publish(evaluator_manifest(), Classifier().state_dict())
    for seed, (version, metrics) in enumerate(VERSION_METRICS.items(), start=1):
        store.publish(
            Manifest(
                kind="generator", version=version, architecture=TINY_GENERATOR.to_dict(),
                weights_file=WEIGHTS_FILE, weights_sha256="", metrics=metrics,
                parent=TINY_VERSION,
            ),
            tiny_generator(seed).state_dict(),
        )  # fmt: skip
        add_grid(store, version, seed)
    add_grid(store, TINY_VERSION, 0)
    broken = store.root / BROKEN_VERSION  # an entry the store lists with its problem
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    return store


@contextmanager
def running_server(store: ModelStore, state_dir: Path, **overrides: Any) -> Iterator[str]:
    """A real uvicorn server in a thread, on a free loopback port; yields its base URL."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "admin_token": TOKEN,
        "max_n": MAX_N,
        "max_scale": MAX_SCALE,
        "job_cancel_grace_s": 5.0,
        "restore_steps": 20,
        "restore_restarts": 2,
    }
    settings = app_settings(store.root, **{**values, **overrides})
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


def get_json(url: str, token: str | None = None) -> tuple[int, Any]:
    """(status, parsed body) of a GET, errors included."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


# ----- fixtures (tests/static/conftest.py brings them in) -------------------------------------
@pytest.fixture
def browser_store(tiny_store: ModelStore) -> ModelStore:
    return build_browser_store(tiny_store)


@pytest.fixture
def server(browser_store: ModelStore, tmp_path: Path, mnist_dir: Path) -> Iterator[str]:
    """The browser store served with an admin token, jobs training on the MNIST fixture."""
    with running_server(browser_store, tmp_path / "state", data_dir=mnist_dir) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


# ----- the browser ----------------------------------------------------------------------------
@dataclass
class Console:
    """What the page logged as errors, and its uncaught exceptions."""

    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{message.text} @ {message.location.get('url', '')}")

    def unexpected(self) -> tuple[list[str], list[str]]:
        errors = [
            line
            for line in self.errors
            if not any(pattern.search(line) for pattern in EXPECTED_CONSOLE_ERRORS)
        ]
        return errors, self.page_errors


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's Chromium with "
            "`apt-get update && apt-get install -y chromium chromium-driver` "
            "(the browser tests fail rather than skip without it)"
        )


@contextmanager
def chromium() -> Iterator[Browser]:
    require_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser, viewport: ViewportSize = DESKTOP) -> Iterator[tuple[Page, Console]]:
    """A fresh page (own context: downloads allowed) whose console errors are checked at the
    end: only those in EXPECTED_CONSOLE_ERRORS may appear."""
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = context.new_page()
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", lambda error: console.page_errors.append(str(error)))
    page.set_default_timeout(15_000)
    try:
        yield page, console
    finally:
        context.close()
    unexpected, page_errors = console.unexpected()
    assert unexpected == [] and page_errors == [], (unexpected, page_errors)


# ----- what the page shows --------------------------------------------------------------------
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


def save_screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# Everything that sticks out of the viewport, every container that scrolls sideways although it
# is not a table's scroller (.table-wrap), and every visible select too narrow for its longest
# option: one line each, none when the layout fits.
OVERFLOW_JS = """() => {
    const width = document.documentElement.clientWidth;
    const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
        + (el.className && typeof el.className === 'string' ? '.' + el.className.trim()
            .split(/\\s+/).join('.') : '');
    const inTable = (el) => Boolean(el.parentElement && el.parentElement.closest('.table-wrap'));
    const shown = (el) => el.getClientRects().length > 0
        && !el.closest('.visually-hidden, .skip, [hidden]');
    const controls = new Set(['INPUT', 'SELECT', 'TEXTAREA', 'BUTTON', 'CANVAS', 'IMG']);
    const problems = [];
    if (document.documentElement.scrollWidth > width) {
        problems.push(`page ${document.documentElement.scrollWidth} px wide in ${width}`);
    }
    for (const el of document.querySelectorAll('body *')) {
        if (!shown(el) || inTable(el)) continue;
        const style = getComputedStyle(el);
        const scroller = style.overflowX !== 'visible' && !el.classList.contains('table-wrap')
            && style.textOverflow !== 'ellipsis' && !controls.has(el.tagName);
        if (scroller && el.scrollWidth > el.clientWidth + 1) {
            problems.push(`${name(el)} scrolls sideways (${el.scrollWidth} in ${el.clientWidth})`);
        }
        const rect = el.getBoundingClientRect();
        if (rect.right > width + 0.5 || rect.left < -0.5) {
            problems.push(`${name(el)} spans ${Math.round(rect.left)}..${Math.round(rect.right)}`);
        }
    }
    const ctx = document.createElement('canvas').getContext('2d');
    for (const select of document.querySelectorAll('select')) {
        if (!shown(select)) continue;
        const style = getComputedStyle(select);
        ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
        const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
        for (const option of select.options) {
            const needed = ctx.measureText(option.text).width + padding + 20;  // 20: the arrow
            if (needed > select.clientWidth) {
                problems.push(`${name(select)} cuts "${option.text}" (${Math.round(needed)} px `
                    + `in ${select.clientWidth})`);
            }
        }
    }
    return problems;
}"""


def overflow_problems(page: Page) -> list[str]:
    problems: list[str] = page.evaluate(OVERFLOW_JS)
    return problems


def assert_fits(page: Page, viewport: ViewportSize, shot: str | None = None) -> None:
    """At this viewport nothing overflows horizontally and no select cuts its options."""
    page.set_viewport_size(viewport)
    page.wait_for_timeout(100)  # one layout
    if shot:
        save_screenshot(page, shot)
    problems = overflow_problems(page)
    assert problems == [], (viewport, problems)


def canvas_ink(page: Page, selector: str) -> int:
    """How many pixels of the canvas are drawn (not transparent)."""
    count: int = page.evaluate(
        """(selector) => {
            const canvas = document.querySelector(selector);
            const data = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let drawn = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn += 1;
            return drawn;
        }""",
        selector,
    )
    return count


def coloured_pixels(page: Page, selector: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the canvas are close to ``rgb`` (a line of that colour)."""
    count: int = page.evaluate(
        """([selector, rgb]) => {
            const canvas = document.querySelector(selector);
            const data = canvas.getContext('2d')
                .getImageData(0, 0, canvas.width, canvas.height).data;
            let near = 0;
            for (let i = 0; i < data.length; i += 4) {
                const d = Math.abs(data[i] - rgb[0]) + Math.abs(data[i + 1] - rgb[1])
                    + Math.abs(data[i + 2] - rgb[2]);
                if (data[i + 3] > 200 && d < 60) near += 1;
            }
            return near;
        }""",
        [selector, list(rgb)],
    )
    return count


def drag(page: Page, selector: str, points: list[tuple[float, float]]) -> None:
    """A pointer stroke through ``points``, given as fractions of the element's box."""
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not shown"
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()
