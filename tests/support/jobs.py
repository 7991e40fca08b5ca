"""Helpers of the retraining tests: a tiny job, settings for a server that runs jobs, waits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from fastapi.testclient import TestClient

from app.config import Settings
from gan.networks import Classifier
from gan.store import WEIGHTS_FILE, Manifest, ModelStore
from support.app import app_settings
from support.models import TINY_GENERATOR, evaluator_manifest, tiny_generator

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TINY_JOB = {
    "steps": 4,
    "batch_size": 16,
    "latent_dim": 8,
    "embed_dim": 4,
    "g_channels": 8,
    "d_channels": 8,
    "eval_per_digit": 10,
}


def add_classifier(tiny_store: ModelStore) -> ModelStore:
    """``tiny_store`` plus a (random) classifier, so that jobs can evaluate what they train."""
    torch.manual_seed(0)
    tiny_store.publish(evaluator_manifest(), Classifier().state_dict())
    return tiny_store


def publish_tiny(store: ModelStore, version: str, seed: int) -> None:
    manifest = Manifest(
        kind="generator", version=version, architecture=TINY_GENERATOR.to_dict(),
        weights_file=WEIGHTS_FILE, weights_sha256="",
    )  # fmt: skip
    store.publish(manifest, tiny_generator(seed).state_dict())


def make_settings(store: ModelStore, tmp_path: Path, mnist_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "data_dir": mnist_dir,
        "admin_token": TOKEN,
        "warmup_batches": 1,
        "max_batch_images": 16,
    }
    return app_settings(store.root, **{**values, **overrides})


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def wait_for_state(
    client: TestClient, job_id: str, states: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    job: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal job
        job = client.get(f"/jobs/{job_id}").json()
        return job["state"] in states

    wait_for(reached, timeout)
    return job


def sse_events(client: TestClient, job_id: str) -> list[tuple[int, dict[str, Any]]]:
    events: list[tuple[int, dict[str, Any]]] = []
    current_id = 0
    with client.stream("GET", f"/jobs/{job_id}/events") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("id: "):
                current_id = int(line[4:])
            elif line.startswith("data: "):
                events.append((current_id, json.loads(line[6:])))
    return events
