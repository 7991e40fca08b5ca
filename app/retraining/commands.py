"""The training CLI as the service calls it: the argv of a job (its options from its
parameters), the speed measurement behind an estimate, and a process's identity (its PID and
start time). ``training`` is never imported: a job talks to it only through its command line."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any

from app.config import Settings

log = logging.getLogger(__name__)
ESTIMATE_SECONDS = 3  # of timed training steps behind an estimate
ESTIMATE_TIMEOUT_S = 60.0  # start-up (torch import) included
NOT_TIMED = frozenset({"eval_per_digit"})  # job parameters the speed command does not take
# Job parameters whose null is the CLI's "none" (off) rather than its default.
NULL_MEANS_NONE = frozenset({"twin_classifier_from"})


def training_command(settings: Settings) -> list[str]:
    return [part.replace("{python}", sys.executable) for part in settings.training_command]


def train_argv(
    settings: Settings,
    params: dict[str, Any],
    parent: str | None,
    store: Path,
    run_dir: Path,
    version: str,
) -> list[str]:
    """The training command of a job: where its files go, then its recipe options. A preset
    passes no recipe option at all, so the CLI trains its own defaults (the shipped recipe)
    with its own reporting cadence."""
    argv = [
        *training_command(settings), "train",
        "--store", str(store),
        "--run-dir", str(run_dir),
        "--version", version,
        "--parent", parent or "",
        "--progress", "jsonl",
        "--evaluate",
    ]  # fmt: skip
    if settings.data_dir is not None:
        argv += ["--data-dir", str(settings.data_dir)]
    if params.get("preset") is not None:
        return argv
    # Frequent enough for a lively progress bar and sample grid, whatever the length.
    steps = int(params["steps"])
    argv += ["--log-every", str(max(1, steps // 200))]
    argv += ["--sample-every", str(max(1, steps // 20))]
    argv += ["--checkpoint-every", str(max(1, steps // 10))]
    return argv + recipe_options(params)


def recipe_options(params: dict[str, Any]) -> list[str]:
    """Job parameters as training CLI options: ``--name value``, switches as ``--name`` or
    ``--no-name``; a parameter left unset (None) is not passed, except those whose null means
    "none" (NULL_MEANS_NONE). One AC-GAN weight replaces the schedule (the CLI takes one or the
    other)."""
    options: list[str] = []
    replaced = params.get("aux_classifier") is not None
    for name, value in params.items():
        if value is None and name in NULL_MEANS_NONE:
            value = "none"
        if value is None or (name == "aux_classifier_schedule" and replaced):
            continue
        option = name.replace("_", "-")
        if isinstance(value, bool):
            options.append(f"--{option}" if value else f"--no-{option}")
        else:
            options += [f"--{option}", str(value)]
    return options


def estimate_from_progress(
    params: dict[str, Any], job_id: str, progress: dict[str, Any]
) -> dict[str, Any]:
    """An estimate from the running job's own throughput."""
    rate = float(progress["images_per_s"])
    steps = int(params.get("steps") or progress.get("total_steps") or 0) or None
    batch = int(params.get("batch_size") or 64)
    seconds = None if steps is None else round(steps * batch / rate, 1)
    basis = f"measured by the running job {job_id}; evaluation not included"
    return {"seconds": seconds, "images_per_s": rate, "steps": steps, "basis": basis}


async def measure_speed(settings: Settings, params: dict[str, Any]) -> dict[str, Any]:
    """An estimate from real training steps timed now on this host (``training speed``)."""
    timed = {key: value for key, value in params.items() if key not in NOT_TIMED}
    options = [] if params.get("preset") else recipe_options(timed)
    argv = [*training_command(settings), "speed", "--seconds", str(ESTIMATE_SECONDS), *options]
    measured = await run_json(argv, ESTIMATE_TIMEOUT_S)
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


async def run_json(argv: list[str], timeout_s: float) -> dict[str, Any] | None:
    """Run ``argv`` and parse the last line of its output as a JSON object (None on failure).
    A run past ``timeout_s``, or one whose caller is cancelled (a client that left, a server
    that stops), is killed and reaped: no process outlives its request."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError as error:
        log.error("speed measurement failed: %s", error)
        return None
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        log.error("speed measurement took over %.0fs: killed", timeout_s)
        return None
    finally:
        if process.returncode is None:
            process.kill()
            await asyncio.shield(process.wait())
    lines = stdout.decode(errors="replace").strip().splitlines()
    parsed = parse_event(lines[-1]) if lines else None
    if process.returncode != 0 or parsed is None:
        log.error("speed measurement failed: %s", stderr.decode(errors="replace")[-500:])
        return None
    return parsed


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


def parse_event(line: str) -> dict[str, Any] | None:
    """A JSON-lines event of the training CLI, or None for any other output line."""
    if not line.startswith("{"):
        return None
    try:
        parsed = json.loads(line)
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None
