"""The GPU check: on a machine with CUDA, every GPU-side measurement of the project in one go
(~5 minutes), written as ONE JSON document (default ``benchmarks/results-gpu.json``).

Stages, each a subprocess with its own time limit, inside an overall budget (``--budget``); a stage
that fails is recorded with its output's tail and the others still run:

1. ``tests``: ``pytest -m cuda`` (``tests/gan/test_cuda.py``: the generator on CUDA against the CPU,
   bf16 against float32, a bf16 training step);
2. ``generator``: ``benchmarks/generator_speed.py`` at batches 1,16,256,1024,4096,16384, float32
   and bfloat16 (autocast), eager and ``--compile reduce-overhead`` (torch.compile with CUDA
   graphs, timed in the main thread); the compiled runs go last, since compiling takes longest;
3. ``serving``: ``benchmarks/serving.py --device cuda --scenarios n256 --modes on`` (n=256 base64
   requests against ``python -m app`` with ``GAN_DEVICE=cuda``), float32 and bfloat16, short;
4. ``training``: ``python -m training train`` on the committed MNIST fixture
   (``tests/fixtures/mnist``, 200 digits: nothing is downloaded) with ``--device cuda --steps
   200`` (training autocasts to bfloat16 on CUDA: ``training/train.py``), and ``python -m
   training speed`` on the same device.

Without CUDA it exits with code 2 and says so. ``--device cpu`` (``GPU_CHECK_DEVICE=cpu
benchmarks/gpu_check.sh``) is the dry run: every stage, tiny, on the CPU (float32 only, since
bfloat16 is CUDA-only here; ``--compile default`` instead of CUDA graphs), so that the script can
be tested where there is no GPU. Its JSON goes to ``build/gpu-check-dry.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
GPU_BATCHES = "1,16,256,1024,4096,16384"
DRY_BATCHES = "1,16"
NO_CUDA_EXIT = 2


@dataclass
class Plan:
    """What each stage runs: the real check on CUDA, or tiny on the CPU (dry run)."""

    device: str
    dry: bool
    batches: str
    dtypes: list[str]
    compile_mode: str
    min_time_s: float
    warmup: int
    serving_duration_s: float
    serving_concurrency: str
    train_steps: int
    train_batch_size: int | None
    speed_seconds: float
    skipped: dict[str, str] = field(default_factory=dict)  # stage -> why it does not run


def make_plan(args: argparse.Namespace) -> Plan:
    if args.device == "cpu":
        return Plan(
            device="cpu",
            dry=True,
            batches=args.batches or DRY_BATCHES,
            dtypes=["float32"],
            compile_mode="default",
            min_time_s=args.min_time if args.min_time is not None else 0.1,
            warmup=1,
            serving_duration_s=args.serving_duration or 1.0,
            serving_concurrency="1",
            train_steps=args.train_steps or 4,
            train_batch_size=16,
            speed_seconds=1.0,
            skipped={"bfloat16": "bfloat16 is CUDA-only here (generator_speed, the app)"},
        )
    return Plan(
        device=args.device,
        dry=False,
        batches=args.batches or GPU_BATCHES,
        dtypes=["float32", "bfloat16"],
        compile_mode="reduce-overhead",
        min_time_s=args.min_time if args.min_time is not None else 0.5,
        warmup=3,
        serving_duration_s=args.serving_duration or 5.0,
        serving_concurrency="1,8",
        train_steps=args.train_steps or 200,
        train_batch_size=None,  # the recipe's
        speed_seconds=3.0,
    )


# ----- running stages -------------------------------------------------------------------------
class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def say(text: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_stage(
    name: str, command: list[str], limit_s: float, budget: Budget, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``command`` from the repository root within ``limit_s`` (and what is left of the
    budget); its exit code, wall time and the tail of its output."""
    timeout = min(limit_s, budget.left())
    record: dict[str, Any] = {"stage": name, "command": " ".join(command)}
    if timeout < 5:
        record.update(status="skipped", reason="the overall budget is spent")
        say(f"{name}: skipped (budget spent)")
        return record
    say(f"{name}: {' '.join(command)} (limit {timeout:.0f} s)")
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        output = _text(error.stdout) + _text(error.stderr)
        record.update(status="timeout", wall_s=time.monotonic() - started, tail=_tail(output))
        say(f"{name}: TIMEOUT after {timeout:.0f} s")
        return record
    record.update(
        status="ok" if done.returncode == 0 else "failed",
        exit_code=done.returncode,
        wall_s=time.monotonic() - started,
        stdout=done.stdout,
        tail=_tail(done.stdout + done.stderr),
    )
    say(f"{name}: {record['status']} in {record['wall_s']:.1f} s")
    return record


def _text(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ----- the stages -----------------------------------------------------------------------------
def stage_tests(python: str, budget: Budget) -> dict[str, Any]:
    """The tests marked ``cuda`` (tests/gan/test_cuda.py), which skip without a device."""
    record = run_stage("tests", [python, "-m", "pytest", "-q", "-m", "cuda"], 120, budget)
    if record.get("exit_code") == 5:  # pytest: no tests collected
        record.update(status="skipped", reason="pytest collected no CUDA test")
    record.pop("stdout", None)
    return record


def stage_generator(
    python: str, plan: Plan, dtype: str, compile_mode: str, budget: Budget, workdir: Path
) -> dict[str, Any]:
    out = workdir / f"generator-{dtype}-{compile_mode}.json"
    command = [
        python, "benchmarks/generator_speed.py", "--device", plan.device, "--dtype", dtype,
        "--compile", compile_mode, "--batches", plan.batches, "--min-time", str(plan.min_time_s),
        "--warmup", str(plan.warmup), "--json-out", str(out),
    ]  # fmt: skip
    if compile_mode != "none":
        # Compile and replay CUDA graphs in the main thread: torch.compile's CUDA graph trees
        # keep per-thread state, and the GPU does not care which host thread launches.
        command.append("--main-thread")
    limit = 150 if compile_mode != "none" else 90
    record = run_stage(f"generator {dtype} compile={compile_mode}", command, limit, budget)
    record.update(dtype=dtype, compile=compile_mode, results=_json_file(out))
    record["table"] = record.pop("stdout", "")
    return record


def stage_serving(
    python: str, plan: Plan, dtype: str, budget: Budget, workdir: Path
) -> dict[str, Any]:
    out = workdir / f"serving-{dtype}.json"
    command = [
        python, "benchmarks/serving.py", "--device", plan.device, "--dtype", dtype,
        "--scenarios", "n256", "--modes", "on", "--concurrency", plan.serving_concurrency,
        "--duration", str(plan.serving_duration_s), "--raw-min-time", str(plan.min_time_s),
        "--client", "wrk" if shutil.which("wrk") else "httpx", "--json", str(out),
    ]  # fmt: skip
    record = run_stage(f"serving n256 {dtype}", command, 120, budget)
    results = _json_file(out)
    record.update(dtype=dtype, rows=results.get("rows") if results else None)
    if results:
        record["servers"] = results.get("servers")
        record["raw_generator_batch64"] = results.get("raw_generator_batch64")
    record["table"] = record.pop("stdout", "")
    return record


def stage_training(python: str, plan: Plan, budget: Budget, workdir: Path) -> dict[str, Any]:
    command = [
        python, "-m", "training", "train", "--data-dir", "tests/fixtures/mnist",
        "--device", plan.device, "--steps", str(plan.train_steps),
        "--store", str(workdir / "train-store"), "--run-dir", str(workdir / "train-run"),
        "--version", "gpu-check", "--progress", "jsonl",
        "--checkpoint-every", str(plan.train_steps), "--sample-every", str(plan.train_steps),
        "--log-every", str(max(1, plan.train_steps // 4)),
    ]  # fmt: skip
    if plan.train_batch_size is not None:
        command += ["--batch-size", str(plan.train_batch_size)]
    record = run_stage("training", command, 150, budget)
    events = _json_lines(record.pop("stdout", ""))
    progress = [event for event in events if event.get("event") == "progress"]
    record.update(
        steps=plan.train_steps,
        data="tests/fixtures/mnist (200 training digits)",
        autocast="bfloat16 on CUDA (training/train.py), none on the CPU",
        progress=progress,
        last_images_per_s=progress[-1].get("images_per_s") if progress else None,
        exported=next((e.get("version") for e in events if e.get("event") == "exported"), None),
    )
    speed_command = [
        python, "-m", "training", "speed", "--device", plan.device,
        "--seconds", str(plan.speed_seconds),
    ]  # fmt: skip
    if plan.train_batch_size is not None:
        speed_command += ["--batch-size", str(plan.train_batch_size)]
    speed = run_stage("training speed", speed_command, 60, budget)
    lines = _json_lines(speed.pop("stdout", ""))
    speed["result"] = lines[-1] if lines else None
    record["speed"] = speed
    if speed["status"] not in ("ok", "skipped") and record["status"] == "ok":
        record["status"] = "failed"
    return record


def _json_lines(text: str) -> list[dict[str, Any]]:
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict):
                events.append(value)
    return events


# ----- the device -----------------------------------------------------------------------------
def device_info(device: str) -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
    }
    if device != "cpu" and torch.cuda.is_available():
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        info.update(
            name=props.name,
            capability=f"{props.major}.{props.minor}",
            memory_gib=props.total_memory / 2**30,
            multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    if shutil.which("nvidia-smi"):
        query = "name,driver_version,memory.total,power.limit,clocks.max.sm"
        done = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
        )
        info["nvidia_smi"] = done.stdout.strip() or done.stderr.strip()
    return info


def no_cuda_message(device: str) -> str | None:
    """Why ``device`` cannot be used, or None when it can (always None for the CPU)."""
    if device == "cpu":
        return None
    import torch

    if torch.cuda.is_available():
        return None
    build = (
        f"a CPU build ({torch.__version__})"
        if torch.version.cuda is None
        else f"built for CUDA {torch.version.cuda}"
    )
    return (
        f"gpu_check: no CUDA device: torch.cuda.is_available() is False (torch is {build}; "
        f"nvidia-smi {'found' if shutil.which('nvidia-smi') else 'not found'}). Run it on a "
        "machine with a GPU and a CUDA build of torch, or GPU_CHECK_DEVICE=cpu "
        "benchmarks/gpu_check.sh for the CPU dry run."
    )


# ----- the whole check ------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--device", default=os.environ.get("GPU_CHECK_DEVICE", "cuda"), help="cuda, cuda:N or cpu")
    add("--out", type=Path, default=None, help="the JSON (default benchmarks/results-gpu.json)")
    add("--budget", type=float, default=330.0, help="seconds for every stage together")
    add("--batches", default=None, help=f"generator batches (default {GPU_BATCHES})")
    add("--min-time", type=float, default=None, help="generator timed seconds per measurement")
    add("--serving-duration", type=float, default=None, help="seconds per serving row (5)")
    add("--train-steps", type=int, default=None, help="training steps (200)")
    add(
        "--stages",
        default="tests,generator,serving,training",
        help="comma-separated subset of tests,generator,serving,training",
    )
    add("--python", default=sys.executable, help="the interpreter the stages run with")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    problem = no_cuda_message(args.device)
    if problem is not None:
        print(problem, file=sys.stderr)
        return NO_CUDA_EXIT
    plan = make_plan(args)
    stages = {part.strip() for part in args.stages.split(",") if part.strip()}
    out = args.out or (
        REPO_ROOT / "build" / "gpu-check-dry.json"
        if plan.dry
        else REPO_ROOT / "benchmarks" / "results-gpu.json"
    )
    budget = Budget(args.budget)
    started = time.monotonic()
    from serving_peers import machine  # the same machine description as the peers benchmark

    document: dict[str, Any] = {
        "kind": "gpu-check dry run on the CPU" if plan.dry else "gpu-check",
        "machine": machine(0),
        "device": device_info(plan.device),
        "plan": plan.__dict__,
        "stages": [],
    }
    python = args.python
    with tempfile.TemporaryDirectory(prefix="gan-gpu-check-") as tmp:
        workdir = Path(tmp)
        records: list[dict[str, Any]] = document["stages"]
        if "tests" in stages:
            records.append(stage_tests(python, budget))
        if "generator" in stages:
            for dtype in plan.dtypes:
                records.append(stage_generator(python, plan, dtype, "none", budget, workdir))
        if "serving" in stages:
            for dtype in plan.dtypes:
                records.append(stage_serving(python, plan, dtype, budget, workdir))
        if "training" in stages:
            records.append(stage_training(python, plan, budget, workdir))
        if "generator" in stages:  # compiling takes the longest: last
            for dtype in plan.dtypes:
                records.append(
                    stage_generator(python, plan, dtype, plan.compile_mode, budget, workdir)
                )
    failed = [r["stage"] for r in records if r["status"] in ("failed", "timeout")]
    document["wall_s"] = time.monotonic() - started
    document["summary"] = {
        "stages": {r["stage"]: r["status"] for r in records},
        "failed": failed,
        "generator_best_images_per_s": {
            r["stage"]: max((x["forward_images_per_s"] for x in r["results"]["results"]), default=0)
            for r in records
            if r["stage"].startswith("generator") and r.get("results")
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    for name, status in document["summary"]["stages"].items():
        print(f"{status:>8}  {name}")
    print(f"wrote {out} in {document['wall_s']:.0f} s" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
