"""Redraw the README's two pictures from the active model of ``model_store/``.

    python scripts/docs_images.py          # or: make docs-images

- ``docs/samples.png``: rows are the digits 0-9, columns the seeds 0-11, as the service draws them.
- ``docs/screenshot.png``: the web page in Debian's headless Chromium, served by ``python -m app``
  on a free port with its default settings.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from gan.imaging import encode_png, tile, upscale
from gan.networks import NUM_CLASSES
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SEEDS_PER_DIGIT = 12
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


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


def take_screenshot(version: str, out: Path, state_dir: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "GAN_PORT": str(port),
        "GAN_LOG_LEVEL": "WARNING",
        "GAN_STATE_DIR": str(state_dir),
    }
    server = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env)
    try:
        wait_ready(base)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(base + "/")
            expect(page.locator("#model-version")).to_have_text(version)
            expect(page.locator("#results img")).to_have_count(10)
            page.wait_for_function(
                "[...document.querySelectorAll('#results img')].every(i => i.complete)"
            )
            shot = page.screenshot(full_page=False)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    # A palette PNG: a fraction of the size, the same picture (the page has few colours).
    with Image.open(io.BytesIO(shot)) as image:
        image.convert("RGB").quantize(colors=128).save(out, optimize=True)


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    version = draw_samples(ModelStore(ROOT / "model_store"), DOCS / "samples.png")
    print(f"wrote {DOCS / 'samples.png'} from {version}")
    state_dir = ROOT / "runs" / "docs-images-state"
    take_screenshot(version, DOCS / "screenshot.png", state_dir)
    print(f"wrote {DOCS / 'screenshot.png'} from {version}")


if __name__ == "__main__":
    main()
