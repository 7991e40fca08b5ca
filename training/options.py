"""The command line's options: one parser per command, and the TrainConfig that ``train``'s ask for.

Every option of the recipe defaults to its TrainConfig field, so ``python -m training train
--data-dir D`` trains the shipped model's recipe, and so does any run that gives only ``--steps``
(a shorter one trains the recipe's first steps) or options that change where files go.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from gan.networks import NUM_CLASSES, DiscriminatorConfig, GeneratorConfig, Upsampling
from training.config import Loss, TrainConfig
from training.data import DATA_DIR_ENV
from training.schedule import StepSchedule


def at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def weight(text: str) -> float:
    """A loss weight: a finite number >= 0."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a finite number >= 0")
    return value


def schedule_text(text: str) -> str:
    """A schedule, checked and written back in its canonical form."""
    try:
        return str(StepSchedule.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 600, not {value}")
    return value


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default="model_store", help="model store directory")
    parser.add_argument(
        "--data-dir", default=None, help=f"MNIST IDX directory (or ${DATA_DIR_ENV})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gan-training", description=__doc__)
    add = parser.add_subparsers(dest="command", required=True).add_parser
    _train_options(add("train", help="train the conditional GAN and publish a version"))
    _speed_options(add("speed", help="measure training throughput on random data, as JSON"))
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
    train.add_argument(
        "--evaluate",
        action="store_true",
        help="evaluate the new version before publishing it, metrics in its manifest",
    )
    train.add_argument("--eval-per-digit", type=at_least(2), default=1000)
    train.add_argument(
        "--progress",
        choices=["auto", "bar", "jsonl", "none"],
        default="auto",
        help="auto: a bar on a terminal, JSON lines otherwise",
    )


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    """The objective and the optimiser; each defaults to its TrainConfig field."""
    parser.add_argument("--steps", type=at_least(1), default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=at_least(2), default=TrainConfig.batch_size)
    parser.add_argument("--loss", choices=get_args(Loss), default=TrainConfig.loss)
    parser.add_argument("--lr-g", type=float, default=TrainConfig.lr_g)
    parser.add_argument("--lr-d", type=float, default=TrainConfig.lr_d)
    parser.add_argument("--beta1", type=float, default=TrainConfig.beta1)
    parser.add_argument("--beta2", type=float, default=TrainConfig.beta2)
    parser.add_argument("--ema-decay", type=float, default=TrainConfig.ema_decay)
    parser.add_argument(
        "--mode-seeking",
        type=weight,
        default=TrainConfig.mode_seeking,
        help="weight of the mode-seeking regulariser (0: off)",
    )
    aux = parser.add_mutually_exclusive_group()
    aux.add_argument(
        "--aux-classifier-schedule",
        type=schedule_text,
        default=str(TrainConfig.aux_classifier_schedule),
        metavar="STEP:W,...",
        help="weight of the AC-GAN classification loss from each step on "
        "(default: the shipped recipe's, %(default)s)",
    )
    aux.add_argument(
        "--aux-classifier",
        type=weight,
        default=None,
        metavar="W",
        help="one AC-GAN weight for the whole run (0: off), i.e. --aux-classifier-schedule 0:W",
    )


def _architecture_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--latent-dim", type=int, default=GeneratorConfig.latent_dim)
    parser.add_argument("--embed-dim", type=int, default=GeneratorConfig.embed_dim)
    parser.add_argument("--g-channels", type=int, default=GeneratorConfig.channels)
    parser.add_argument(
        "--upsampling",
        choices=get_args(Upsampling),
        default=GeneratorConfig.upsampling,
        help="how the generator doubles resolution",
    )
    parser.add_argument(
        "--conditional-norm",
        action=argparse.BooleanOptionalAction,
        default=GeneratorConfig.conditional_norm,
        help="the digit scales and shifts every batch norm of the generator",
    )
    parser.add_argument("--d-channels", type=int, default=DiscriminatorConfig.channels)


def _run_options(train: argparse.ArgumentParser) -> None:
    """Seed, device, how often to checkpoint, sample and log, resuming."""
    train.add_argument("--seed", type=int, default=TrainConfig.seed)
    train.add_argument("--device", default=TrainConfig.device, help="auto, cpu, cuda, cuda:1 ...")
    train.add_argument("--checkpoint-every", type=at_least(1), default=TrainConfig.checkpoint_every)
    train.add_argument("--sample-every", type=at_least(1), default=TrainConfig.sample_every)
    train.add_argument("--log-every", type=at_least(1), default=TrainConfig.log_every)
    train.add_argument("--resume", action="store_true", help="continue from run-dir's checkpoint")
    train.add_argument("--limit-samples", type=int, default=None, help=argparse.SUPPRESS)


def _speed_options(speed: argparse.ArgumentParser) -> None:
    """The recipe and architecture options of ``train`` (the same defaults), and how long."""
    _recipe_options(speed)
    _architecture_options(speed)
    speed.add_argument("--seed", type=int, default=TrainConfig.seed)
    speed.add_argument("--device", default=TrainConfig.device, help="auto, cpu, cuda, cuda:1 ...")
    speed.add_argument(
        "--seconds", type=seconds, default=3.0, help="how long to time (after 3 warm-up steps)"
    )


def _classifier_options(classifier: argparse.ArgumentParser) -> None:
    _add_common(classifier)
    classifier.add_argument("--epochs", type=int, default=3)
    classifier.add_argument("--seed", type=int, default=0)
    classifier.add_argument("--limit-samples", type=int, default=None, help=argparse.SUPPRESS)


def _evaluate_options(evaluate: argparse.ArgumentParser) -> None:
    _add_common(evaluate)
    evaluate.add_argument("version")
    evaluate.add_argument("--per-digit", type=at_least(2), default=1000)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")


def _sample_options(sample: argparse.ArgumentParser) -> None:
    sample.add_argument("--store", default="model_store")
    sample.add_argument("--version", default=None, help="default: the active version")
    sample.add_argument("--digit", type=int, choices=range(NUM_CLASSES), default=None)
    sample.add_argument("--n", type=at_least(1), default=10)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", type=Path, required=True, help="FILE.png or FILE.npz")


def _activate_options(activate: argparse.ArgumentParser) -> None:
    activate.add_argument("--store", default="model_store")
    activate.add_argument("version")


def _download_options(fetch: argparse.ArgumentParser) -> None:
    fetch.add_argument("--data-dir", required=True)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run that ``train``'s options (or ``speed``'s, with the other fields left at their
    defaults) ask for."""
    run = {name: getattr(args, name) for name in _RUN_ARGUMENTS if hasattr(args, name)}
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        beta1=args.beta1,
        beta2=args.beta2,
        ema_decay=args.ema_decay,
        mode_seeking=args.mode_seeking,
        aux_classifier_schedule=aux_classifier_schedule(args),
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
        **run,
    )


_RUN_ARGUMENTS = (
    "data_dir", "store", "run_dir", "version", "parent", "checkpoint_every", "sample_every",
    "log_every", "resume", "limit_samples",
)  # fmt: skip


def aux_classifier_schedule(args: argparse.Namespace) -> StepSchedule:
    if args.aux_classifier is not None:
        return StepSchedule.constant(args.aux_classifier)
    return StepSchedule.parse(args.aux_classifier_schedule)
