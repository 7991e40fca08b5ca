"""The model registry as the service sees it: list versions, activate one (hot swap), and follow
the store's ACTIVE pointer so that replicas sharing one store, and the workers of one server,
swap by themselves."""

from __future__ import annotations

import asyncio
import logging

import torch
from starlette.concurrency import run_in_threadpool

from app.http.workers import WorkerRole
from app.metrics import ServiceMetrics
from app.serving.worker import InferenceWorker
from gan.store import LoadedGenerator, Manifest, ModelStore, StoreError

log = logging.getLogger(__name__)


class ModelRegistry:
    def __init__(
        self,
        store: ModelStore,
        worker: InferenceWorker,
        device: torch.device,
        metrics: ServiceMetrics,
        role: WorkerRole | None = None,
    ) -> None:
        self.store = store
        self.role = role
        self.worker = worker
        self.device = device
        self.metrics = metrics
        self.degraded: str | None = None  # why the served version is not the active one
        self._lock = asyncio.Lock()
        self._refused: str | None = None  # a version that failed to load: not retried every tick
        self._follower: asyncio.Task[None] | None = None
        if role is not None:
            role.report_serving(worker.version)

    def serve_fallback(self, reason: str) -> None:
        """The active version failed at start-up and another one serves: say so until a later
        swap, and follow the pointer only once it moves (not retrying the broken version)."""
        self.degraded = reason
        self.metrics.fallback.set(1)
        try:
            self._refused = self.store.active_version()
        except StoreError:
            self._refused = None

    def _swap(self, loaded: LoadedGenerator) -> None:
        self.worker.swap(loaded)
        if self.role is not None:
            self.role.report_serving(loaded.version)
        self.degraded = None
        self.metrics.fallback.set(0)

    def versions(self) -> list[Manifest]:
        return self.store.versions()

    def _load_and_warm(self, version: str) -> LoadedGenerator:
        loaded = self.store.load_generator(version, self.device)  # verifies the sha256
        self.worker.warm_up(loaded)
        return loaded

    async def activate(self, version: str) -> Manifest:
        """Load and warm ``version`` beside the serving model, point the store at it, then swap.
        Any failure (missing, tampered, unloadable) leaves the old model serving. With several
        workers, it returns once all of them serve ``version`` (or after ``FOLLOW_WAIT_S``)."""
        async with self._lock:
            loaded = await run_in_threadpool(self._load_and_warm, version)
            self.store.set_active(version)
            self._swap(loaded)
        if self.role is not None and not await self.role.wait_for_peers(version):
            log.warning("not every worker serves %s yet: %s", version, self.role.serving())
        return loaded.manifest

    def start_following(self, interval_s: float) -> None:
        """Follow the ACTIVE pointer every ``interval_s`` seconds (0: never)."""
        if interval_s > 0:
            self._follower = asyncio.create_task(self.follow_active_pointer(interval_s))

    def stop_following(self) -> None:
        if self._follower is not None:
            self._follower.cancel()

    async def follow_active_pointer(self, interval_s: float) -> None:
        """Background task: swap when another replica (or the CLI) moved the ACTIVE pointer."""
        while True:
            await asyncio.sleep(interval_s)
            wanted: str | None = None
            try:
                wanted = self.store.active_version()
                if wanted in (self.worker.version, self._refused):
                    continue
                async with self._lock:
                    loaded = await run_in_threadpool(self._load_and_warm, wanted)
                    self._swap(loaded)
                self._refused = None
            except StoreError as error:
                self._refused = wanted
                log.error("cannot follow the active pointer: %s", error)
            except Exception:
                log.exception("following the active pointer failed")
