"""The batching inference worker, driven directly from asyncio (no HTTP)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

from app.metrics import ServiceMetrics
from app.serving.errors import DeadlineExceededError, QueueFullError, ShuttingDownError
from app.serving.worker import GenerationResult, InferenceWorker
from gan.networks import Generator, GeneratorConfig
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import WEIGHTS_FILE, LoadedGenerator, Manifest
from support.app import GatedModel

CONFIG = GeneratorConfig(latent_dim=8, embed_dim=4, channels=8)


def loaded(model: torch.nn.Module) -> LoadedGenerator:
    manifest = Manifest(
        kind="generator",
        version="w1",
        architecture=CONFIG.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",
    )
    return LoadedGenerator("w1", manifest, model)  # type: ignore[arg-type]


@pytest.fixture
def model() -> GatedModel:
    torch.manual_seed(0)
    return GatedModel(Generator(CONFIG).eval(), open_gate=False)


@contextmanager
def running(model: torch.nn.Module, **options: Any) -> Iterator[InferenceWorker]:
    settings: dict[str, Any] = {
        "max_batch_images": 64,
        "max_wait_ms": 0,
        "max_queue_images": 1000,
        "warmup_batches": 0,
    }
    settings.update(options)
    worker = InferenceWorker(loaded(model), torch.device("cpu"), ServiceMetrics(), **settings)
    worker.start()
    try:
        assert worker.ready.wait(10)
        yield worker
    finally:
        if isinstance(model, GatedModel):
            model.gate.set()
        worker.stop(5)


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.002)


async def hold_worker(worker: InferenceWorker, model: GatedModel) -> asyncio.Task[Any]:
    """Start one request and return once the worker is blocked in its forward pass."""
    task = asyncio.create_task(worker.generate([10_000], [0], 10))
    assert await asyncio.to_thread(model.entered.wait, 10)
    return task


def test_concurrent_requests_share_forward_passes(model: GatedModel) -> None:
    model.gate.set()
    with running(model, max_wait_ms=20) as worker:

        async def main() -> None:
            seeds = list(range(12))
            results = await asyncio.gather(*(worker.generate([s], [s % 10], 10) for s in seeds))
            for seed, result in zip(seeds, results, strict=True):
                assert result.seeds == [seed]
                assert result.digits == [seed % 10]
                assert result.images.shape == (1, 28, 28)
                assert result.images.dtype == np.uint8
            assert model.calls < len(seeds)
            assert sum(model.batch_sizes) == len(seeds)

        asyncio.run(main())
        registry = worker.metrics.registry
        assert registry.get_sample_value("gan_batch_images_sum") == 12
        assert registry.get_sample_value("gan_batch_images_count") == model.calls
        assert registry.get_sample_value("gan_images_generated_total") == 12


def test_queued_requests_run_in_one_forward_pass(model: GatedModel) -> None:
    with running(model) as worker:

        async def main() -> None:
            first = await hold_worker(worker, model)
            queued = [asyncio.create_task(worker.generate([s], [3], 10)) for s in range(8)]
            await eventually(lambda: worker.queued_images == 8)
            model.gate.set()
            results: list[GenerationResult] = await asyncio.gather(*queued)
            await first
            assert model.batch_sizes == [1, 8]
            assert [r.seeds for r in results] == [[s] for s in range(8)]
            # each request got its own slice: the same as asking for all eight at once
            together = await worker.generate(list(range(8)), [3] * 8, 10)
            for i, result in enumerate(results):
                assert np.abs(result.images[0].astype(int) - together.images[i]).max() <= 1

        asyncio.run(main())


def test_one_batch_mixes_truncations_row_by_row(model: GatedModel) -> None:
    """Requests of different truncations share a forward pass; each gets the images of its own
    truncation, those of ``latents_for_seeds(..., truncation)``."""
    with running(model) as worker:

        async def main() -> None:
            first = await hold_worker(worker, model)
            truncations = (1.0, 0.5, 0.25)
            queued = [
                asyncio.create_task(worker.generate([5, 6], [2, None], 10, truncation=t))
                for t in truncations
            ]
            await eventually(lambda: worker.queued_images == 6)
            model.gate.set()
            results: list[GenerationResult] = await asyncio.gather(*queued)
            await first
            assert model.batch_sizes == [1, 6]  # one forward pass for all three
            for truncation, result in zip(truncations, results, strict=True):
                assert result.truncation == truncation
                z, labels = latents_for_seeds([5, 6], CONFIG.latent_dim, [2, None], truncation)
                with torch.inference_mode():
                    alone = to_uint8(model.inner(z, labels)).numpy()
                assert result.digits == labels.tolist()
                assert np.abs(result.images.astype(int) - alone).max() <= 1
            assert not np.array_equal(results[0].images, results[1].images)

        asyncio.run(main())


def test_a_job_that_does_not_fit_waits_for_the_next_batch(model: GatedModel) -> None:
    with running(model, max_batch_images=4) as worker:

        async def main() -> None:
            first = await hold_worker(worker, model)
            queued = [
                asyncio.create_task(worker.generate([s, s + 1, s + 2], [1, 1, 1], 10))
                for s in (0, 10)
            ]
            await eventually(lambda: worker.queued_images == 6)
            model.gate.set()
            await asyncio.gather(first, *queued)
            assert model.batch_sizes == [1, 3, 3]
            assert [task.result().seeds for task in queued] == [[0, 1, 2], [10, 11, 12]]

        asyncio.run(main())


@pytest.mark.parametrize("how", ["cancelled", "timed out"])
def test_abandoned_request_costs_no_forward_pass(model: GatedModel, how: str) -> None:
    with running(model) as worker:

        async def main() -> None:
            first = await hold_worker(worker, model)
            timeout = 0.05 if how == "timed out" else 10
            abandoned = asyncio.create_task(worker.generate([1, 2, 3], [4, 4, 4], timeout))
            await eventually(lambda: worker.queued_images == 3)
            if how == "cancelled":  # the client went away before the worker reached the job
                abandoned.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await abandoned
            else:
                with pytest.raises(DeadlineExceededError):
                    await abandoned
            model.gate.set()
            await first
            after = await worker.generate([7], [7], 10)
            assert after.seeds == [7]
            assert model.batch_sizes == [1, 1]  # the abandoned job's 3 images were never drawn
            assert worker.queued_images == 0

        asyncio.run(main())


def test_queue_full_is_refused_at_once(model: GatedModel) -> None:
    with running(model, max_queue_images=3) as worker:

        async def main() -> None:
            first = await hold_worker(worker, model)  # being served: no longer queued
            waiting = asyncio.create_task(worker.generate([1, 2], [0, 0], 10))
            await eventually(lambda: worker.queued_images == 2)
            with pytest.raises(QueueFullError, match=r"limit 3"):
                await worker.generate([3, 4], [0, 0], 10)
            assert worker.queued_images == 2  # the refused request left no trace
            fits = asyncio.create_task(worker.generate([5], [0], 10))
            await eventually(lambda: worker.queued_images == 3)
            model.gate.set()
            await asyncio.gather(first, waiting, fits)
            assert worker.queued_images == 0

        asyncio.run(main())
        registry = worker.metrics.registry
        assert (
            registry.get_sample_value("gan_rejected_requests_total", {"reason": "queue_full"}) == 1
        )


class FailingOnce(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = CONFIG
        self.failed = False

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if not self.failed:
            self.failed = True
            raise RuntimeError("simulated device error")
        out: torch.Tensor = self.inner(z, labels)
        return out


def test_forward_failure_reaches_the_request_and_the_worker_survives() -> None:
    torch.manual_seed(0)
    with running(FailingOnce(Generator(CONFIG).eval())) as worker:

        async def main() -> None:
            with pytest.raises(RuntimeError, match="simulated device error"):
                await worker.generate([1], [1], 10)
            result = await worker.generate([1], [1], 10)
            assert result.images.shape == (1, 28, 28)

        asyncio.run(main())


def test_stop_finishes_queued_work_then_refuses_new(model: GatedModel) -> None:
    worker = InferenceWorker(
        loaded(model),
        torch.device("cpu"),
        ServiceMetrics(),
        max_batch_images=64,
        max_wait_ms=0,
        max_queue_images=100,
        warmup_batches=0,
    )
    worker.start()

    async def main() -> None:
        first = await hold_worker(worker, model)
        queued = asyncio.create_task(worker.generate([1], [1], 10))
        await eventually(lambda: worker.queued_images == 1)
        stopping = asyncio.create_task(asyncio.to_thread(worker.stop, 10))
        await eventually(lambda: not worker._accepting)
        with pytest.raises(ShuttingDownError):
            await worker.generate([2], [2], 10)
        model.gate.set()
        await stopping
        assert (await first).seeds == [10_000]
        assert (await queued).seeds == [1]

    try:
        asyncio.run(main())
    finally:
        model.gate.set()
        worker.stop(5)
    assert not worker._thread.is_alive()


def test_warm_up_runs_before_ready(model: GatedModel) -> None:
    worker = InferenceWorker(
        loaded(model),
        torch.device("cpu"),
        ServiceMetrics(),
        max_batch_images=16,
        max_wait_ms=0,
        max_queue_images=100,
        warmup_batches=2,
    )
    worker.start()
    try:
        assert model.entered.wait(10)
        assert not worker.ready.is_set()
        model.gate.set()
        assert worker.ready.wait(10)
        assert model.batch_sizes == [16, 16]
    finally:
        model.gate.set()
        worker.stop(5)


class ThreadRecorder(torch.nn.Module):
    """Records the thread of each forward pass."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = CONFIG
        self.threads: list[str] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.threads.append(threading.current_thread().name)
        out: torch.Tensor = self.inner(z, labels)
        return out


def test_a_lone_small_request_is_drawn_at_once_with_the_same_pixels() -> None:
    torch.manual_seed(0)
    model = ThreadRecorder(Generator(CONFIG).eval())
    with running(model, inline_max_images=4) as fast, running(model) as batched:

        async def main() -> tuple[GenerationResult, GenerationResult, GenerationResult]:
            inline = await fast.generate([5, 6], [2, None], 10, truncation=0.8)
            large = await fast.generate(list(range(5)), [1] * 5, 10)  # over the limit: queued
            queued = await batched.generate([5, 6], [2, None], 10, truncation=0.8)
            return inline, large, queued

        inline, large, queued = asyncio.run(main())
    assert model.threads == ["MainThread", "inference-worker", "inference-worker"]
    assert np.array_equal(inline.images, queued.images)
    assert (inline.version, inline.digits, inline.seeds, inline.truncation) == (
        queued.version,
        queued.digits,
        queued.seeds,
        queued.truncation,
    )
    assert inline.queue_wait_s == 0 and large.images.shape == (5, 28, 28)
    assert fast.metrics.registry.get_sample_value("gan_images_generated_total") == 7


def test_a_request_that_finds_another_in_flight_is_queued(model: GatedModel) -> None:
    with running(model, inline_max_images=4) as worker:

        async def main() -> None:
            busy = asyncio.create_task(worker.generate(list(range(8)), [0] * 8, 10))
            assert await asyncio.to_thread(model.entered.wait, 10)
            second = asyncio.create_task(worker.generate([1], [1], 10))
            await eventually(lambda: worker.queued_images == 1)  # not drawn on the loop
            model.gate.set()
            await asyncio.gather(busy, second)

        asyncio.run(main())
        assert model.batch_sizes == [8, 1]


def test_requests_that_arrive_together_are_batched_with_the_fast_path_on() -> None:
    torch.manual_seed(0)
    model = GatedModel(Generator(CONFIG).eval())
    with running(model, inline_max_images=4) as worker:

        async def main() -> None:
            await asyncio.gather(*(worker.generate([s], [s % 10], 10) for s in range(8)))

        asyncio.run(main())
    assert sum(model.batch_sizes) == 8 and model.calls < 8
