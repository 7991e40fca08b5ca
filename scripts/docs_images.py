"""Redraw the README's pictures from the active model of ``model_store/``.

    python scripts/docs_images.py          # or: make docs-images

- ``docs/samples.png``: rows are the digits 0-9, columns the seeds 0-11, as the service draws them.
- The web page in Debian's headless Chromium, served by ``python -m app`` on a free port with an
  admin token, on a copy of ``model_store/`` (the retraining job shown is cancelled, and nothing
  the page does can touch the real store):

  ``docs/screenshot.png``                 the top of the page at 1280 x 900
  ``docs/screenshot-mobile.png``          the top of the page at 390 x 844
  ``docs/screenshot-restore.png``         a damaged digit restored (1280 wide)
  ``docs/screenshot-datasets.png``        a data set downloaded (1280 wide)
  ``docs/screenshot-admin.png``           a retraining job with its loss chart (1280 wide)
  ``docs/screenshot-activate.png``        the confirmation before serving mnist-cgan-v1
  ``docs/screenshot-activate-mobile.png`` the same at 390 x 844

The job trains small networks on the MNIST subset of the tests (``tests/fixtures/mnist``), so that
its chart fills in seconds on a CPU.
"""

from __future__ import annotations

import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import torch
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, ViewportSize, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from gan.imaging import encode_png, tile, upscale
from gan.networks import NUM_CLASSES
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MNIST_SUBSET = ROOT / "tests" / "fixtures" / "mnist"
SEEDS_PER_DIGIT = 12
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
TOKEN = secrets.token_urlsafe(16)  # the admin token of this run's own, temporary server
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# Small networks (a loss chart that fills in seconds on a busy CPU); long enough a run to be
# cancelled while it trains.
DOCS_JOB = {
    "job-steps": "2000",
    "job-batch-size": "16",
    "job-latent-dim": "8",
    "job-embed-dim": "4",
    "job-g-channels": "8",
    "job-d-channels": "8",
    "job-eval-per-digit": "10",
}
CHART_POINTS = 10
COMPARED = "mnist-cgan-v1"  # an older shipped version, shown beside the served one
SLOW_MS = 180_000  # an estimate or a job's first reports on a busy CPU


def draw_samples(store: ModelStore, out: Path) -> str:
    loaded = store.load_generator(store.active_version())
    digits = [d for d in range(NUM_CLASSES) for _ in range(SEEDS_PER_DIGIT)]
    seeds = list(range(SEEDS_PER_DIGIT)) * NUM_CLASSES
    z, labels = latents_for_seeds(seeds, loaded.model.config.latent_dim, list(digits))
    with torch.inference_mode():
        images = to_uint8(loaded.model(z, labels)).numpy()
    grid = upscale(tile(images, columns=SEEDS_PER_DIGIT), 2)
    provenance = {
        "model_version": loaded.version,
        "Description": "rows: digits 0-9; columns: seeds",
    }
    out.write_bytes(encode_png(grid, provenance, compress_level=9))
    return loaded.version


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(base: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the service at {base} was not ready within {timeout_s:.0f}s")


@contextmanager
def service(work: Path) -> Iterator[str]:
    """``python -m app`` with an admin token on a copy of model_store/; yields its base URL."""
    store = work / "model_store"
    shutil.copytree(ROOT / "model_store", store, ignore=shutil.ignore_patterns(".*"))
    port = free_port()
    env = {
        **os.environ,
        "GAN_PORT": str(port),
        "GAN_LOG_LEVEL": "WARNING",
        "GAN_MODEL_STORE": str(store),
        "GAN_STATE_DIR": str(work / "state"),
        "GAN_DATA_DIR": str(MNIST_SUBSET),
        "GAN_ADMIN_TOKEN": TOKEN,
    }
    server = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=60)


def save(shot: bytes, out: Path) -> None:
    """A palette PNG: a fraction of the size, the same picture (the page has few colours)."""
    with Image.open(io.BytesIO(shot)) as image:
        image.convert("RGB").quantize(colors=256).save(out, optimize=True)
    print(f"wrote {out}")


def shoot(target: Page | Locator, name: str) -> None:
    save(target.screenshot(animations="disabled"), DOCS / name)


def open_page(browser: Browser, base: str, version: str, viewport: ViewportSize) -> Page:
    """The page, loaded: the model, ten digits and the restore panel's digit."""
    page = browser.new_page(viewport=viewport)
    page.set_default_timeout(30_000)
    page.goto(base + "/")
    expect(page.locator("#model-version")).to_have_text(version)
    expect(page.locator("#results img")).to_have_count(10)
    page.wait_for_function("[...document.querySelectorAll('#results img')].every(i => i.complete)")
    expect(page.locator("#restore-message")).to_contain_text("Loaded the generated")
    return page


def drag(page: Page, selector: str, points: list[tuple[float, float]]) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None
    at = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for x, y in at[1:]:
        page.mouse.move(x, y, steps=6)
    page.mouse.up()


def restore_a_digit(page: Page) -> None:
    page.locator("#restore").scroll_into_view_if_needed()
    drag(page, "#restore-canvas", [(0.2, 0.42), (0.5, 0.46), (0.8, 0.5)])
    page.get_by_role("button", name="Restore", exact=True).click()
    expect(page.locator("#restore-message")).to_contain_text("Restored as", timeout=SLOW_MS)
    page.wait_for_function("document.getElementById('restore-output').complete")
    shoot(page.locator("#restore"), "screenshot-restore.png")


def download_a_dataset(page: Page) -> None:
    page.get_by_label("Images per digit", exact=True).fill("50")
    page.get_by_label("First seed", exact=True).fill("0")
    with page.expect_download():
        page.get_by_role("button", name="Download data set", exact=True).click()
    expect(page.locator("#dataset-message")).to_contain_text("Saved")
    shoot(page.locator("#datasets"), "screenshot-datasets.png")


def run_a_job(page: Page) -> None:
    """A job with its estimate, phases and loss chart, then cancelled: it publishes nothing."""
    page.get_by_label("Admin token", exact=True).fill(TOKEN)
    page.locator("#job-form details summary").click()
    for field, value in DOCS_JOB.items():
        page.locator(f"#{field}").fill(value)
    estimate = page.locator("#job-estimate")
    expect(estimate).to_contain_text("Estimated time: about", timeout=SLOW_MS)
    page.get_by_role("button", name="Start job", exact=True).click()
    try:
        page.wait_for_function(
            f"Number(document.getElementById('job-chart').dataset.points) >= {CHART_POINTS}",
            timeout=SLOW_MS,
        )
    except PlaywrightTimeoutError:
        card = page.locator("#job").inner_text()
        raise SystemExit(f"the job's chart did not fill in; its card:\n{card}") from None
    expect(page.locator("#job-samples-figure")).to_be_visible(timeout=SLOW_MS)
    page.locator("#job-form details summary").click()  # closed again: the card in view
    shoot(page.locator("#admin"), "screenshot-admin.png")
    page.get_by_role("button", name="Cancel job", exact=True).click()
    expect(page.locator("#job-state")).to_have_text("cancelled", timeout=60_000)
    # The form asks for its next estimate: let it finish before the server stops.
    page.wait_for_timeout(1000)
    expect(estimate).not_to_contain_text("measuring", timeout=SLOW_MS)


def compare_versions(page: Page, name: str) -> None:
    """The confirmation before serving an older version, closed again without serving it (the
    comparison needs no token)."""
    page.get_by_role("button", name=f"Activate version {COMPARED}", exact=True).click()
    expect(page.locator("#activate-dialog")).to_be_visible()
    page.wait_for_function(
        """['activate-candidate-samples', 'activate-active-samples']
            .every((id) => document.getElementById(id).complete)"""
    )
    shoot(page, name)
    page.locator("#activate-cancel").click()


def take_screenshots(version: str) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="docs-images-") as work,
        service(Path(work)) as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = open_page(browser, base, version, DESKTOP)
            shoot(page, "screenshot.png")
            restore_a_digit(page)
            download_a_dataset(page)
            run_a_job(page)
            compare_versions(page, "screenshot-activate.png")
            phone = open_page(browser, base, version, PHONE)
            shoot(phone, "screenshot-mobile.png")
            compare_versions(phone, "screenshot-activate-mobile.png")
        finally:
            browser.close()


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    version = draw_samples(ModelStore(ROOT / "model_store"), DOCS / "samples.png")
    print(f"wrote {DOCS / 'samples.png'} from {version}")
    take_screenshots(version)


if __name__ == "__main__":
    main()
