"""In-process generator throughput: how many images per second the bare model can draw.

For each batch size it times, separately:

* ``forward``: the model's forward pass alone on ready-made latents (``torch.inference_mode``);
* ``latents``: ``gan.sampling.latents_for_seeds``, which the service runs for every request;
* ``end-to-end``: latents + forward + ``to_uint8`` -- exactly what the inference worker does for
  one batch (``gan.sampling.draw_uint8``), so it is the serving ceiling.

Examples::

    python benchmarks/generator_speed.py                       # active version of ./model_store
    python benchmarks/generator_speed.py --random-init --quick # no trained model needed
    python benchmarks/generator_speed.py --device cuda --dtype bfloat16 --json
    python benchmarks/generator_speed.py --device cuda --compile reduce-overhead  # + CUDA graphs
    python benchmarks/generator_speed.py --against mnist-cgan-v2 --batches 1,256  # side by side

``--against BASELINE`` times the version and the baseline in one process, alternating short
slices of forward passes (the first of each pair swaps every round), and prints each one's
median images/s and the ratio: a slowdown of the machine hits both sides of a pair alike, where
separate runs of the script differ by 20-50 % on a shared 2-core host.

The serving benchmark (``harness.runner``) imports :func:`prepare_model` and :func:`measure`
from here, so both benchmarks time the generator the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import torch

from gan.networks import Generator, GeneratorConfig
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore, VersionNotFound
from gan.testing import random_generator

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
DEFAULT_BATCHES = (1, 16, 64, 256)
# torch.compile modes: "default" (Inductor kernels), "reduce-overhead" (and CUDA graphs, on CUDA),
# "max-autotune" (and kernel autotuning: slow to compile).
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
Forward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class BatchResult:
    batch: int
    forward_ms: float  # one forward pass of the whole batch
    forward_images_per_s: float
    latents_ms: float  # latents_for_seeds for the whole batch
    latents_images_per_s: float
    end_to_end_ms: float  # latents + forward + to_uint8
    end_to_end_images_per_s: float
    first_call_ms: float | None = None  # the first forward pass at this batch (compiles, if any)


@dataclass(frozen=True)
class ModelUnderTest:
    label: str  # the store version, or "random-init"
    model: Generator
    device: torch.device
    dtype: torch.dtype
    compile_mode: str = "none"
    compiled: Forward | None = None  # torch.compile(model), when compile_mode is not "none"

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(z, labels) if self.compiled is None else self.compiled(z, labels)


def compile_model(mut: ModelUnderTest, mode: str) -> ModelUnderTest:
    """``mut`` with its forward pass through ``torch.compile`` (``mode`` from COMPILE_MODES;
    static shapes: each batch size compiles once, on its first call, which the warm-up absorbs
    and ``first_call_ms`` shows). "reduce-overhead" also captures CUDA graphs on CUDA."""
    if mode == "none":
        return mut
    if mode not in COMPILE_MODES:
        raise SystemExit(f"--compile: choose from {', '.join(COMPILE_MODES)}")
    # One graph per batch size: allow more than torch's default of 8 recompilations.
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
    compiled = torch.compile(mut.model, mode=None if mode == "default" else mode, dynamic=False)
    return dataclasses.replace(mut, compile_mode=mode, compiled=compiled)


def load_model(
    store: Path, version: str | None, random_init: bool, device: torch.device
) -> tuple[str, Generator]:
    """The generator to time: ``version`` (default: the active one) of ``store``, or an untrained
    ``Generator(GeneratorConfig())`` with ``random_init`` (same architecture, same speed)."""
    if random_init:
        return "random-init", random_generator(GeneratorConfig(), seed=0).to(device)
    model_store = ModelStore(store)
    try:
        chosen = version or model_store.active_version()
        model_store.manifest(chosen)
    except VersionNotFound as error:
        versions = ", ".join(m.version for m in model_store.versions()) or "none"
        raise SystemExit(
            f"{error} (the store has: {versions})\nPass --version NAME (or --against NAME), or "
            "--random-init to time an untrained generator of the default architecture."
        ) from error
    loaded = model_store.load_generator(chosen, device)
    return loaded.version, loaded.model


def prepare_model(
    store: Path, version: str | None, random_init: bool, device: str = "cpu", dtype: str = "float32"
) -> ModelUnderTest:
    torch_device = torch.device(device)
    if torch_device.type != "cuda" and dtype != "float32":
        raise SystemExit("--dtype bfloat16 is only supported with --device cuda (as in the app)")
    label, model = load_model(store, version, random_init, torch_device)
    return ModelUnderTest(label, model, torch_device, DTYPES[dtype])


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


T = TypeVar("T")

WARMUP_S = 1.0  # untimed seconds of forward passes before the first timing of a batch size


def time_call(
    fn: Callable[[], object], device: torch.device, *, warmup: int, min_time_s: float
) -> float:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then as many timed calls as fit in
    ``min_time_s`` (at least one)."""
    for _ in range(warmup):
        fn()
    _synchronize(device)
    calls = 0
    started = time.perf_counter()
    while True:
        fn()
        calls += 1
        _synchronize(device)
        elapsed = time.perf_counter() - started
        if elapsed >= min_time_s:
            return elapsed / calls


def measure_batch(
    mut: ModelUnderTest, batch: int, *, warmup: int = 3, min_time_s: float = 2.0
) -> BatchResult:
    device = mut.device
    latent_dim = mut.model.config.latent_dim
    seeds = list(range(batch))
    digits: list[int | None] = [None] * batch  # a random digit per seed, like /generate's default

    def autocast() -> torch.autocast:  # as the worker does: bfloat16 by autocast, on CUDA only
        return torch.autocast(device.type, dtype=mut.dtype, enabled=mut.dtype != torch.float32)

    z_cpu, labels_cpu = latents_for_seeds(seeds, latent_dim, digits)
    z, labels = z_cpu.to(device), labels_cpu.to(device)

    def forward() -> object:
        with torch.inference_mode(), autocast():
            return mut.forward(z, labels)

    def latents() -> object:
        return latents_for_seeds(seeds, latent_dim, digits)

    def end_to_end() -> object:  # mirrors gan.sampling.draw_uint8, the service's draw
        z_new, labels_new = latents_for_seeds(seeds, latent_dim, digits)
        with torch.inference_mode(), autocast():
            images = mut.forward(z_new.to(device), labels_new.to(device))
        return to_uint8(images).numpy(), labels_new.tolist()

    started = time.perf_counter()
    forward()
    _synchronize(device)
    first_call_s = time.perf_counter() - started
    # A fresh process draws ~25 % slower for its first second or so (measured on the 2-core
    # CPU: 2,100-2,300 images/s at batch 64 against 2,800-3,000 after), which a few warm-up
    # calls do not cover: warm up for a while too, or the ceiling is understated.
    time_call(forward, device, warmup=0, min_time_s=min(WARMUP_S, min_time_s))
    forward_s = time_call(forward, device, warmup=warmup, min_time_s=min_time_s)
    latents_s = time_call(latents, device, warmup=warmup, min_time_s=min_time_s)
    end_to_end_s = time_call(end_to_end, device, warmup=warmup, min_time_s=min_time_s)
    return BatchResult(
        batch=batch,
        forward_ms=forward_s * 1000,
        forward_images_per_s=batch / forward_s,
        latents_ms=latents_s * 1000,
        latents_images_per_s=batch / latents_s,
        end_to_end_ms=end_to_end_s * 1000,
        end_to_end_images_per_s=batch / end_to_end_s,
        first_call_ms=first_call_s * 1000,
    )


def in_worker_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a dedicated thread, as the service runs its model (in the inference worker's
    thread rather than the main thread); its exception re-raised here."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as error:  # re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="bench-generator")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def measure(
    mut: ModelUnderTest,
    batch: int,
    *,
    warmup: int = 3,
    min_time_s: float = 2.0,
    in_thread: bool = True,
) -> BatchResult:
    """:func:`measure_batch`, by default :func:`in_worker_thread`."""
    if not in_thread:
        return measure_batch(mut, batch, warmup=warmup, min_time_s=min_time_s)
    return in_worker_thread(lambda: measure_batch(mut, batch, warmup=warmup, min_time_s=min_time_s))


def forward_rate(mut: ModelUnderTest, batch: int, seconds: float) -> float:
    """Images per second of the forward pass alone, timed for ``seconds`` after one untimed call,
    :func:`in_worker_thread`: a short slice, for timings interleaved with something else."""
    z, labels = latents_for_seeds(list(range(batch)), mut.model.config.latent_dim, [None] * batch)
    z, labels = z.to(mut.device), labels.to(mut.device)

    def forward() -> object:
        with torch.inference_mode():
            return mut.forward(z, labels)

    return batch / in_worker_thread(
        lambda: time_call(forward, mut.device, warmup=1, min_time_s=seconds)
    )


@dataclass(frozen=True)
class Comparison:
    batch: int
    rounds: int
    images_per_s: float  # median over the rounds, the version under test
    baseline_images_per_s: float  # the same, the baseline
    ratio_median: float  # of the rounds' ratios: version / baseline
    ratio_min: float
    ratio_max: float


def compare(
    mut: ModelUnderTest, baseline: ModelUnderTest, batch: int, *, rounds: int, seconds: float
) -> Comparison:
    """Forward-pass rates of ``mut`` and ``baseline`` at ``batch``, in ``rounds`` pairs of
    ``seconds``-long slices, the pair's order swapping each round."""
    ours: list[float] = []
    theirs: list[float] = []
    pair = ((mut, ours), (baseline, theirs))
    for round_index in range(rounds):
        for model, rates in pair if round_index % 2 == 0 else reversed(pair):
            rates.append(forward_rate(model, batch, seconds))
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return Comparison(
        batch=batch,
        rounds=rounds,
        images_per_s=statistics.median(ours),
        baseline_images_per_s=statistics.median(theirs),
        ratio_median=statistics.median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
    )


def comparison_table(label: str, baseline: str, rows: Sequence[Comparison]) -> str:
    lines = [
        f"| batch | {label} img/s | {baseline} img/s | ratio (median) | ratio (min-max) | rounds |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.batch} | {r.images_per_s:,.0f} | {r.baseline_images_per_s:,.0f} "
            f"| {r.ratio_median:.2f} | {r.ratio_min:.2f}-{r.ratio_max:.2f} | {r.rounds} |"
        )
    return "\n".join(lines)


def environment(mut: ModelUnderTest) -> dict[str, object]:
    return {
        "model": mut.label,
        "parameters": mut.parameters,
        "architecture": mut.model.config.to_dict(),
        "device": str(mut.device),
        "dtype": str(mut.dtype).removeprefix("torch."),
        "compile": mut.compile_mode,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": _cpu_count(),
        # Other processes competing for the CPUs make every number here meaningless: check it.
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _cpu_count() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def markdown_table(results: Sequence[BatchResult]) -> str:
    lines = [
        "| batch | forward ms | forward img/s | latents ms | latents img/s "
        "| end-to-end ms | end-to-end img/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.batch} | {r.forward_ms:.3f} | {r.forward_images_per_s:,.0f} "
            f"| {r.latents_ms:.3f} | {r.latents_images_per_s:,.0f} "
            f"| {r.end_to_end_ms:.3f} | {r.end_to_end_images_per_s:,.0f} |"
        )
    return "\n".join(lines)


def positive_int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of integers: {text}"
        ) from error
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError("values must be positive integers")
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store")
    parser.add_argument("--version", help="version to load (default: the store's active one)")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="time an untrained Generator(GeneratorConfig()) instead of a stored version",
    )
    parser.add_argument("--batches", type=positive_int_list, default=list(DEFAULT_BATCHES))
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="none",
        help="time the forward pass through torch.compile in this mode (reduce-overhead: and "
        "CUDA graphs on CUDA); none = eager",
    )
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0 = torch's default)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before each timing")
    parser.add_argument(
        "--min-time", type=float, default=2.0, help="least timed wall seconds per measurement"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: --min-time 0.2 --warmup 1")
    parser.add_argument(
        "--main-thread",
        action="store_true",
        help="time in the main thread (default: a dedicated thread, like the service's worker)",
    )
    parser.add_argument(
        "--against",
        metavar="BASELINE",
        help="also time this version of the store side by side, in the same process, and print "
        "the ratio (forward pass, alternating slices)",
    )
    parser.add_argument(
        "--rounds", type=int, default=12, help="pairs of slices per batch size with --against"
    )
    parser.add_argument("--json", action="store_true", help="also print results as JSON")
    parser.add_argument("--json-out", type=Path, metavar="PATH", help="write results as JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.min_time, args.warmup = 0.2, 1
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    mut = prepare_model(args.store, args.version, args.random_init, args.device, args.dtype)
    mut = compile_model(mut, args.compile)
    baseline = None
    if args.against is not None:  # loaded before anything is timed: a bad name fails at once
        baseline = prepare_model(args.store, args.against, False, args.device, args.dtype)
        baseline = compile_model(baseline, args.compile)
    env = environment(mut)
    env["thread"] = "main" if args.main_thread else "worker"
    results = [
        measure(
            mut, batch, warmup=args.warmup, min_time_s=args.min_time, in_thread=not args.main_thread
        )
        for batch in args.batches
    ]
    print(
        f"Generator {env['model']}: {env['parameters']:,} parameters, "
        f"{env['device']} {env['dtype']}"
        f"{'' if mut.compile_mode == 'none' else ', torch.compile ' + mut.compile_mode}, "
        f"torch {env['torch']} "
        f"({env['torch_threads']} threads, {env['cpu_count']} CPUs, load average "
        f"{env['load_average_1m']}), {env['thread']} thread, "
        f"min {args.min_time:g} s per measurement\n"
    )
    print(markdown_table(results))
    document: dict[str, object] = {"environment": env, "results": [asdict(r) for r in results]}
    if baseline is not None:
        seconds = max(0.1, args.min_time / 4)
        rows = [
            compare(mut, baseline, batch, rounds=args.rounds, seconds=seconds)
            for batch in args.batches
        ]
        print(
            f"\nSide by side, forward pass: {args.rounds} alternating pairs of {seconds:g} s "
            f"slices per batch size\n"
        )
        print(comparison_table(mut.label, baseline.label, rows))
        document["against"] = {"baseline": baseline.label, "rows": [asdict(r) for r in rows]}
    if args.json:
        print(json.dumps(document, indent=2))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
