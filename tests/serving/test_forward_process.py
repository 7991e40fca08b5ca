"""The forward pass in a child process (``GAN_INFERENCE_PROCESS``): the same pixels as in-process,
models sent once and dropped by the parent's rule, and a child that dies or fails costs one
batch, not the server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
import torch

from app.config import Settings
from app.metrics import ServiceMetrics
from app.serving.errors import ForwardProcessError
from app.serving.forward_process import KEPT_MODELS, ForwardProcess
from app.serving.worker import InferenceWorker
from gan.networks import Generator, GeneratorConfig
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import LoadedGenerator, ModelStore
from gan.testing import random_generator
from support.app import serve

pytestmark = pytest.mark.slow  # each child process imports torch: ~2.5 s to start

CONFIG = GeneratorConfig(latent_dim=8, embed_dim=4, channels=8)


@pytest.fixture(scope="module")
def child() -> Iterator[ForwardProcess]:
    process = ForwardProcess(torch.device("cpu"), 1, torch.float32)
    process.start()
    yield process
    process.close()


def drawn_here(
    model: Generator, seeds: list[int], digits: Sequence[int | None], truncation: float = 1.0
) -> tuple[np.ndarray, list[int]]:
    z, labels = latents_for_seeds(seeds, model.config.latent_dim, digits, truncation)
    with torch.inference_mode():
        return to_uint8(model(z, labels)).numpy(), labels.tolist()


def test_the_child_draws_the_same_pixels_and_digits(child: ForwardProcess) -> None:
    first, second = random_generator(CONFIG, seed=1), random_generator(CONFIG, seed=2)
    seeds, digits = list(range(40, 50)), [None, 3] * 5
    for model, truncation in ((first, 1.0), (second, 0.7), (first, 0.7)):
        images, labels = child.draw(model, seeds, digits, truncation)
        expected_images, expected_labels = drawn_here(model, seeds, digits, truncation)
        assert images.shape == (10, 28, 28) and images.dtype == np.uint8
        assert np.array_equal(images, expected_images) and labels == expected_labels


def test_models_past_the_kept_ones_are_dropped_and_sent_again(child: ForwardProcess) -> None:
    models = [random_generator(CONFIG, seed=10 + i) for i in range(KEPT_MODELS + 2)]
    for model in [*models, models[0]]:  # the first was dropped by then: sent once more
        images, _ = child.draw(model, [7], [4], 1.0)
        assert np.array_equal(images, drawn_here(model, [7], [4])[0])


def test_a_failed_draw_fails_its_batch_and_the_child_goes_on(child: ForwardProcess) -> None:
    model = random_generator(CONFIG, seed=3)
    pid = child.pid
    with pytest.raises(ForwardProcessError, match="failed"):
        child.draw(model, [1], [12], 1.0)  # no digit 12: the embedding refuses it
    images, _ = child.draw(model, [1], [2], 1.0)
    assert child.pid == pid and np.array_equal(images, drawn_here(model, [1], [2])[0])


def test_a_killed_child_fails_one_batch_and_a_new_one_serves_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    process = ForwardProcess(torch.device("cpu"), 1, torch.float32)
    model = random_generator(CONFIG, seed=4)
    try:
        process.draw(model, [1], [1], 1.0)
        first_pid = process.pid
        assert first_pid is not None and process._process is not None
        child = process._process
        alive = child.is_alive
        checks: list[bool] = []

        # The child dies after the batch's liveness check (as one killed mid-batch does): its
        # first check still sees it alive, whatever the time SIGKILL takes on a busy machine.
        def alive_at_first_check() -> bool:
            if not checks:
                checks.append(True)
                return True
            return alive()

        monkeypatch.setattr(child, "is_alive", alive_at_first_check)
        os.kill(first_pid, signal.SIGKILL)
        time.sleep(0.2)  # dead and reapable by now: the check above is what keeps it "alive"
        with pytest.raises(ForwardProcessError, match="died"):
            process.draw(model, [1], [1], 1.0)
        images, _ = process.draw(model, [5], [5], 1.0)  # a new child, sent the model afresh
        assert process.pid not in (None, first_pid)
        assert np.array_equal(images, drawn_here(model, [5], [5])[0])
    finally:
        process.close()
    assert process.pid is None


def test_the_worker_draws_batches_there_and_a_swap_reaches_the_child() -> None:
    old, new = random_generator(CONFIG, seed=5), random_generator(CONFIG, seed=6)
    process = ForwardProcess(torch.device("cpu"), 1, torch.float32)
    loaded = {
        name: LoadedGenerator(name, None, model)  # type: ignore[arg-type]
        for name, model in (("old", old), ("new", new))
    }
    worker = InferenceWorker(
        loaded["old"],
        torch.device("cpu"),
        ServiceMetrics(),
        max_batch_images=16,
        max_wait_ms=0,
        max_queue_images=100,
        warmup_batches=1,
        forward_process=process,
    )
    worker.start()
    try:
        assert worker.ready.wait(60)
        assert process.pid is not None  # started by the warm-up
        before = asyncio.run(worker.generate([1, 2, 3], [0, 1, None], 10))
        worker.warm_up(loaded["new"])
        worker.swap(loaded["new"])
        after = asyncio.run(worker.generate([1, 2, 3], [0, 1, None], 10))
    finally:
        worker.stop(5)
    assert (before.version, after.version) == ("old", "new")
    assert np.array_equal(before.images, drawn_here(old, [1, 2, 3], [0, 1, None])[0])
    assert np.array_equal(after.images, drawn_here(new, [1, 2, 3], [0, 1, None])[0])
    assert process.pid is None  # stop() ended the child


def test_a_server_with_the_process_answers_as_one_without(tiny_store: ModelStore) -> None:
    body = {"n": 12, "seed": 9, "format": "base64", "truncation": 0.9}
    with serve(tiny_store) as plain:
        expected = plain.post("/generate", json=body)
    with serve(tiny_store, inference_process=True, warmup_batches=1) as split:
        answer = split.post("/generate", json=body)
    assert expected.status_code == answer.status_code == 200
    assert answer.json() == expected.json()  # the tiny model: the child built it from its config


@pytest.mark.parametrize(
    ("setting", "workers", "expected"),
    [(None, 1, True), (None, 2, False), (True, 2, True), (False, 1, False)],
)
def test_the_child_is_for_a_lone_server_unless_told(
    setting: bool | None, workers: int, expected: bool
) -> None:
    assert Settings(_env_file=None, inference_process=setting).draws_in_child(workers) is expected


def test_the_child_draws_in_float32_on_the_cpu_as_the_worker_does() -> None:
    # GAN_DTYPE=bfloat16 only takes effect on CUDA (app.config): the child keeps that rule
    process = ForwardProcess(torch.device("cpu"), 1, torch.bfloat16)
    assert process.dtype == torch.float32 and process.pid is None  # nothing started


def test_close_kills_a_child_whose_batch_does_not_end() -> None:
    process = ForwardProcess(torch.device("cpu"), 1, torch.float32)
    process.start()
    child = process._process
    assert child is not None and child.is_alive()
    with process._lock:  # as a draw stuck on a hung device holds it
        process.close(timeout_s=0.2)
    child.join(5)
    assert not child.is_alive()


def test_the_child_outlives_a_signal_meant_for_its_group(child: ForwardProcess) -> None:
    # Ctrl-C or a SIGTERM to the process group reaches the child too: it keeps drawing while
    # the server drains, and stops when the parent says so
    model = random_generator(CONFIG, seed=7)
    child.draw(model, [1], [1], 1.0)
    pid = child.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    images, _ = child.draw(model, [3], [3], 1.0)
    assert child.pid == pid and np.array_equal(images, drawn_here(model, [3], [3])[0])


def test_a_batch_the_process_lost_is_a_503_to_retry(
    tiny_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve(tiny_store, inference_process=True, warmup_batches=1) as client:

        def lost(*args: object, **kwargs: object) -> None:
            raise ForwardProcessError("the inference process died: EOFError()")

        monkeypatch.setattr(ForwardProcess, "draw", lost)
        answer = client.post("/generate", json={"n": 4, "format": "base64"})
    assert answer.status_code == 503 and "Retry-After" in answer.headers
    assert "inference process died" in answer.text
