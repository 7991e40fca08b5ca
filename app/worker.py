"""The inference worker: the one owner of the model and its device.

Requests from the event loop land in a queue; one worker thread takes up to ``max_batch_images``
images (waiting at most ``max_wait_ms`` for more), runs one forward pass under inference mode and
hands each request its slice. The event loop never runs the model.

A new model version is loaded and warmed up beside the old one and swapped in between two
batches: a batch always runs start to finish on the model it started with.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from app.errors import DeadlineExceededError, QueueFullError, ShuttingDownError
from app.futures import resolve_threadsafe
from app.metrics import ServiceMetrics
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import LoadedGenerator

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationResult:
    version: str
    images: np.ndarray  # (n, 28, 28) uint8
    digits: list[int]
    seeds: list[int]
    queue_wait_s: float
    compute_s: float


@dataclass
class _Job:
    seeds: list[int]
    digits: list[int | None]
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return len(self.seeds)


_STOP = object()


class InferenceWorker:
    def __init__(
        self,
        generator: LoadedGenerator,
        device: torch.device,
        metrics: ServiceMetrics,
        *,
        max_batch_images: int,
        max_wait_ms: float,
        max_queue_images: int,
        warmup_batches: int = 1,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = device
        self.metrics = metrics
        self.max_batch_images = max_batch_images
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue_images = max_queue_images
        self.warmup_batches = warmup_batches
        self.dtype = dtype if device.type == "cuda" else torch.float32
        self._model = generator
        self._queue: queue.Queue[_Job | object] = queue.Queue()
        self._queued_images = 0
        self._lock = threading.Lock()
        self._carry: _Job | object | None = None
        self._accepting = True
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        metrics.set_active_version(generator.version)

    # ----- lifecycle -----------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._model.version

    @property
    def generator(self) -> LoadedGenerator:
        """The model serving now (read-only: swap() replaces it between batches)."""
        return self._model

    @property
    def manifest_metrics(self) -> dict[str, object]:
        return dict(self._model.manifest.metrics)

    @property
    def queued_images(self) -> int:
        return self._queued_images

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Refuse new work, finish what is queued (within ``timeout``), then end the thread."""
        self._accepting = False
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("inference worker still busy after %.1fs; abandoning queue", timeout)

    def warm_up(self, generator: LoadedGenerator) -> None:
        """Run forward passes of the largest batch so the first real request pays no setup."""
        for _ in range(self.warmup_batches):
            self._forward(
                generator, list(range(self.max_batch_images)), [0] * self.max_batch_images
            )

    def swap(self, generator: LoadedGenerator) -> None:
        """Make ``generator`` (already loaded and warmed) serve from the next batch on."""
        previous = self._model.version
        self._model = generator
        self.metrics.set_active_version(generator.version)
        log.info("model swapped", extra={"from_version": previous, "to_version": generator.version})

    # ----- the event loop's side -----------------------------------------------------------
    async def generate(
        self, seeds: Sequence[int], digits: Sequence[int | None], timeout_s: float
    ) -> GenerationResult:
        """Queue one request and wait for its images. Cancelling the awaiting task (the client
        disconnected) or its timeout cancels the job's future, and the worker skips such jobs."""
        if not self._accepting:
            raise ShuttingDownError("server is shutting down")
        size = len(seeds)
        with self._lock:
            if self._queued_images + size > self.max_queue_images:
                self.metrics.rejected.labels(reason="queue_full").inc()
                raise QueueFullError(
                    f"queue full: {self._queued_images} images waiting (limit "
                    f"{self.max_queue_images}); retry shortly"
                )
            self._queued_images += size
        loop = asyncio.get_running_loop()
        job = _Job(
            list(seeds), list(digits), loop.create_future(), loop, time.monotonic() + timeout_s
        )
        self.metrics.queue_depth.set(self._queued_images)
        self._queue.put(job)
        try:
            return await asyncio.wait_for(job.future, timeout_s)
        except TimeoutError:
            self.metrics.rejected.labels(reason="deadline").inc()
            raise DeadlineExceededError(f"no result within {timeout_s:g}s; retry later") from None

    # ----- the worker thread's side --------------------------------------------------------
    def _run(self) -> None:
        try:
            self.warm_up(self._model)
        except Exception:
            log.exception("warm-up failed")
            raise
        self.ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._serve(batch)

    def _next_batch(self) -> list[_Job] | None:
        first = self._carry or self._queue.get()
        self._carry = None
        if first is _STOP:
            return self._drain_remaining()
        assert isinstance(first, _Job)
        batch, images = [first], first.size
        fill_deadline = time.monotonic() + self.max_wait_s
        while images < self.max_batch_images:
            try:
                remaining = fill_deadline - time.monotonic()
                item = (
                    self._queue.get_nowait()
                    if remaining <= 0
                    else self._queue.get(timeout=remaining)
                )
            except queue.Empty:
                break
            if not isinstance(item, _Job) or images + item.size > self.max_batch_images:
                self._carry = item  # the stop marker or a job for the next batch
                break
            batch.append(item)
            images += item.size
        return batch

    def _drain_remaining(self) -> list[_Job] | None:
        """After stop: serve what is still queued, then end."""
        leftover = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Job):
                leftover.append(item)
        if not leftover:
            return None
        self._queue.put(_STOP)
        return leftover

    def _release(self, jobs: Sequence[_Job]) -> None:
        with self._lock:
            self._queued_images -= sum(job.size for job in jobs)
        self.metrics.queue_depth.set(self._queued_images)

    def _serve(self, batch: list[_Job]) -> None:
        now = time.monotonic()
        live = [job for job in batch if not job.future.cancelled() and job.deadline > now]
        self._release(batch)
        for job in batch:
            if job not in live and not job.future.cancelled():
                resolve_threadsafe(
                    job.loop,
                    job.future,
                    error=DeadlineExceededError("request expired in the queue"),
                )
        if not live:
            return
        model = self._model  # one reference for the whole batch: a swap lands between batches
        seeds = [seed for job in live for seed in job.seeds]
        digits = [digit for job in live for digit in job.digits]
        started = time.monotonic()
        try:
            images, labels = self._forward(model, seeds, digits)
        except Exception as error:  # report to every waiting request instead of killing the thread
            log.exception("forward pass failed")
            for job in live:
                resolve_threadsafe(job.loop, job.future, error=error)
            return
        compute_s = time.monotonic() - started
        self.metrics.compute.observe(compute_s)
        self.metrics.batch_size.observe(len(seeds))
        self.metrics.images.inc(len(seeds))
        offset = 0
        for job in live:
            end = offset + job.size
            wait_s = started - job.enqueued
            self.metrics.queue_wait.observe(wait_s)
            result = GenerationResult(
                model.version, images[offset:end], labels[offset:end], job.seeds, wait_s, compute_s
            )
            resolve_threadsafe(job.loop, job.future, result=result)
            offset = end

    def _forward(
        self, generator: LoadedGenerator, seeds: list[int], digits: list[int | None]
    ) -> tuple[np.ndarray, list[int]]:
        z, labels = latents_for_seeds(seeds, generator.model.config.latent_dim, digits)
        autocast = torch.autocast(
            self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32
        )
        with torch.inference_mode(), autocast:
            images = generator.model(z.to(self.device), labels.to(self.device))
        return to_uint8(images).numpy(), labels.tolist()
