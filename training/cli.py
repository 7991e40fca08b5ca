"""Command line: ``python -m training COMMAND`` (or the ``gan-training`` console script)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch

from gan.imaging import encode_png, tile
from gan.networks import NUM_CLASSES, DiscriminatorConfig, GeneratorConfig, Upsampling
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore, StoreError
from training.config import Loss, TrainConfig
from training.data import DATA_DIR_ENV, DataError, download, load_split


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="model_store", help="model store directory")
    parser.add_argument(
        "--data-dir", default=None, help=f"MNIST IDX directory (or ${DATA_DIR_ENV})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-training", description=__doc__)
    add = parser.add_subparsers(dest="command", required=True).add_parser
    _train_options(add("train", help="train the conditional GAN and publish a version"))
    _classifier_options(add("train-classifier", help="train the evaluation classifier"))
    _evaluate_options(add("evaluate", help="score a version, write metrics to its manifest"))
    _sample_options(add("sample", help="write samples as a PNG grid or .npz archive"))
    _activate_options(add("activate", help="point the store at a version"))
    _download_options(add("download", help="download MNIST and verify its checksums"))
    return parser


def _train_options(train: argparse.ArgumentParser) -> None:
    _add_common(train)
    train.add_argument("--run-dir", default="runs/latest", help="checkpoints and sample grids")
    train.add_argument("--version", default=None, help="version name (default: timestamped)")
    train.add_argument("--parent", default=None, help="version this one was trained to replace")
    _recipe_options(train)
    _architecture_options(train)
    _run_options(train)
    train.add_argument("--activate", action="store_true", help="make the new version active")
    train.add_argument("--evaluate", action="store_true", help="evaluate the new version")
    train.add_argument("--eval-per-digit", type=_at_least(2), default=1000)
    train.add_argument(
        "--progress",
        choices=["auto", "bar", "jsonl", "none"],
        default="auto",
        help="auto: a bar on a terminal, JSON lines otherwise",
    )


def _recipe_options(train: argparse.ArgumentParser) -> None:
    """The objective and the optimiser; each defaults to its TrainConfig field."""
    train.add_argument("--steps", type=int, default=TrainConfig.steps)
    train.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    train.add_argument("--loss", choices=get_args(Loss), default=TrainConfig.loss)
    train.add_argument("--lr-g", type=float, default=TrainConfig.lr_g)
    train.add_argument("--lr-d", type=float, default=TrainConfig.lr_d)
    train.add_argument("--beta1", type=float, default=TrainConfig.beta1)
    train.add_argument("--beta2", type=float, default=TrainConfig.beta2)
    train.add_argument("--ema-decay", type=float, default=TrainConfig.ema_decay)
    train.add_argument(
        "--mode-seeking",
        type=float,
        default=TrainConfig.mode_seeking,
        help="weight of the mode-seeking regulariser (0: off)",
    )
    train.add_argument(
        "--aux-classifier",
        type=float,
        default=TrainConfig.aux_classifier,
        help="weight of the AC-GAN classification loss (0: off)",
    )


def _architecture_options(train: argparse.ArgumentParser) -> None:
    train.add_argument("--latent-dim", type=int, default=GeneratorConfig.latent_dim)
    train.add_argument("--embed-dim", type=int, default=GeneratorConfig.embed_dim)
    train.add_argument("--g-channels", type=int, default=GeneratorConfig.channels)
    train.add_argument(
        "--upsampling",
        choices=get_args(Upsampling),
        default=GeneratorConfig.upsampling,
        help="how the generator doubles resolution",
    )
    train.add_argument(
        "--conditional-norm",
        action=argparse.BooleanOptionalAction,
        default=GeneratorConfig.conditional_norm,
        help="the digit scales and shifts every batch norm of the generator",
    )
    train.add_argument("--d-channels", type=int, default=DiscriminatorConfig.channels)


def _run_options(train: argparse.ArgumentParser) -> None:
    """Seed, device, how often to checkpoint, sample and log, resuming."""
    train.add_argument("--seed", type=int, default=TrainConfig.seed)
    train.add_argument("--device", default=TrainConfig.device, help="auto, cpu, cuda, cuda:1 ...")
    train.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    train.add_argument("--sample-every", type=int, default=TrainConfig.sample_every)
    train.add_argument("--log-every", type=int, default=TrainConfig.log_every)
    train.add_argument("--resume", action="store_true", help="continue from run-dir's checkpoint")
    train.add_argument("--limit-samples", type=int, default=None, help=argparse.SUPPRESS)


def _classifier_options(classifier: argparse.ArgumentParser) -> None:
    _add_common(classifier)
    classifier.add_argument("--epochs", type=int, default=3)
    classifier.add_argument("--seed", type=int, default=0)
    classifier.add_argument("--limit-samples", type=int, default=None, help=argparse.SUPPRESS)


def _evaluate_options(evaluate: argparse.ArgumentParser) -> None:
    _add_common(evaluate)
    evaluate.add_argument("version")
    evaluate.add_argument("--per-digit", type=_at_least(2), default=1000)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _sample_options(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("--store", default="model_store")
    sample.add_argument("--version", default=None, help="default: the active version")
    sample.add_argument("--digit", type=int, choices=range(NUM_CLASSES), default=None)
    sample.add_argument("--n", type=_at_least(1), default=10)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.npz")


def _activate_options(activate: argparse.ArgumentParser) -> None:
    activate.add_argument("--store", default="model_store")
    activate.add_argument("version")


def _download_options(fetch: argparse.ArgumentParser) -> None:
    fetch.add_argument("--data-dir", required=True)


def run_train(args: argparse.Namespace) -> None:
    # Heavy imports only for this command.
    from training.checkpoint import CheckpointMismatch
    from training.train import train

    progress = args.progress
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "jsonl"
    try:
        version = train(train_config(args), progress)
    except CheckpointMismatch as error:
        raise SystemExit(f"error: {error}") from error
    if version is None:  # a non-zero torchrun rank
        return
    if args.evaluate:
        run_evaluate(args.store, args.data_dir, version, args.eval_per_digit, as_json=False)
    if args.activate:
        ModelStore(args.store).set_active(version)
    print(json.dumps({"event": "done", "version": version}), flush=True)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run the ``train`` command's options ask for."""
    return TrainConfig(
        data_dir=args.data_dir,
        store=args.store,
        run_dir=args.run_dir,
        version=args.version,
        parent=args.parent,
        steps=args.steps,
        batch_size=args.batch_size,
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        beta1=args.beta1,
        beta2=args.beta2,
        ema_decay=args.ema_decay,
        mode_seeking=args.mode_seeking,
        aux_classifier=args.aux_classifier,
        generator=GeneratorConfig(
            latent_dim=args.latent_dim,
            embed_dim=args.embed_dim,
            channels=args.g_channels,
            upsampling=args.upsampling,
            conditional_norm=args.conditional_norm,
        ),
        discriminator=DiscriminatorConfig(args.d_channels),
        seed=args.seed,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        sample_every=args.sample_every,
        log_every=args.log_every,
        resume=args.resume,
        limit_samples=args.limit_samples,
    )


def run_evaluate(
    store_dir: str, data_dir: str | None, version: str, per_digit: int, as_json: bool
) -> None:
    from training.evaluate import evaluate_samples, generate_per_digit, real_data_floor

    store = ModelStore(store_dir)
    loaded = store.load_generator(version)
    classifier = store.load_classifier()
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    fake = generate_per_digit(loaded.model, per_digit)
    metrics: dict[str, Any] = evaluate_samples(classifier, fake, test)
    metrics["fid_real_floor"] = real_data_floor(classifier, train, test, len(fake))
    metrics["classifier_sha256"] = store.classifier_manifest().weights_sha256
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args)
        elif args.command == "train-classifier":
            from training.classifier import train_classifier

            metrics = train_classifier(
                args.data_dir,
                args.store,
                epochs=args.epochs,
                seed=args.seed,
                limit_samples=args.limit_samples,
            )
            print(json.dumps(metrics))
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
