"""The command line's options: one parser per command (``training.cli`` runs them).

Every option of the recipe defaults to its TrainConfig field, so ``python -m training train
--data-dir D`` trains the shipped model's recipe, and so does any run that gives only ``--steps``
(a shorter one trains the recipe's first steps) or options that change where files go
(``training.cli.train_config`` makes the TrainConfig). The help is plain text, and every option's
ends with its default (``HelpFormatter``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from gan.networks import NUM_CLASSES, Upsampling
from gan.store import CLASSIFIER_DIR, EVALUATOR_ARCHITECTURES
from training.augment import parse_policy
from training.config import Loss, Precision, TrainConfig
from training.data import DATA_DIR_ENV
from training.schedule import StepSchedule

Group = argparse.ArgumentParser | argparse._ArgumentGroup


def at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


def step_or_none(text: str) -> int | None:
    """A step number >= 0, or ``none``."""
    return None if text.strip().lower() == "none" else at_least(0)(text)


def weight(text: str) -> float:
    """A loss weight: a finite number >= 0."""
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{value} is not a finite number >= 0")
    return value


def restarts_text(text: str) -> str:
    """Increasing steps >= 1, comma-separated, or ``none``; written back in canonical form."""
    if text.strip().lower() == "none":
        return "none"
    steps = [at_least(1)(part) for part in text.split(",")]
    if steps != sorted(set(steps)):
        raise argparse.ArgumentTypeError(f"restart steps must increase, not {text!r}")
    return ",".join(str(step) for step in steps)


def parse_restarts(text: str) -> tuple[int, ...]:
    return () if text == "none" else tuple(int(part) for part in text.split(","))


def schedule_text(text: str) -> str:
    """A schedule, checked and written back in its canonical form."""
    try:
        return str(StepSchedule.parse(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def policy_text(text: str) -> str:
    """An augmentation policy, checked and written back as its canonical string."""
    try:
        return ",".join(parse_policy(text)) or "none"
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def truncation(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {value}")
    return value


def seed_list(text: str) -> tuple[int, ...]:
    """Distinct seeds >= 0, comma-separated: 0,100000,200000."""
    seeds = tuple(at_least(0)(part) for part in text.split(","))
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"the seeds must be distinct, not {text!r}")
    return seeds


def seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 600, not {value}")
    return value


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Every option's help ends with its default, except a flag's (off unless given) and a None
    one's: the help of an option whose default is None says in words what that default means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


DESCRIPTION = (
    "Train, evaluate, sample and activate versions of the conditional MNIST GAN in a model store."
    " First get MNIST: python -m training download --data-dir data/mnist. Then train the shipped"
    " recipe: python -m training train --data-dir data/mnist. COMMAND --help lists its options."
)
# Each command: its line in the list of commands, then what its --help adds to that line.
COMMANDS = {
    "train": (
        "train the GAN and publish its EMA generator as a new version",
        "The recipe and network options default to the shipped model's (mnist-cgan-v6: 46,000"
        " steps, 1.5 to 3 hours on 2 CPU cores with bfloat16). --progress jsonl prints JSON"
        " lines: the phases (training, evaluating, publishing), the progress, then the exported"
        " version.",
    ),
    "speed": (
        "measure training throughput on random data, as one JSON line",
        "It times train's networks, losses, optimisers and device; needs no data, writes nothing.",
    ),
    "train-classifier": (
        "train one of evaluate's evaluators into the store",
        "--evaluator classifier (the default) trains the project's classifier, whose scores every"
        " manifest records; --evaluator judge the independent judge, another architecture (train"
        " it from another --seed), which evaluate --evaluator judge scores with.",
    ),
    "evaluate": (
        "score a version, write the metrics into its manifest",
        "The store's classifier judges: conditional accuracy, FID, precision, recall, diversity."
        " With --evaluator judge the independent judge does, and the scores are printed only.",
    ),
    "reference": (
        "score real training digits as evaluate scores samples: the numbers to state beside them",
        "N training digits of each digit (drawn by --seed) against the test digits, every metric"
        " of evaluate: what a perfect generator would reach, by the chosen evaluator. Writes"
        " nothing.",
    ),
    "compare": (
        "score two versions side by side on the same seed sets, by each evaluator",
        "Every headline metric (accuracy, the worst digit's accuracy, FID, precision, recall,"
        " diversity) of both versions on each seed set, as evaluate --seed scores them, and on"
        " how many sets the candidate is better: a Markdown table, or JSON. Writes nothing.",
    ),
    "sample": (
        "write samples of a version as a PNG grid or an .npz archive",
        "Sample i is drawn from seed SEED + i, as the service draws it.",
    ),
    "activate": ("make a version the store's active one", ""),
    "download": ("download MNIST and verify its checksums", "Files already there are not fetched."),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gan-training", description=DESCRIPTION, formatter_class=HelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, more) in COMMANDS.items():
        description = f"{summary[0].upper()}{summary[1:]}. {more}".strip()
        command = commands.add_parser(
            name, help=summary, description=description, formatter_class=HelpFormatter
        )
        _OPTIONS[name](command)
    return parser


def _add_store(parser: Group) -> None:
    parser.add_argument("--store", default="model_store", metavar="DIR", help="the model store")


def _add_data_dir(parser: Group) -> None:
    text = f"directory of the MNIST IDX files (default: ${DATA_DIR_ENV})"
    parser.add_argument("--data-dir", default=None, metavar="DIR", help=text)


def _train_options(train: argparse.ArgumentParser) -> None:
    files = train.add_argument_group("where files go")
    _add_store(files)
    _add_data_dir(files)
    add = files.add_argument
    add("--run-dir", default="runs/latest", metavar="DIR", help="checkpoint and sample grid")
    add("--version", metavar="NAME", help="the new version's name (default: one from the time)")
    text = "the version it replaces, for its manifest (default: none)"
    add("--parent", metavar="VERSION", help=text)
    _recipe_options(train)
    _architecture_options(train)
    run = _run_options(train)
    run.add_argument("--resume", action="store_true", help="continue from run-dir's checkpoint")
    run.add_argument(
        "--progress",
        choices=["auto", "bar", "jsonl", "none"],
        default="auto",
        help="auto: a bar on a terminal, JSON lines otherwise",
    )
    publish = train.add_argument_group("publishing")
    add = publish.add_argument
    add("--activate", action="store_true", help="make the new version active")
    add("--evaluate", action="store_true", help="score it before publishing, in its manifest")
    text = "with --evaluate: samples of each digit"
    add("--eval-per-digit", type=at_least(2), default=1000, metavar="N", help=text)


def _recipe_options(parser: argparse.ArgumentParser) -> None:
    """The objective and the optimiser; each defaults to its TrainConfig field."""
    recipe = parser.add_argument_group("recipe (the defaults are the shipped model's)")
    add = recipe.add_argument
    text = "total steps (a --resume run stops at this step too)"
    add("--steps", type=at_least(1), default=TrainConfig.steps, metavar="N", help=text)
    text = "images per step, per process under torchrun"
    add("--batch-size", type=at_least(2), default=TrainConfig.batch_size, metavar="N", help=text)
    add("--loss", choices=get_args(Loss), default=TrainConfig.loss, help="the GAN's loss")
    for flag, default, text in (
        ("--lr-g", TrainConfig.lr_g, "Adam learning rate of the generator"),
        ("--lr-d", TrainConfig.lr_d, "Adam learning rate of the critic"),
        ("--beta1", TrainConfig.beta1, "Adam beta1 of both networks"),
        ("--beta2", TrainConfig.beta2, "Adam beta2 of both networks"),
        ("--ema-decay", TrainConfig.ema_decay, "decay of the exported average of G's weights"),
    ):
        add(flag, type=float, default=default, help=text)
    text = "weight of the mode-seeking regulariser, 0 for none"
    add("--mode-seeking", type=weight, default=TrainConfig.mode_seeking, metavar="W", help=text)
    text = "the critic's differentiable augmentation: translation, cutout, both, or none"
    add("--augment", type=policy_text, default=TrainConfig.augment or "none", help=text)
    text = "weight gamma of the R1 gradient penalty on real images, 0 for none"
    add("--r1-gamma", type=weight, default=TrainConfig.r1_gamma, metavar="G", help=text)
    text = "pay the R1 penalty every N steps (scaled by N)"
    add("--r1-every", type=at_least(1), default=TrainConfig.r1_every, metavar="N", help=text)
    text = (
        "from this step on, decay both learning rates linearly to 0 at the last step; none: never"
    )
    add("--lr-decay-start", type=step_or_none, default=TrainConfig.lr_decay_start, metavar="STEP",
        help=text)  # fmt: skip
    text = (
        "warm restarts after the decay's start: at each step the rates return to full and fall "
        "linearly to 0 again at the next restart or the last step; none: no restart"
    )
    add("--lr-restarts", type=restarts_text, metavar="STEP,...", help=text,
        default=",".join(map(str, TrainConfig.lr_restarts)) or "none")  # fmt: skip
    text = (
        "the arithmetic of the forward passes: auto is bfloat16 autocast on CUDA and on a CPU with"
        " AVX512-BF16 or AMX, float32 elsewhere"
    )
    add("--precision", choices=get_args(Precision), default=TrainConfig.precision, help=text)
    aux = recipe.add_mutually_exclusive_group()
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
        help="one AC-GAN weight for the whole run, 0 for none (default: the schedule)",
    )

    recipe.add_argument(
        "--twin-classifier-from",
        type=step_or_none,
        default=str(TrainConfig.twin_classifier_from).lower(),  # argparse applies the type
        metavar="STEP",
        help="TAC-GAN: from STEP on (0: the first), a twin digit head on the critic learns G's "
        "digits and G is rewarded for confusing it, cancelling the AC-GAN term's bias to easy "
        "digits; needs the AC-GAN term; none: no twin (default: %(default)s)",
    )


def _architecture_options(parser: argparse.ArgumentParser) -> None:
    nets = parser.add_argument_group("networks (the defaults are the shipped model's)")
    add = nets.add_argument
    for flag, default, text in (
        ("--latent-dim", TrainConfig.generator.latent_dim, "size of the latent z"),
        ("--embed-dim", TrainConfig.generator.embed_dim, "size of the generator's digit embedding"),
        ("--g-channels", TrainConfig.generator.channels, "generator width: channels at 7x7"),
        ("--d-channels", TrainConfig.discriminator.channels, "critic width: channels at 7x7"),
    ):
        add(flag, type=int, default=default, metavar="N", help=text)
    text = "how the generator doubles resolution"
    add(
        "--upsampling",
        choices=get_args(Upsampling),
        default=TrainConfig.generator.upsampling,
        help=text,
    )
    add(
        "--conditional-norm",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig.generator.conditional_norm,
        help="the digit scales and shifts every batch norm of the generator",
    )


def _add_seed_and_device(parser: Group) -> None:
    text = "seeds the weights, the latents and the data order"
    parser.add_argument("--seed", type=int, default=TrainConfig.seed, help=text)
    text = "auto (CUDA if there is one, else the CPU), cpu, cuda, cuda:1 ..."
    parser.add_argument("--device", default=TrainConfig.device, help=text)


def _run_options(train: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Seed, device, how often to checkpoint, sample and log."""
    run = train.add_argument_group("the run")
    _add_seed_and_device(run)
    add = run.add_argument
    for flag, every, what in (
        ("--checkpoint-every", TrainConfig.checkpoint_every, "save the checkpoint in run-dir"),
        ("--sample-every", TrainConfig.sample_every, "write the sample grid in run-dir"),
        ("--log-every", TrainConfig.log_every, "report progress"),
    ):
        add(flag, type=at_least(1), default=every, metavar="N", help=f"{what} every N steps")
    _add_limit_samples(run)
    return run


def _add_limit_samples(parser: Group) -> None:
    text = "train on the first N training digits only, for smoke runs (default: all)"
    parser.add_argument("--limit-samples", type=int, metavar="N", help=text)


def _speed_options(speed: argparse.ArgumentParser) -> None:
    """The recipe and architecture options of ``train`` (the same defaults), and how long."""
    _recipe_options(speed)
    _architecture_options(speed)
    _add_seed_and_device(speed)
    text = "seconds to time, after 3 warm-up steps; at most 600"
    speed.add_argument("--seconds", type=seconds, default=3.0, help=text)


def _classifier_options(classifier: argparse.ArgumentParser) -> None:
    _add_store(classifier)
    _add_data_dir(classifier)
    add = classifier.add_argument
    add("--epochs", type=int, default=3, metavar="N", help="passes over the training digits")
    add("--seed", type=int, default=0, help="seeds the weights and the data order")
    _add_evaluator(classifier, "which evaluator to train")
    _add_limit_samples(classifier)


def _add_evaluator(parser: argparse.ArgumentParser, text: str) -> None:
    choices = list(EVALUATOR_ARCHITECTURES)
    parser.add_argument("--evaluator", choices=choices, default=CLASSIFIER_DIR, help=text)


def _evaluate_options(evaluate: argparse.ArgumentParser) -> None:
    evaluate.add_argument("version", help="the version to score")
    _scoring_options(evaluate, "samples of each digit to score")
    text = "first seed of the sample set; the manifest keeps only seed 0's scores"
    evaluate.add_argument("--seed", type=at_least(0), default=0, help=text)
    text = "the latents' scale, 0 < T <= 1, as /generate's; the manifest keeps only 1's scores"
    evaluate.add_argument("--truncation", type=truncation, default=1.0, metavar="T", help=text)
    text = "who scores: the project's classifier, or the independent judge (printed only)"
    _add_evaluator(evaluate, text)


def _reference_options(reference: argparse.ArgumentParser) -> None:
    _scoring_options(reference, "training digits of each digit to score (at most all of them)")
    text = "seeds the choice of training digits"
    reference.add_argument("--seed", type=at_least(0), default=0, help=text)
    _add_evaluator(reference, "who scores: the project's classifier, or the independent judge")


# compare's seed sets: three of 10,000 samples that do not overlap, as each shipped version's
# margins were checked (training/README.md).
COMPARED_SEEDS = "0,100000,200000"


def _compare_options(compare: argparse.ArgumentParser) -> None:
    add = compare.add_argument
    add("candidate", help="the version in question")
    add("baseline", help="the version it is held against, e.g. the active one")
    _scoring_options(compare, "samples of each digit in each seed set")
    text = "first seeds of the sample sets, comma-separated; the sets must not overlap"
    add("--seeds", type=seed_list, default=COMPARED_SEEDS, metavar="S,S,...", help=text)
    text = (
        "who scores; repeat for both (default: the classifier, and the judge if the store has one)"
    )
    add("--evaluator", action="append", choices=list(EVALUATOR_ARCHITECTURES), help=text)


def _scoring_options(parser: argparse.ArgumentParser, per_digit: str) -> None:
    _add_store(parser)
    _add_data_dir(parser)
    add = parser.add_argument
    add("--per-digit", type=at_least(2), default=1000, metavar="N", help=per_digit)
    add("--json", action="store_true", help="print the metrics as JSON")


def _sample_options(sample: argparse.ArgumentParser) -> None:
    _add_store(sample)
    add = sample.add_argument
    add("--version", help="the version to sample (default: the active one)")
    text = "the digit to draw, 0-9 (default: one per sample, drawn from its seed)"
    add("--digit", type=int, choices=range(NUM_CLASSES), metavar="DIGIT", help=text)
    add("--n", type=at_least(1), default=10, help="how many samples")
    add("--seed", type=int, default=0, help="seed of the first sample")
    text = "the latents' scale, 0 < T <= 1, as /generate's"
    add("--truncation", type=truncation, default=1.0, metavar="T", help=text)
    add("--out", type=Path, required=True, metavar="FILE", help="FILE.png (a grid) or FILE.npz")


def _activate_options(activate: argparse.ArgumentParser) -> None:
    _add_store(activate)
    activate.add_argument("version", help="the version to make active")


def _download_options(download: argparse.ArgumentParser) -> None:
    text = "where to put the four files, e.g. data/mnist"
    download.add_argument("--data-dir", required=True, metavar="DIR", help=text)


_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "train": _train_options,
    "speed": _speed_options,
    "train-classifier": _classifier_options,
    "evaluate": _evaluate_options,
    "reference": _reference_options,
    "compare": _compare_options,
    "sample": _sample_options,
    "activate": _activate_options,
    "download": _download_options,
}
