"""Does the GAN's synthetic data help a classifier that has little real data?

Trains the project's small classifier (``gan.networks.Classifier``, the training loop of
``training.classifier``) on

  (a) a stratified sample of real MNIST training digits (1,000 by default),
  (b) those plus synthetic digits from the generator (the images ``POST /datasets`` serves),
  (c) the synthetic digits only,

each for the same number of optimiser steps and over several seeds, and prints the accuracy of
each on the real MNIST test set (10,000 digits) as a Markdown table::

    python -m training.augmentation_eval --data-dir ../shared/data/mnist --store model_store
    python -m training.augmentation_eval --quick      # a smoke run: tiny counts, minutes at most
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from dataclasses import dataclass

import torch

from gan.networks import NUM_CLASSES, Evaluator
from gan.store import ModelStore
from training.classifier import accuracy, fit_classifier
from training.data import Split, load_split
from training.evaluate import generate_per_digit

BATCH_SIZE = 128


@dataclass(frozen=True)
class Options:
    data_dir: str | None
    store: str
    version: str | None
    real: int
    synthetic_per_digit: int
    steps: int
    repeats: int
    seed: int
    synthetic_seed: int


def stratified_sample(split: Split, count: int, seed: int) -> Split:
    """``count`` digits, as equal a share of each class as possible, in a seeded random order."""
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    per_class = [count // NUM_CLASSES + (d < count % NUM_CLASSES) for d in range(NUM_CLASSES)]
    chosen: list[int] = []
    taken = [0] * NUM_CLASSES
    for index in order.tolist():
        digit = int(split.labels[index])
        if taken[digit] < per_class[digit]:
            chosen.append(index)
            taken[digit] += 1
            if len(chosen) == count:
                break
    picked = torch.tensor(sorted(chosen))
    return Split(split.images[picked], split.labels[picked])


def concat(a: Split, b: Split) -> Split:
    return Split(torch.cat([a.images, b.images]), torch.cat([a.labels, b.labels]))


def train_for_steps(train: Split, steps: int, seed: int) -> Evaluator:
    """The same optimiser budget whatever the data set's size: epochs = steps / batches."""
    batches = max(1, len(train) // BATCH_SIZE)
    return fit_classifier(
        train, epochs=math.ceil(steps / batches), batch_size=BATCH_SIZE, seed=seed
    )


def run(options: Options) -> str:
    store = ModelStore(options.store)
    version = options.version or store.active_version()
    generator = store.load_generator(version).model
    train, test = load_split(options.data_dir, "train"), load_split(options.data_dir, "test")
    real = stratified_sample(train, options.real, options.seed)
    synthetic = generate_per_digit(generator, options.synthetic_per_digit, options.synthetic_seed)
    synthetic = Split(synthetic.images, synthetic.labels.long())
    setups = [
        ("(a) real only", real, len(real), 0),
        ("(b) real + synthetic", concat(real, synthetic), len(real), len(synthetic)),
        ("(c) synthetic only", synthetic, 0, len(synthetic)),
    ]
    rows = []
    started = time.perf_counter()
    for name, data, n_real, n_synthetic in setups:
        scores = []
        for repeat in range(options.repeats):
            model = train_for_steps(data, options.steps, seed=options.seed + repeat)
            scores.append(accuracy(model, test))
        mean = statistics.fmean(scores)
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        each = ", ".join(f"{s:.4f}" for s in scores)
        rows.append(f"| {name} | {n_real} | {n_synthetic} | {mean:.4f} ± {spread:.4f} | {each} |")
    elapsed = time.perf_counter() - started
    return "\n".join(
        [
            f"Model version `{version}`; {options.steps} optimiser steps of batch {BATCH_SIZE} "
            f"per classifier, {options.repeats} seed(s) each; synthetic digits: "
            f"{options.synthetic_per_digit} per digit from seed {options.synthetic_seed}; "
            f"test set: {len(test)} real MNIST digits; {elapsed:.0f} s on "
            f"{torch.get_num_threads()} thread(s).",
            "",
            "| training data | real digits | synthetic digits | test accuracy (mean ± sd) "
            "| per seed |",
            "| --- | ---: | ---: | ---: | --- |",
            *rows,
        ]
    )


def parse_args(argv: list[str] | None = None) -> tuple[Options, int]:
    parser = argparse.ArgumentParser(
        prog="python -m training.augmentation_eval", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data-dir", default=None, help="MNIST IDX directory ($MNIST_DATA_DIR)")
    parser.add_argument("--store", default="model_store")
    parser.add_argument("--version", default=None, help="default: the active version")
    parser.add_argument("--real", type=int, default=1000, help="real training digits")
    parser.add_argument("--synthetic-per-digit", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=2000, help="optimiser steps per classifier")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per setup")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--synthetic-seed", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = default")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny counts")
    args = parser.parse_args(argv)
    if args.quick:
        args.real, args.synthetic_per_digit, args.steps, args.repeats = 100, 10, 30, 1
    options = Options(
        args.data_dir,
        args.store,
        args.version,
        args.real,
        args.synthetic_per_digit,
        args.steps,
        args.repeats,
        args.seed,
        args.synthetic_seed,
    )
    return options, args.threads


def main(argv: list[str] | None = None) -> None:
    options, threads = parse_args(argv)
    if threads:
        torch.set_num_threads(threads)
    print(run(options))


if __name__ == "__main__":
    main()
