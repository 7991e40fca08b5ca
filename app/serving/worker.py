"""The inference worker: the one owner of the model and its device.

Requests from the event loop land in a ``BatchQueue`` (``app.serving.batching``); one worker
thread takes each batch, runs one forward pass under inference mode and hands each request its
slice. The event loop never runs the model.

A new model version is loaded and warmed up beside the old one and swapped in between two
batches: a batch always runs start to finish on the model it started with.

With ``GAN_INFERENCE_PROCESS`` the queued batches are drawn in a child process instead
(``app.serving.forward_process``): the inference thread sends the seeds and waits for the
images, and every queue, deadline and swap stays here.

The idle fast path: a request of at most ``inline_max_images`` that finds nothing else in flight
(no other request waiting, queued or being drawn, after one turn of the event loop in which the
requests that came with it arrive too) runs its forward pass on the event loop at once.
There is nothing to batch it with, and the two thread hops it saves (to the inference thread and
back, each a GIL hand-over) are a fair share of a lone request whose forward pass takes
~0.6-1 ms on a CPU: a lone client (c=1) waits less (benchmarks/README.md). A second
request arriving meanwhile takes the queue as usual, so under load everything is batched.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from app.metrics import ServiceMetrics
from app.serving.batching import BatchQueue, PendingGeneration
from app.serving.errors import DeadlineExceededError, ShuttingDownError
from app.serving.forward_process import ForwardProcess
from app.serving.futures import resolve_threadsafe
from gan.device import compute_dtype
from gan.sampling import draw_uint8
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
    truncation: float = 1.0


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
        max_queue_wait_s: float = float("inf"),
        admission_wait_s: float = 0.0,
        warmup_batches: int = 1,
        dtype: torch.dtype = torch.float32,
        inline_max_images: int = 0,
        forward_process: ForwardProcess | None = None,
    ) -> None:
        self.device = device
        self.metrics = metrics
        self.max_batch_images = max_batch_images
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue_images = max_queue_images
        self.admission_wait_s = admission_wait_s
        self.warmup_batches = warmup_batches
        self.inline_max_images = inline_max_images
        self.dtype = compute_dtype(device, dtype)
        self._model = generator
        self._process = forward_process  # batches drawn there; the idle fast path stays here
        self._queue = BatchQueue(
            metrics,
            max_batch_images=max_batch_images,
            max_wait_s=self.max_wait_s,
            max_queue_images=max_queue_images,
            max_queue_wait_s=max_queue_wait_s,
        )
        self._accepting = True
        self._in_flight = 0  # generate() calls under way (the event loop's count)
        self._drawing = threading.Lock()  # held by whoever runs a forward pass of live requests
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
        return self._queue.queued_images

    async def wait_for_room(self, images: int) -> tuple[str, str] | None:
        """Wait at the door for room (``BatchQueue.wait_for_room``); the refusal left, or None."""
        return await self._queue.wait_for_room(images, self.admission_wait_s)

    @property
    def alive(self) -> bool:
        """False once the inference thread has died (it never ends before ``stop``)."""
        return self._thread.is_alive() or not self._accepting

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Refuse new work, finish what is queued (within ``timeout``), then end the thread."""
        self._accepting = False
        self._queue.close()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("inference worker still busy after %.1fs; abandoning queue", timeout)
        if self._process is not None:
            self._process.close(timeout)

    def warm_up(self, generator: LoadedGenerator) -> None:
        """Run forward passes of the largest batch so the first real request pays no setup (in
        the inference process too, which then holds the model)."""
        seeds = list(range(self.max_batch_images))
        digits: list[int | None] = [0] * self.max_batch_images
        for _ in range(self.warmup_batches):
            if self._process is not None and self.inline_max_images:
                # The idle fast path's copy, here: only its own batch size ever runs on it.
                inline = self.inline_max_images
                self._forward(generator, seeds[:inline], digits[:inline])
            started = time.monotonic()
            self._draw_batch(generator, seeds, digits)
            self._queue.throughput.record(self.max_batch_images, time.monotonic() - started)

    def swap(self, generator: LoadedGenerator) -> None:
        """Make ``generator`` (already loaded and warmed) serve from the next batch on."""
        previous = self._model.version
        self._model = generator
        self.metrics.set_active_version(generator.version)
        log.info("model swapped", extra={"from_version": previous, "to_version": generator.version})

    # ----- the event loop's side -----------------------------------------------------------
    async def generate(
        self,
        seeds: Sequence[int],
        digits: Sequence[int | None],
        timeout_s: float,
        model: LoadedGenerator | None = None,
        truncation: float = 1.0,
    ) -> GenerationResult:
        """Queue one request and wait for its images, drawn by ``model`` (held by the caller,
        e.g. for a whole data set) or else by whichever version serves when its batch runs,
        from latents scaled by ``truncation`` (``gan.sampling.latents_for_seeds``).
        Cancelling the awaiting task (the client disconnected) or its timeout cancels the
        request's future, and the worker skips it."""
        if not self._accepting:
            raise ShuttingDownError("server is shutting down")
        self._in_flight += 1
        try:
            if len(seeds) <= self.inline_max_images and self.ready.is_set():
                # One turn of the loop first: requests that arrived with this one (read from
                # their sockets in that turn) reach this line too, and then none is alone.
                await asyncio.sleep(0)
                if self._in_flight == 1:
                    result = self._draw_inline(seeds, digits, model, truncation)
                    if result is not None:
                        return result
            return await self._queued(seeds, digits, timeout_s, model, truncation)
        finally:
            self._in_flight -= 1

    def _draw_inline(
        self,
        seeds: Sequence[int],
        digits: Sequence[int | None],
        model: LoadedGenerator | None,
        truncation: float,
    ) -> GenerationResult | None:
        """The idle fast path (module docstring); None if the inference thread is busy."""
        if self._queue.queued_images or not self._drawing.acquire(blocking=False):
            return None
        try:
            generator = model or self._model
            started = time.monotonic()
            images, labels = self._forward(generator, list(seeds), list(digits), truncation)
            compute_s = time.monotonic() - started
        finally:
            self._drawing.release()
        self._record(len(seeds), compute_s)
        self.metrics.queue_wait.observe(0.0)
        return GenerationResult(
            generator.version, images, labels, list(seeds), 0.0, compute_s, truncation
        )

    async def _queued(
        self,
        seeds: Sequence[int],
        digits: Sequence[int | None],
        timeout_s: float,
        model: LoadedGenerator | None,
        truncation: float,
    ) -> GenerationResult:
        loop = asyncio.get_running_loop()
        pending = PendingGeneration(
            list(seeds),
            list(digits),
            loop.create_future(),
            loop,
            time.monotonic() + timeout_s,
            model,
            truncation,
        )
        await self._queue.wait_for_room(len(seeds), self.admission_wait_s)
        self._queue.admit(pending)
        try:
            return await asyncio.wait_for(pending.future, timeout_s)
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
            batch = self._queue.next_batch()
            if batch is None:
                return
            self._serve(batch)

    def _serve(self, batch: list[PendingGeneration]) -> None:
        now = time.monotonic()
        live = [
            pending
            for pending in batch
            if not pending.future.cancelled() and pending.deadline > now
        ]
        self._queue.release(batch)
        for pending in batch:
            if pending not in live and not pending.future.cancelled():
                resolve_threadsafe(
                    pending.loop,
                    pending.future,
                    error=DeadlineExceededError("request expired in the queue"),
                )
        if not live:
            return
        # One model reference per group for the whole batch: a swap lands between batches, and
        # a request that holds a model (a data set being streamed) keeps it.
        groups: dict[int, tuple[LoadedGenerator, list[PendingGeneration]]] = {}
        for pending in live:
            model = pending.model or self._model
            groups.setdefault(id(model), (model, []))[1].append(pending)
        with self._drawing:
            for model, group in groups.values():
                self._serve_group(model, group)

    def _serve_group(self, model: LoadedGenerator, live: list[PendingGeneration]) -> None:
        seeds = [seed for pending in live for seed in pending.seeds]
        digits = [digit for pending in live for digit in pending.digits]
        truncations = [pending.truncation for pending in live for _ in pending.seeds]
        started = time.monotonic()
        try:
            images, labels = self._draw_batch(model, seeds, digits, truncations)
        except Exception as error:  # report to every waiting request instead of killing the thread
            log.exception("forward pass failed")
            for pending in live:
                resolve_threadsafe(pending.loop, pending.future, error=error)
            return
        compute_s = time.monotonic() - started
        self._record(len(seeds), compute_s)
        offset = 0
        for pending in live:
            end = offset + pending.size
            wait_s = started - pending.enqueued
            self.metrics.queue_wait.observe(wait_s)
            result = GenerationResult(
                model.version,
                images[offset:end],
                labels[offset:end],
                pending.seeds,
                wait_s,
                compute_s,
                pending.truncation,
            )
            resolve_threadsafe(pending.loop, pending.future, result=result)
            offset = end

    def _record(self, images: int, compute_s: float) -> None:
        self._queue.throughput.record(images, compute_s)
        self.metrics.compute.observe(compute_s)
        self.metrics.batch_size.observe(images)
        self.metrics.images.inc(images)

    def _draw_batch(
        self,
        generator: LoadedGenerator,
        seeds: list[int],
        digits: list[int | None],
        truncations: float | Sequence[float] = 1.0,
    ) -> tuple[np.ndarray, list[int]]:
        """A queued batch: in the inference process when there is one, else here."""
        if self._process is not None:
            return self._process.draw(generator.model, seeds, digits, truncations)
        return self._forward(generator, seeds, digits, truncations)

    def _forward(
        self,
        generator: LoadedGenerator,
        seeds: list[int],
        digits: list[int | None],
        truncations: float | Sequence[float] = 1.0,
    ) -> tuple[np.ndarray, list[int]]:
        """A batch drawn here, in this process."""
        return draw_uint8(
            generator.model, seeds, digits, truncations, device=self.device, dtype=self.dtype
        )
