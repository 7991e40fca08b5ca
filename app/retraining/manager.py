"""Retraining jobs: one at a time, each the training CLI in its own process (a crash or OOM there
never takes the API down), its JSON-lines progress recorded and fanned out to SSE listeners."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
from collections import deque
from pathlib import Path
from typing import Any

from app.config import Settings
from app.retraining.commands import (
    estimate_from_progress,
    measure_speed,
    parse_event,
    process_started,
    train_argv,
)
from app.retraining.database import ACTIVE_STATES, JobDatabase, JobRecord, now
from app.retraining.promotion import decide
from app.serving.registry import ModelRegistry
from gan.store import StoreError, new_version_name

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 40
JOB_PHASES = ("queued", "training", "evaluating", "publishing")


class JobConflictError(Exception):
    """Another job is queued or running."""


class IdempotencyConflictError(Exception):
    """An Idempotency-Key was reused with different parameters."""


class JobStateError(Exception):
    """The job is not in a state that allows this action."""


class JobManager:
    def __init__(self, db: JobDatabase, settings: Settings, registry: ModelRegistry) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self._changed = asyncio.Condition()
        self._generation = 0
        self._process: asyncio.subprocess.Process | None = None
        self._cancelling: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # ----- start-up and shutdown -----------------------------------------------------------
    def recover(self) -> None:
        """Jobs a previous server left running are marked interrupted, their processes ended
        (only if the PID is still the job's process, not a reused one), and a version they never
        published is not advertised."""
        published = {manifest.version for manifest in self.registry.store.versions()}
        for job in self.db.mark_interrupted():
            if job.pid is not None and process_started(job.pid) == job.pid_started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(job.pid, signal.SIGKILL)  # the job ran in its own process group
            if job.version is not None and job.version not in published:
                self.db.update(job.id, version=None)
            log.warning("job interrupted by a restart", extra={"job_id": job.id})

    async def shutdown(self) -> None:
        active = self.db.active()  # one job at a time
        if active is not None:
            with contextlib.suppress(JobStateError):
                await self.cancel(active.id)
        for task in list(self._tasks):
            task.cancel()

    # ----- API -----------------------------------------------------------------------------
    def run_dir(self, job_id: str) -> Path:
        return self.settings.state_dir / "runs" / job_id

    async def submit(
        self, params: dict[str, Any], idempotency_key: str | None
    ) -> tuple[JobRecord, bool]:
        """Start a job; returns it and whether it is new (False: an idempotent retry)."""
        if idempotency_key is not None:
            existing = self.db.by_idempotency_key(idempotency_key)
            if existing is not None:
                if existing.params != params:
                    raise IdempotencyConflictError(
                        f"Idempotency-Key {idempotency_key!r} was used for job {existing.id} "
                        "with different parameters"
                    )
                return existing, False
        running = self.db.active()
        if running is not None:
            raise JobConflictError(f"job {running.id} is {running.state}; one job runs at a time")
        job = self.db.create(params, idempotency_key, parent=self.registry.worker.version)
        await self._event(job.id, {"event": "state", "state": "queued"})
        task = asyncio.create_task(self._run(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job, True

    async def cancel(self, job_id: str) -> JobRecord:
        job = self.db.get(job_id)
        if job is None or job.state not in ACTIVE_STATES:
            raise JobStateError(f"job {job_id} is {job.state if job else 'unknown'}, not running")
        self._cancelling.add(job_id)
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.settings.job_cancel_grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        for _ in range(200):  # the job task records the final state once the process is gone
            current = self.db.get(job_id)
            if current is not None and current.state not in ACTIVE_STATES:
                return current
            await asyncio.sleep(0.05)
        current = self.db.get(job_id)
        assert current is not None
        return current

    async def estimate(self, params: dict[str, Any]) -> dict[str, Any]:
        """How long a job of ``params`` would train here: measured now by the training CLI's
        speed command, or, while a job runs, that job's own throughput (timing beside it would
        measure the contention, not the job)."""
        running = self.db.active()
        if running is not None and running.progress.get("images_per_s"):
            return estimate_from_progress(params, running.id, running.progress)
        return await measure_speed(self.settings, params)

    async def wait_for_events(self, seen_generation: int, timeout_s: float) -> int:
        """Block until a new event is recorded (or the timeout); returns the new generation."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._generation > seen_generation), timeout_s
                )
            return self._generation

    def running_step(self) -> int:
        """The step the running job last reported (0 when none runs)."""
        running = self.db.active()
        return int(running.progress.get("step", 0)) if running is not None else 0

    @property
    def generation(self) -> int:
        return self._generation

    # ----- the job itself ------------------------------------------------------------------
    async def _event(self, job_id: str, event: dict[str, Any]) -> None:
        self.db.add_event(job_id, event)
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _argv(self, job: JobRecord, version: str) -> list[str]:
        return train_argv(
            self.settings,
            job.params,
            job.parent,
            self.registry.store.root,
            self.run_dir(job.id),
            version,
        )

    async def _run(self, job: JobRecord) -> None:
        version = new_version_name()
        tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._argv(job, version),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: cancel ends it and its children
            )
        except OSError as error:
            await self._finish(job.id, "failed", error=f"cannot start training: {error}")
            return
        self._process = process
        self.db.update(
            job.id,
            state="running",
            phase="training",
            started_at=now(),
            pid=process.pid,
            pid_started=process_started(process.pid),
            version=version,
        )
        await self._event(job.id, {"event": "state", "state": "running", "version": version})
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            event = parse_event(line)
            if event is not None and event.get("event") == "progress":
                event["sample_grid"] = f"/jobs/{job.id}/samples.png"
                self.db.update(job.id, progress=event)
                await self._event(job.id, event)
            elif event is not None and event.get("event") == "phase":
                await self._enter_phase(job.id, str(event.get("phase")))
            elif line:
                tail.append(line)
                self.db.update(job.id, log_tail="\n".join(tail))
        returncode = await process.wait()
        self._process = None
        await self._conclude(job, version, returncode, "\n".join(tail))

    async def _conclude(self, job: JobRecord, version: str, returncode: int, tail: str) -> None:
        store = self.registry.store
        checkpoint = self.run_dir(job.id) / "checkpoint.pt"
        checkpoint.unlink(missing_ok=True)  # the exported version is what matters; save the disk
        if job.id in self._cancelling:
            self._cancelling.discard(job.id)
            # A cancel that raced the final publish: a cancelled job leaves no version behind.
            if version in store.broken() or any(m.version == version for m in store.versions()):
                with contextlib.suppress(StoreError):  # the active one stays (never discarded)
                    store.discard(version)
            shutil.rmtree(self.run_dir(job.id), ignore_errors=True)
            await self._finish(job.id, "cancelled", version=None)
            return
        if returncode != 0:
            last = tail.strip().splitlines()[-1:] or ["no output"]
            await self._finish(
                job.id, "failed", error=f"training exited with {returncode}: {last[0]}"
            )
            return
        try:
            manifest = store.manifest(version)
            active = store.manifest(self.registry.worker.version)
            decision = decide(self.settings, manifest.metrics, active.metrics)
            if decision.promote:
                await self.registry.activate(version)
        except Exception as error:
            log.exception("job %s: promotion failed", job.id)
            await self._finish(job.id, "failed", error=f"evaluation or promotion failed: {error}")
            return
        await self._finish(
            job.id, "succeeded", metrics=manifest.metrics, decision=decision.to_dict()
        )

    async def _enter_phase(self, job_id: str, phase: str) -> None:
        """The training CLI moved on (training -> evaluating -> publishing): an ETA only means
        something while training, so it goes with the phase."""
        if phase not in JOB_PHASES:
            return
        job = self.db.get(job_id)
        progress = dict(job.progress) if job is not None else {}
        if phase != "training":
            progress.pop("eta_s", None)
        self.db.update(job_id, phase=phase, progress=progress)
        await self._event(job_id, {"event": "phase", "phase": phase})

    async def _finish(self, job_id: str, state: str, **fields: Any) -> None:
        job = self.db.get(job_id)
        progress = {k: v for k, v in (job.progress if job else {}).items() if k != "eta_s"}
        self.db.update(
            job_id, state=state, phase=None, progress=progress, finished_at=now(), **fields
        )
        job = self.db.get(job_id)
        assert job is not None
        await self._event(
            job_id,
            {
                "event": "state",
                "state": state,
                "version": job.version,
                "error": job.error,
                "decision": job.decision,
            },
        )
