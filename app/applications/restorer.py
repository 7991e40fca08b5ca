"""The restoration worker: GAN inversion of damaged digits, off the event loop and apart from
image generation.

One thread takes restorations from a bounded queue, one at a time (each is already a batch of
restarts x digits), using whichever generator the inference worker serves when it starts. A full
queue answers 503 at once; a restoration still running at its deadline, or whose client went
away, stops at its next optimisation step. Generation never waits for a restoration: its worker
thread and queue are separate (they share only the CPU or GPU).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import queue
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from app.limits import env_name
from app.metrics import ServiceMetrics
from app.schemas.applications import RestoreResponse
from app.serving.errors import DeadlineExceededError, QueueFullError, ShuttingDownError
from app.serving.futures import resolve_threadsafe
from app.serving.worker import InferenceWorker
from gan.imaging import GENERATOR_NAME, encode_png
from gan.restoration import Restoration, restore

log = logging.getLogger(__name__)
SCORE_DECIMALS = 6  # a share of 5e-324 is 0.0 to a reader


@dataclass(frozen=True)
class RestoreTask:
    image: np.ndarray  # (28, 28) uint8
    missing: np.ndarray  # (28, 28) bool: True where damaged
    digit: int | None
    steps: int
    restarts: int
    seed: int


@dataclass(frozen=True)
class RestoreResult:
    version: str
    restoration: Restoration
    queue_wait_s: float
    compute_s: float


@dataclass
class PendingRestoration:
    task: RestoreTask
    future: asyncio.Future[RestoreResult]
    loop: asyncio.AbstractEventLoop
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)


class _Abandoned(Exception):
    """Raised inside the optimisation loop when its request expired or was cancelled."""


_STOP = object()


class RestorationWorker:
    def __init__(
        self,
        source: InferenceWorker,
        metrics: ServiceMetrics,
        *,
        queue_depth: int,
        timeout_s: float,
    ) -> None:
        self.source = source
        self.timeout_s = timeout_s
        self._queue: queue.Queue[PendingRestoration | object] = queue.Queue(maxsize=queue_depth)
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="restoration-worker", daemon=True)
        self._duration = metrics.restore_duration
        self._outcomes = metrics.restore_outcomes

    @property
    def waiting(self) -> int:
        """Restorations queued, not yet started."""
        return self._queue.qsize()

    @property
    def alive(self) -> bool:
        """False once the restoration thread has died (it never ends before ``stop``)."""
        return self._thread.is_alive() or not self._accepting

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Refuse new work; the restoration running (if any) stops at its deadline at worst."""
        self._accepting = False
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("restoration worker still busy after %.1fs; abandoning it", timeout)

    async def restore(self, task: RestoreTask) -> RestoreResult:
        if not self._accepting:
            raise ShuttingDownError("server is shutting down")
        loop = asyncio.get_running_loop()
        pending = PendingRestoration(
            task, loop.create_future(), loop, time.monotonic() + self.timeout_s
        )
        try:
            self._queue.put_nowait(pending)
        except queue.Full:
            self._outcomes.labels(outcome="queue_full").inc()
            raise QueueFullError(
                f"restoration queue full ({self._queue.maxsize} waiting, server limit "
                f"{env_name('restore_queue_depth')}); retry shortly"
            ) from None
        try:
            return await asyncio.wait_for(pending.future, self.timeout_s)
        except TimeoutError:
            self._outcomes.labels(outcome="deadline").inc()
            raise DeadlineExceededError(
                f"restoration not done within {self.timeout_s:g}s (server limit "
                f"{env_name('restore_timeout_s')}); ask for fewer steps or restarts, or retry later"
            ) from None

    # ----- the worker thread's side --------------------------------------------------------
    def _run(self) -> None:
        while True:
            pending = self._queue.get()
            if pending is _STOP:
                return
            assert isinstance(pending, PendingRestoration)
            self._serve(pending)

    def _serve(self, pending: PendingRestoration) -> None:
        if pending.future.cancelled() or time.monotonic() > pending.deadline:
            self._outcomes.labels(outcome="expired").inc()
            resolve_threadsafe(
                pending.loop,
                pending.future,
                error=DeadlineExceededError("restoration expired in the queue"),
            )
            return

        def interrupt() -> None:
            if pending.future.cancelled() or time.monotonic() > pending.deadline:
                raise _Abandoned

        loaded = self.source.generator  # one model for the whole restoration
        device = next(loaded.model.parameters()).device
        task = pending.task
        started = time.monotonic()
        try:
            restoration = restore(
                loaded.model,
                torch.from_numpy(task.image).to(device),
                torch.from_numpy(task.missing).to(device),
                digit=task.digit,
                steps=task.steps,
                restarts=task.restarts,
                seed=task.seed,
                interrupt=interrupt,
            )
        except _Abandoned:
            self._outcomes.labels(outcome="abandoned").inc()
            resolve_threadsafe(
                pending.loop,
                pending.future,
                error=DeadlineExceededError("restoration stopped at its deadline"),
            )
            return
        except Exception as error:  # report to the request instead of killing the thread
            log.exception("restoration failed")
            self._outcomes.labels(outcome="error").inc()
            resolve_threadsafe(pending.loop, pending.future, error=error)
            return
        compute_s = time.monotonic() - started
        self._duration.observe(compute_s)
        self._outcomes.labels(outcome="ok").inc()
        result = RestoreResult(loaded.version, restoration, started - pending.enqueued, compute_s)
        resolve_threadsafe(pending.loop, pending.future, result=result)


# ----- encoding ----------------------------------------------------------------------------
def provenance(result: RestoreResult, task: RestoreTask) -> dict[str, str]:
    return {
        "Source": "restored",
        "Restoration": "damaged pixels drawn by a GAN; the others are the input's own",
        "Generator": GENERATOR_NAME,
        "model_version": result.version,
        "digit": str(result.restoration.digit),
        "seed": str(task.seed),
    }


def restored_png(result: RestoreResult, task: RestoreTask) -> bytes:
    return encode_png(result.restoration.image.cpu().numpy(), provenance(result, task))


def summary_headers(result: RestoreResult, task: RestoreTask) -> dict[str, str]:
    restoration = result.restoration
    return {
        "X-Model-Version": result.version,
        "X-Digit": str(restoration.digit),
        "X-Digit-Score": f"{restoration.score:.6g}",
        "X-Reconstruction-Error": f"{restoration.error:.6g}",
        "X-Damaged-Pixels": str(int(task.missing.sum())),
        "Cache-Control": "no-store",
    }


def restore_response(result: RestoreResult, task: RestoreTask) -> RestoreResponse:
    restoration = result.restoration
    return RestoreResponse(
        model_version=result.version,
        digit=restoration.digit,
        digit_given=task.digit is not None,
        score=round(restoration.score, SCORE_DECIMALS),
        scores={
            str(digit): round(share, SCORE_DECIMALS) for digit, share in restoration.scores.items()
        },
        reconstruction_error=restoration.error,
        damaged_pixels=int(task.missing.sum()),
        steps=task.steps,
        restarts=task.restarts,
        seed=task.seed,
        png_base64=base64.b64encode(restored_png(result, task)).decode("ascii"),
    )
