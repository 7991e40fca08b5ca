"""A training process killed at any point publishes nothing: the training CLI as a real process,
SIGKILLed (or SIGTERMed, as a cancelled job is) while it trains and while it evaluates."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gan.networks import Classifier
from gan.staging import STAGING_PREFIX
from gan.store import ModelStore
from support.models import evaluator_manifest

ROOT = Path(__file__).resolve().parents[2]


def store_with_a_classifier(root: Path) -> ModelStore:
    store = ModelStore(root)
    store.publish(evaluator_manifest(), Classifier().state_dict())
    return store


@contextmanager
def start_training(
    store: ModelStore, tmp_path: Path, mnist_dir: Path, steps: int
) -> Iterator[subprocess.Popen[str]]:
    command = [
        sys.executable, "-m", "training", "train", "--store", str(store.root),
        "--data-dir", str(mnist_dir), "--run-dir", str(tmp_path / "run"), "--version", "v",
        "--steps", str(steps), "--batch-size", "8", "--latent-dim", "8", "--embed-dim", "4",
        "--g-channels", "8", "--d-channels", "8", "--device", "cpu", "--progress", "jsonl",
        "--log-every", "1", "--evaluate", "--eval-per-digit", "2000",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as process:
        try:
            yield process
        finally:
            process.kill()  # a no-op once it has ended; never leave a 100,000-step run behind


def run_until(process: subprocess.Popen[str], wanted: dict[str, object]) -> list[dict[str, object]]:
    """Read the process's JSON lines up to and including ``wanted``."""
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        event = json.loads(line) if line.startswith("{") else {}
        seen.append(event)
        if all(event.get(key) == value for key, value in wanted.items()):
            return seen
    process.wait(timeout=60)
    pytest.fail(f"the process ended ({process.returncode}) before {wanted}: {seen}")


def hidden(store: ModelStore) -> list[str]:
    return sorted(p.name for p in store.root.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_killed_while_evaluating_leaves_no_version(tmp_path: Path, mnist_dir: Path) -> None:
    store = store_with_a_classifier(tmp_path / "store")
    with start_training(store, tmp_path, mnist_dir, steps=2) as process:
        seen = run_until(process, {"event": "phase", "phase": "evaluating"})
        process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
    assert {"event": "phase", "phase": "publishing"} not in seen

    # The trained generator was staged and then lost with its process: nothing is listed.
    assert store.versions() == [] and store.entries() == [] and store.broken() == {}
    staging = [name for name in hidden(store) if not name.endswith(".lock")]
    assert len(staging) == 1 and staging[0].startswith(STAGING_PREFIX)
    # The kernel released the dead process's lock: the next cleanup (or publish) removes it.
    assert staging[0] in store.cleanup()
    assert hidden(store) == []


@pytest.mark.slow
def test_killed_while_training_leaves_nothing(tmp_path: Path, mnist_dir: Path) -> None:
    store = store_with_a_classifier(tmp_path / "store")
    with start_training(store, tmp_path, mnist_dir, steps=100_000) as process:
        seen = run_until(process, {"event": "progress", "step": 2})
        process.kill()
        assert process.wait(timeout=60) == -signal.SIGKILL
    assert seen[0] == {"event": "phase", "phase": "training"}
    assert store.entries() == [] and hidden(store) == []


@pytest.mark.slow
def test_terminated_while_evaluating_removes_its_staging(tmp_path: Path, mnist_dir: Path) -> None:
    """SIGTERM, what cancelling a job sends, unwinds the process: it removes its own staging."""
    store = store_with_a_classifier(tmp_path / "store")
    with start_training(store, tmp_path, mnist_dir, steps=2) as process:
        run_until(process, {"event": "phase", "phase": "evaluating"})
        process.terminate()
        assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert store.entries() == [] and hidden(store) == []
