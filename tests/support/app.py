"""Helpers shared by the serving-API tests: quick settings, a served app, a readiness wait, a
gated model, and the small request/response helpers of the image routes."""

from __future__ import annotations

import base64
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import torch
from fastapi.testclient import TestClient
from PIL import Image
from torch import nn

from app.config import Settings
from gan.store import LoadedGenerator, ModelStore
from support.models import TINY_VERSION

GATE_TIMEOUT_S = 30.0  # a gated forward never blocks longer than this, even if a test forgets


def app_settings(store_root: Path, **overrides: Any) -> Settings:
    """Settings for a fast in-process app: CPU, one torch thread, no warm-up, quiet logs, state
    beside the store, no admin token (admin endpoints disabled).

    ``_env_file=None`` keeps a developer's ``.env`` out of the tests.
    """
    values: dict[str, Any] = {
        "model_store": store_root,
        "device": "cpu",
        "torch_threads": 1,
        "warmup_batches": 0,
        "max_batch_images": 32,
        "max_wait_ms": 1.0,
        "log_level": "WARNING",
        "graceful_shutdown_s": 5.0,
        "state_dir": store_root.parent / "state",  # the jobs database lives here
        "reload_interval_s": 0,  # no ACTIVE-pointer follower task
        "admission_wait_s": 0,  # a full queue answers 503 at once (tests of the wait set it)
        "inline_max_images": 0,  # every request through the batcher (the fast path's tests set it)
        "inference_process": False,  # in-process: a child per app costs ~2.5 s (its own tests)
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


def wait_ready(client: TestClient, timeout_s: float = 10.0) -> None:
    """Poll /readyz until 200 (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.01)
    raise AssertionError(f"/readyz not 200 within {timeout_s}s")


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"condition not met within {timeout_s}s")


@contextmanager
def preserved_process_state() -> Iterator[None]:
    """The app's lifespan reconfigures the root logger and torch's thread count, both
    process-wide; put them back so other test modules see what they expect."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        torch.set_num_threads(threads)


class GatedModel(nn.Module):
    """Wraps a generator: counts forward passes and their batch sizes, and (while the gate is
    closed) blocks each forward pass until ``gate`` is set. ``entered`` is set when a forward
    pass starts, so a test knows the worker is busy."""

    def __init__(self, inner: nn.Module, *, open_gate: bool = True) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config  # the worker reads model.config.latent_dim
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.entered = threading.Event()
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        return len(self.batch_sizes)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with self._lock:
            self.batch_sizes.append(int(z.shape[0]))
        self.entered.set()
        if not self.gate.wait(GATE_TIMEOUT_S):
            raise RuntimeError("test gate never opened")
        out: torch.Tensor = self.inner(z, labels)
        return out


def gated_loader(
    *, open_gate: bool = False
) -> tuple[Callable[[ModelStore, torch.device], LoadedGenerator], Callable[[], GatedModel]]:
    """A ``model_loader`` for ``create_app`` that wraps the active generator in a GatedModel.

    Returns the loader and a getter for the wrapper (available once the app has started)."""
    made: list[GatedModel] = []

    def loader(store: ModelStore, device: torch.device) -> LoadedGenerator:
        loaded = store.load_generator(store.active_version(), device)
        wrapper = GatedModel(loaded.model, open_gate=open_gate)
        made.append(wrapper)
        return LoadedGenerator(loaded.version, loaded.manifest, wrapper)  # type: ignore[arg-type]

    def get() -> GatedModel:
        assert made, "the app has not loaded its model yet"
        return made[-1]

    return loader, get


@contextmanager
def serve(
    store: ModelStore,
    model_loader: Callable[[ModelStore, torch.device], LoadedGenerator] | None = None,
    *,
    ready: bool = True,
    **overrides: Any,
) -> Iterator[TestClient]:
    """A running app (lifespan and all) on ``store``; waits for /readyz unless ``ready=False``."""
    from app.main import create_app  # the app only when a test serves it

    settings = app_settings(store.root, **overrides)
    app = create_app(settings) if model_loader is None else create_app(settings, model_loader)
    with TestClient(app) as client:
        if ready:
            wait_ready(client)
        yield client


# ----- requests and images of the image routes ------------------------------------------------


def image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(image(png))


def diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def generate(client: TestClient, **body: Any) -> httpx2.Response:
    response = client.post("/generate", json=body)
    assert response.status_code == 200, response.text
    return response


def single_png(client: TestClient, **body: Any) -> bytes:
    return generate(client, format="png", **body).content


def base64_images(client: TestClient, **body: Any) -> list[dict[str, Any]]:
    payload = generate(client, format="base64", **body).json()
    assert payload["model_version"] == TINY_VERSION
    images: list[dict[str, Any]] = payload["images"]
    return images


def decode(item: dict[str, Any]) -> bytes:
    return base64.b64decode(item["png_base64"], validate=True)


def assert_422(response: httpx2.Response, loc: list[Any], *fragments: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    for fragment in fragments:
        assert fragment in error["msg"], (fragment, error["msg"])
