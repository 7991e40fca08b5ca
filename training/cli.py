"""Command line: ``python -m training COMMAND`` (or the ``gan-training`` console script).

The options are in ``training.options``; this module runs the commands. ``train`` prints JSON lines
(with ``--progress jsonl``): ``{"event": "phase", "phase": "training"}`` first, progress lines,
``"evaluating"`` (with ``--evaluate``), ``"publishing"``, then ``{"event": "exported", ...}`` and
``{"event": "done", "version": ...}``. ``speed`` prints one JSON line (``training.speed``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import numpy as np
import torch

from gan.imaging import encode_png, tile
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore, StoreError
from training.data import DataError, download
from training.options import build_parser, train_config

__all__ = ["build_parser", "main", "train_config"]


def run_train(args: argparse.Namespace) -> None:
    # Heavy imports only for this command.
    from training.checkpoint import CheckpointMismatch
    from training.train import train

    progress = args.progress
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "jsonl"
    per_digit = args.eval_per_digit if args.evaluate else None
    try:
        with sigterm_as_exit():
            version = train(train_config(args), progress, evaluate_per_digit=per_digit)
    except CheckpointMismatch as error:
        raise SystemExit(f"error: {error}") from error
    if version is None:  # a non-zero torchrun rank
        return
    if args.activate:
        ModelStore(args.store).set_active(version)
    print(json.dumps({"event": "done", "version": version}), flush=True)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (a cancelled job) unwinds like an exception, so that a staged version is removed
    on the way out; SIGKILL cannot be caught, and the next publish removes what it left."""

    def exit_now(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():  # only there can it be set
        yield
        return
    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_speed(args: argparse.Namespace) -> None:
    from training.speed import measure

    print(json.dumps(measure(train_config(args), args.seconds)), flush=True)


def run_evaluate(
    store_dir: str, data_dir: str | None, version: str, per_digit: int, as_json: bool
) -> None:
    from training.evaluate import score

    store = ModelStore(store_dir)
    metrics: dict[str, Any] = score(store.load_generator(version).model, store, data_dir, per_digit)
    store.update_metrics(version, metrics)
    if as_json:
        print(json.dumps(metrics))
        return
    print(f"{'metric':<24}{'value':>12}")
    for key, value in metrics.items():
        print(
            f"{key:<24}{value:>12.4f}" if isinstance(value, float) else f"{key:<24}{value!s:>12.12}"
        )


def run_sample(args: argparse.Namespace) -> None:
    store = ModelStore(args.store)
    loaded = store.load_generator(args.version or store.active_version())
    seeds = list(range(args.seed, args.seed + args.n))
    z, labels = latents_for_seeds(seeds, loaded.model.config.latent_dim, [args.digit] * args.n)
    with torch.inference_mode():
        images = to_uint8(loaded.model(z, labels)).numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npz":
        np.savez_compressed(
            args.out,
            images=images,
            labels=labels.numpy().astype(np.uint8),
            seeds=np.array(seeds),
            version=loaded.version,
        )
    elif args.out.suffix == ".png":
        provenance = {"model_version": loaded.version, "seed": str(args.seed)}
        args.out.write_bytes(encode_png(tile(images, columns=min(args.n, 10)), provenance))
    else:
        raise SystemExit(f"--out must end in .png or .npz, not {args.out.suffix!r}")
    print(f"wrote {args.n} samples of version {loaded.version} to {args.out}")


def run_train_classifier(args: argparse.Namespace) -> None:
    from training.classifier import train_classifier

    metrics = train_classifier(
        args.data_dir,
        args.store,
        epochs=args.epochs,
        seed=args.seed,
        limit_samples=args.limit_samples,
    )
    print(json.dumps(metrics))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args)
        elif args.command == "speed":
            run_speed(args)
        elif args.command == "train-classifier":
            run_train_classifier(args)
        elif args.command == "evaluate":
            run_evaluate(args.store, args.data_dir, args.version, args.per_digit, args.json)
        elif args.command == "sample":
            run_sample(args)
        elif args.command == "activate":
            ModelStore(args.store).set_active(args.version)
            print(f"active version: {args.version}")
        elif args.command == "download":
            for path in download(args.data_dir):
                print(f"verified {path}")
    except (DataError, StoreError) as error:
        raise SystemExit(f"error: {error}") from error
