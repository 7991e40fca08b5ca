"""How well does GAN inversion restore damaged digits?

Takes MNIST test digits (1,000 by default, a seeded sample), damages each in two ways (half of the
image erased, a random side per digit; 30% of the pixels dropped at random), and compares three
ways of handling the damage:

- the damaged image as is (erased pixels black),
- nearest-neighbour fill (each erased pixel takes the value of the closest undamaged one),
- GAN restoration (``gan.restoration``, digit not given, the service's default steps/restarts).

For each it reports the accuracy of the project's classifier (``model_store/classifier``) on the
result and the RMS error on the erased pixels (in [0, 1] intensity units), plus the digit the
inversion itself inferred and the latency of one restoration as the service runs it (one image
per call). Prints Markdown tables::

    python -m training.restoration_eval --data-dir ../shared/data/mnist --store model_store
    python -m training.restoration_eval --quick      # a smoke run: a few digits, few steps
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

from gan.networks import Evaluator
from gan.restoration import DEFAULT_RESTARTS, DEFAULT_STEPS, restore, restore_batch
from gan.store import ModelStore
from training.data import Split, load_split
from training.evaluate import classify

SIDE = 28


@dataclass(frozen=True)
class Options:
    data_dir: str | None
    store: str
    version: str | None
    count: int
    steps: int
    restarts: int
    batch: int
    seed: int
    latency_samples: int


def half_masks(count: int, rng: torch.Generator) -> torch.Tensor:
    """(count, 28, 28) bool: one half (top, bottom, left or right, at random) erased."""
    masks = torch.zeros(count, SIDE, SIDE, dtype=torch.bool)
    for i, side in enumerate(torch.randint(4, (count,), generator=rng).tolist()):
        if side == 0:
            masks[i, : SIDE // 2] = True
        elif side == 1:
            masks[i, SIDE // 2 :] = True
        elif side == 2:
            masks[i, :, : SIDE // 2] = True
        else:
            masks[i, :, SIDE // 2 :] = True
    return masks


def drop_masks(count: int, rate: float, rng: torch.Generator) -> torch.Tensor:
    return torch.rand(count, SIDE, SIDE, generator=rng) < rate


def nearest_fill(images: torch.Tensor, missing: torch.Tensor) -> torch.Tensor:
    """Each missing pixel takes the value of the nearest (Euclidean) known pixel."""
    rows, cols = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], dim=1).float()
    filled = images.clone()
    for i in range(len(images)):
        flat_missing = missing[i].flatten()
        known = coords[~flat_missing]
        if not bool(flat_missing.any()) or len(known) == 0:
            continue
        nearest = torch.cdist(coords[flat_missing], known).argmin(dim=1)
        values = images[i].flatten()[~flat_missing][nearest]
        flat = filled[i].flatten()
        flat[flat_missing] = values
        filled[i] = flat.view(SIDE, SIDE)
    return filled


def masked_rmse(result: torch.Tensor, original: torch.Tensor, missing: torch.Tensor) -> float:
    difference = (result.double() - original.double()) / 255.0
    return float((difference.square() * missing).sum().div(missing.sum()).sqrt())


def evaluate_damage(
    name: str,
    generator: torch.nn.Module,
    classifier: Evaluator,
    digits: Split,
    missing: torch.Tensor,
    options: Options,
) -> tuple[list[str], float]:
    damaged = torch.where(missing, torch.zeros_like(digits.images), digits.images)
    restored, inferred = [], []
    started = time.perf_counter()
    for start in range(0, len(digits), options.batch):
        stop = start + options.batch
        results = restore_batch(
            generator,
            damaged[start:stop],
            missing[start:stop],
            steps=options.steps,
            restarts=options.restarts,
            seed=options.seed + start,
        )
        restored += [r.image for r in results]
        inferred += [r.digit for r in results]
    per_image = (time.perf_counter() - started) / len(digits)
    outputs = {
        "damaged as is": damaged,
        "nearest-neighbour fill": nearest_fill(damaged, missing),
        "GAN restoration": torch.stack(restored),
    }
    rows = []
    for method, images in outputs.items():
        _, predictions = classify(classifier, images)
        correct = float((predictions == digits.labels).double().mean())
        inferred_accuracy = (
            f"{float((torch.tensor(inferred) == digits.labels).double().mean()):.3f}"
            if method == "GAN restoration"
            else "-"
        )
        error = masked_rmse(images, digits.images, missing)
        rows.append(f"| {name} | {method} | {correct:.3f} | {error:.3f} | {inferred_accuracy} |")
    return rows, per_image


def latency(
    generator: torch.nn.Module, digits: Split, missing: torch.Tensor, options: Options
) -> list[float]:
    """Seconds per restoration as the service runs it: one image, digit unknown."""
    damaged = torch.where(missing, torch.zeros_like(digits.images), digits.images)
    times = []
    for i in range(min(options.latency_samples, len(digits))):
        started = time.perf_counter()
        restore(generator, damaged[i], missing[i], steps=options.steps, restarts=options.restarts)
        times.append(time.perf_counter() - started)
    return times


def run(options: Options) -> str:
    store = ModelStore(options.store)
    version = options.version or store.active_version()
    generator = store.load_generator(version).model
    classifier = store.load_classifier()
    test = load_split(options.data_dir, "test")
    rng = torch.Generator().manual_seed(options.seed)
    picked = torch.randperm(len(test), generator=rng)[: options.count]
    digits = Split(test.images[picked], test.labels[picked])
    _, clean_predictions = classify(classifier, digits.images)
    clean = float((clean_predictions == digits.labels).double().mean())
    damages = {
        "half erased": half_masks(len(digits), rng),
        "30% pixels dropped": drop_masks(len(digits), 0.3, rng),
    }
    rows, throughput = [], []
    for name, missing in damages.items():
        damage_rows, per_image = evaluate_damage(
            name, generator, classifier, digits, missing, options
        )
        rows += damage_rows
        throughput.append(
            f"{name}: {per_image * 1000:.0f} ms per digit in batches of {options.batch}"
        )
    times = latency(generator, digits, damages["half erased"], options)
    return "\n".join(
        [
            f"Model version `{version}`; {len(digits)} MNIST test digits (seed {options.seed}); "
            f"restoration: {options.steps} steps, {options.restarts} restarts per digit, digit "
            f"not given; classifier accuracy on the undamaged digits: {clean:.3f}.",
            "",
            "| damage | method | classifier accuracy | RMS error on erased pixels "
            "| digit inferred by the inversion |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
            "",
            f"Latency of one restoration (one image per call, as `POST /restore` runs it, "
            f"{torch.get_num_threads()} torch thread(s), {len(times)} digits): mean "
            f"{statistics.fmean(times) * 1000:.0f} ms, median "
            f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms. "
            f"Batched evaluation: {'; '.join(throughput)}.",
        ]
    )


def parse_args(argv: list[str] | None = None) -> tuple[Options, int]:
    parser = argparse.ArgumentParser(
        prog="python -m training.restoration_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data-dir", default=None, help="MNIST IDX directory ($MNIST_DATA_DIR)")
    parser.add_argument("--store", default="model_store")
    parser.add_argument("--version", default=None, help="default: the active version")
    parser.add_argument("--count", type=int, default=1000, help="test digits")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--restarts", type=int, default=DEFAULT_RESTARTS)
    parser.add_argument("--batch", type=int, default=25, help="digits restored per batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-samples", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    args = parser.parse_args(argv)
    if args.quick:
        args.count, args.steps, args.restarts, args.batch = 10, 8, 2, 10
        args.latency_samples = 3
    options = Options(
        args.data_dir,
        args.store,
        args.version,
        args.count,
        args.steps,
        args.restarts,
        args.batch,
        args.seed,
        args.latency_samples,
    )
    return options, args.threads


def main(argv: list[str] | None = None) -> None:
    options, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    print(run(options))


if __name__ == "__main__":
    main()
