"""Retraining jobs: one at a time, each the training CLI in its own process (a crash or OOM there
never takes the API down), its JSON-lines progress recorded and fanned out to SSE listeners."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections import deque
from pathlib import Path
from typing import Any

from app.config import Settings
from app.retraining.database import ACTIVE_STATES, JobDatabase, JobRecord, now
from app.retraining.promotion import decide
from app.serving.registry import ModelRegistry
from gan.store import StoreError, new_version_name

log = logging.getLogger(__name__)
LOG_TAIL_LINES = 40
JOB_PHASES = ("queued", "training", "evaluating", "publishing")
ESTIMATE_SECONDS = 3  # of timed training steps behind an estimate
ESTIMATE_TIMEOUT_S = 60.0  # start-up (torch import) included


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
        """How long a job of ``params`` would train here: real training steps timed now on this
        host (``python -m training speed``), or, while a job runs, that job's own throughput
        (timing beside it would measure the contention, not the job)."""
        running = self.db.active()
        if running is not None and running.progress.get("images_per_s"):
            rate = float(running.progress["images_per_s"])
            steps = int(params.get("steps") or running.progress.get("total_steps") or 0) or None
            batch = int(params.get("batch_size") or 64)
            seconds = None if steps is None else round(steps * batch / rate, 1)
            basis = f"measured by the running job {running.id}; evaluation not included"
            return {"seconds": seconds, "images_per_s": rate, "steps": steps, "basis": basis}
        options = [] if params.get("preset") else recipe_options(params)
        base = [part.replace("{python}", sys.executable) for part in self.settings.training_command]
        argv = [*base, "speed", "--seconds", str(ESTIMATE_SECONDS), *options]
        measured = await _run_json(argv, ESTIMATE_TIMEOUT_S)
        if measured is None:
            basis = "the speed measurement failed; see the server log"
            return {"seconds": None, "images_per_s": None, "steps": None, "basis": basis}
        return {
            "seconds": measured.get("estimated_training_s"),
            "images_per_s": measured.get("images_per_s"),
            "steps": measured.get("steps"),
            "basis": f"{measured.get('timed_steps')} real training steps timed on this host "
            f"({measured.get('device')}); evaluation and start-up not included",
        }

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
        """The training command of ``job``: where its files go, then its recipe options. A
        preset passes no recipe option at all, so the CLI trains its own defaults (the shipped
        recipe) with its own reporting cadence."""
        base = [part.replace("{python}", sys.executable) for part in self.settings.training_command]
        argv = [
            *base, "train",
            "--store", str(self.registry.store.root),
            "--run-dir", str(self.run_dir(job.id)),
            "--version", version,
            "--parent", job.parent or "",
            "--progress", "jsonl",
            "--evaluate",
        ]  # fmt: skip
        if self.settings.data_dir is not None:
            argv += ["--data-dir", str(self.settings.data_dir)]
        if job.params.get("preset") is not None:
            return argv
        # Frequent enough for a lively progress bar and sample grid, whatever the length.
        steps = int(job.params["steps"])
        argv += ["--log-every", str(max(1, steps // 200))]
        argv += ["--sample-every", str(max(1, steps // 20))]
        argv += ["--checkpoint-every", str(max(1, steps // 10))]
        return argv + recipe_options(job.params)

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
            event = _parse_event(line)
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


async def _run_json(argv: list[str], timeout_s: float) -> dict[str, Any] | None:
    """Run ``argv`` and parse the last line of its output as a JSON object (None on failure)."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except (OSError, TimeoutError) as error:
        log.error("speed measurement failed: %s", error)
        return None
    lines = stdout.decode(errors="replace").strip().splitlines()
    parsed = _parse_event(lines[-1]) if lines else None
    if process.returncode != 0 or parsed is None:
        log.error("speed measurement failed: %s", stderr.decode(errors="replace")[-500:])
        return None
    return parsed


def recipe_options(params: dict[str, Any]) -> list[str]:
    """Job parameters as training CLI options: ``--name value``, switches as ``--name`` or
    ``--no-name``; a parameter left unset (None) is not passed. One AC-GAN weight replaces the
    schedule (the CLI takes one or the other)."""
    options: list[str] = []
    for name, value in params.items():
        if value is None or (
            name == "aux_classifier_schedule" and params.get("aux_classifier") is not None
        ):
            continue
        option = name.replace("_", "-")
        if isinstance(value, bool):
            options.append(f"--{option}" if value else f"--no-{option}")
        else:
            options += [f"--{option}", str(value)]
    return options


def process_started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), or None if it does
    not exist or this system has no /proc: with the PID, it names one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def _parse_event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
