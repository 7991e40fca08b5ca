"""Faults, in process: a model swap during a data set stream, a tampered active version at
start-up, a dead worker thread, a missing admin token file, SIGTERM draining."""

from __future__ import annotations

import io
import threading
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from app.config import ConfigError
from app.main import create_app
from gan.store import WEIGHTS_FILE, LoadedGenerator, ModelStore
from gan.testing import publish_random_generator
from support.app import app_settings, gated_loader, serve, wait_until
from support.models import TINY_GENERATOR

TOKEN = "fault-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def test_a_data_set_streams_on_the_version_it_started_with(tiny_store: ModelStore) -> None:
    publish_random_generator(tiny_store, "next", TINY_GENERATOR, seed=1, activate=False)
    loader, model = gated_loader(open_gate=False)
    body = {"per_digit": 20, "seed": 3}  # 200 images: 7 chunks of 32
    with serve(tiny_store, loader, admin_token=TOKEN, ready=False) as client:
        results: dict[str, Any] = {}
        streaming = threading.Thread(
            target=lambda: results.update(response=client.post("/datasets", json=body))
        )
        streaming.start()
        wait_until(lambda: model().entered.is_set())  # the first chunk is in its forward pass
        activated = client.post("/models/next/activate", headers=ADMIN, json={"force": True})
        assert activated.status_code == 200, activated.text
        model().gate.set()
        streaming.join(30)
        during = results["response"]
        assert during.status_code == 200, during.text
        assert during.headers["x-model-version"] == "tiny"
        back = client.post("/models/tiny/activate", headers=ADMIN, json={"force": True})
        assert back.status_code == 200
        again = client.post("/datasets", json=body)
    assert np.load(io.BytesIO(during.content))["version"] == "tiny"
    assert during.content == again.content  # every chunk from the version it started with


def tamper(store: ModelStore, version: str) -> None:
    weights = store.version_dir(version) / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")


def test_a_tampered_active_version_falls_back_to_its_parent(tiny_store: ModelStore) -> None:
    publish_random_generator(tiny_store, "other", TINY_GENERATOR, seed=2, activate=False)
    publish_random_generator(tiny_store, "next", TINY_GENERATOR, seed=1, parent="tiny")
    tamper(tiny_store, "next")
    with serve(tiny_store) as client:
        info = client.get("/info").json()
        ready = client.get("/readyz")
        metrics = client.get("/metrics").text
    assert info["model_version"] == "tiny"  # the parent, though "other" is newer
    assert "next" in info["degraded"] and "sha256" in info["degraded"]
    assert ready.status_code == 200 and "next" in ready.json()["detail"]
    assert "gan_model_fallback 1.0" in metrics


def test_without_a_verifying_version_start_up_fails_clearly(tiny_store: ModelStore) -> None:
    tamper(tiny_store, "tiny")
    app = create_app(app_settings(tiny_store.root))
    with pytest.raises(Exception, match=r"no model version .* verifies"), TestClient(app):
        pass


class DyingModel(torch.nn.Module):
    """A generator whose forward pass kills the thread that runs it."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise SystemExit("the inference thread dies")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_inference_thread_fails_liveness(tiny_store: ModelStore) -> None:
    def loader(store: ModelStore, device: torch.device) -> LoadedGenerator:
        loaded = store.load_generator(store.active_version(), device)
        return LoadedGenerator(loaded.version, loaded.manifest, DyingModel(loaded.model))  # type: ignore[arg-type]

    with serve(tiny_store, loader, ready=False, warmup_batches=1) as client:
        wait_until(lambda: client.get("/healthz").status_code == 503)
        health = client.get("/healthz").json()
    assert health == {"status": "dead", "detail": "the inference thread died"}


def test_a_missing_admin_token_file_fails_before_start_up(tiny_store: ModelStore) -> None:
    settings = app_settings(tiny_store.root, admin_token_file=tiny_store.root / "no-such-file")
    with pytest.raises(ConfigError, match=r"GAN_ADMIN_TOKEN_FILE=.*no-such-file"):
        create_app(settings)


def test_readiness_turns_503_while_draining(tiny_store: ModelStore) -> None:
    with serve(tiny_store) as client:
        client.app.state.draining.set()  # type: ignore[attr-defined]
        ready = client.get("/readyz")
        served = client.get("/digits/1.png", params={"seed": 1})
    assert ready.status_code == 503 and ready.json()["status"] == "draining"
    assert ready.headers["retry-after"] == "1"
    assert served.status_code == 200  # still serving while the load balancer drains
