"""Dynamic batching: the queue of requests waiting for the model, and how it is cut into batches.

The event loop admits requests; the inference thread takes the first waiting request and then
whatever else arrives within ``max_wait_ms``, up to ``max_batch_images`` images. A request never
splits across batches: one that does not fit waits for the next.

Admission control keeps goodput under overload: a request finds no room when
``max_queue_images`` are already waiting, or when the queue ahead of it would take longer than
``max_queue_wait_s`` at the measured throughput. It then waits at the door, asleep, up to
``admission_wait_s`` for room, and only then gets a 503. Work that is admitted finishes within its
deadline instead of every request timing out together, and clients that retry at once do not
turn refusals into the server's main work.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.metrics import ServiceMetrics
from app.serving.errors import QueueFullError
from gan.store import LoadedGenerator

if TYPE_CHECKING:
    from app.serving.worker import GenerationResult


@dataclass
class PendingGeneration:
    """One request's images, waiting in the queue for a forward pass."""

    seeds: list[int]
    digits: list[int | None]
    future: asyncio.Future[GenerationResult]
    loop: asyncio.AbstractEventLoop
    deadline: float
    model: LoadedGenerator | None = None  # None: the version serving when the batch runs
    truncation: float = 1.0  # scales this request's latents (a batch may mix truncations)
    enqueued: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return len(self.seeds)


_STOP = object()


RATE_SMOOTHING = 0.2  # weight of the newest batch in the throughput estimate (EWMA)
ADMISSION_POLL_S = 0.02  # how often a request waiting at the door looks for room


class Throughput:
    """Images per second of recent forward passes, an exponentially weighted average."""

    def __init__(self) -> None:
        self.images_per_s: float | None = None

    def record(self, images: int, seconds: float) -> None:
        if seconds <= 0:
            return
        rate = images / seconds
        previous = self.images_per_s
        self.images_per_s = (
            rate if previous is None else previous + RATE_SMOOTHING * (rate - previous)
        )

    def seconds_for(self, images: int) -> float:
        return 0.0 if not self.images_per_s else images / self.images_per_s


class BatchQueue:
    def __init__(
        self,
        metrics: ServiceMetrics,
        *,
        max_batch_images: int,
        max_wait_s: float,
        max_queue_images: int,
        max_queue_wait_s: float,
    ) -> None:
        self.metrics = metrics
        self.max_batch_images = max_batch_images
        self.max_wait_s = max_wait_s
        self.max_queue_images = max_queue_images
        self.max_queue_wait_s = max_queue_wait_s
        self.throughput = Throughput()
        self._queue: queue.Queue[PendingGeneration | object] = queue.Queue()
        self._queued_images = 0
        self._lock = threading.Lock()
        self._carry: PendingGeneration | object | None = None

    @property
    def queued_images(self) -> int:
        return self._queued_images

    def refusal(self, images: int) -> tuple[str, str] | None:
        """(reason, message) if ``images`` more would not be admitted now, else None. Cheap: the
        middleware asks it before a request's body is even read."""
        queued = self._queued_images
        if queued + images > self.max_queue_images:
            return "queue_full", (
                f"queue full: {queued} images waiting (limit {self.max_queue_images}); "
                "retry shortly"
            )
        wait_s = self.throughput.seconds_for(queued)
        if queued and wait_s > self.max_queue_wait_s:
            return "queue_wait", (
                f"busy: the queue ahead would take {wait_s:.2f}s (limit "
                f"{self.max_queue_wait_s:g}s); retry shortly"
            )
        return None

    # ----- the event loop's side -----------------------------------------------------------
    async def wait_for_room(self, images: int, wait_s: float) -> tuple[str, str] | None:
        """Wait (asleep, costing no CPU) up to ``wait_s`` for room for ``images`` more; the
        refusal that still stands after it, or None. Refusing at once would let clients that
        retry at once (a closed loop) spend the CPU on refusals instead of on the work admitted.
        """
        deadline = time.monotonic() + wait_s
        refused = self.refusal(images)
        while refused is not None and time.monotonic() < deadline:
            await asyncio.sleep(ADMISSION_POLL_S)
            refused = self.refusal(images)
        return refused

    def admit(self, pending: PendingGeneration) -> None:
        """Queue ``pending``, or refuse it (``QueueFullError``): see ``refusal``."""
        with self._lock:
            refused = self.refusal(pending.size)
            if refused is not None:
                reason, message = refused
                self.metrics.rejected.labels(reason=reason).inc()
                raise QueueFullError(message)
            self._queued_images += pending.size
        self.metrics.queue_depth.set(self._queued_images)
        self._queue.put(pending)

    def close(self) -> None:
        """After what is queued now, ``next_batch`` returns None."""
        self._queue.put(_STOP)

    # ----- the inference thread's side -----------------------------------------------------
    def next_batch(self) -> list[PendingGeneration] | None:
        """Block for the next batch; None once closed and drained."""
        first = self._carry or self._queue.get()
        self._carry = None
        if first is _STOP:
            return self._drain_remaining()
        assert isinstance(first, PendingGeneration)
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
            if (
                not isinstance(item, PendingGeneration)
                or images + item.size > self.max_batch_images
            ):
                self._carry = item  # the stop marker or a request for the next batch
                break
            batch.append(item)
            images += item.size
        return batch

    def _drain_remaining(self) -> list[PendingGeneration] | None:
        """After close: serve what is still queued, then end."""
        leftover = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, PendingGeneration):
                leftover.append(item)
        if not leftover:
            return None
        self._queue.put(_STOP)
        return leftover

    def release(self, batch: Sequence[PendingGeneration]) -> None:
        """The batch left the queue: its images no longer count against the limit."""
        with self._lock:
            self._queued_images -= sum(pending.size for pending in batch)
        self.metrics.queue_depth.set(self._queued_images)
