"""What a training run is asked to do: one dataclass, the single source of the recipe's defaults
(the CLI's options default to its fields, and a test holds the jobs API to the same values).

The defaults are the recipe of the shipped model, ``mnist-cgan-v6``: ``mnist-cgan-v2``'s (what
its four manually resumed phases trained, as one run: training/README.md) with the hinge loss
(``mnist-cgan-v3``, 26,000 steps), then 10,000 steps more with both learning rates falling
linearly to 0 (``mnist-cgan-v3.1``), against a critic twice as wide and with a stronger AC-GAN
weight while the rates fall (``mnist-cgan-v4``), with a latent twice as large and a second
10,000-step decay after a warm restart (``mnist-cgan-v5``), with TAC-GAN's twin classifier and
twice the AC-GAN weight from that restart on (``mnist-cgan-v6``). ``python -m training train
--data-dir D`` trains it in one run of 46,000 steps; the manifest's training section says which
of its fields a run changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import torch

from gan.networks import DiscriminatorConfig, GeneratorConfig
from training.schedule import StepSchedule

Loss = Literal["bce", "hinge"]
# auto: bfloat16 autocast where the hardware has bfloat16 arithmetic (CUDA; a CPU with AVX512-BF16
# or AMX: this machine's AMD EPYC trains 1.4x the images/s with the 128-channel critic, 1.8x with
# 256), float32 elsewhere, where bfloat16 would be emulated and slower.
Precision = Literal["auto", "float32", "bfloat16"]

RECIPE = "mnist-cgan-v6"
# The recipe's phases, which its rates, AC-GAN weight and twin all follow: the rates fall from
# DECAY_START (v3.1) and restart at RESTART (v5); the AC-GAN weight rises at each (v4, v6) and the
# twin joins at the restart (v6).
RECIPE_DECAY_START = 26_000
RECIPE_RESTART = 36_000
# The AC-GAN weight of v2's phases, which v3 and v3.1 kept: 0.1 for the first 18,000 steps (v2's
# cbn-b, 0-12,000 and 12,000-18,000), 0.05 to 22,000 (r3-x), 0.075 from there (r4-b); v4 raises
# it to 0.125 while the rates decay, buying back the accuracy the wide critic cost (run v4c); v6
# doubles it with the twin from the restart on, buying back half the accuracy the twin costs (v4l).
RECIPE_AUX_CLASSIFIER = StepSchedule(
    ((0, 0.1), (18_000, 0.05), (22_000, 0.075), (RECIPE_DECAY_START, 0.125), (RECIPE_RESTART, 0.25))
)
# A critic twice as wide as the network's default: FID -1.1, recall +0.01 (runs v4b, v4c).
RECIPE_DISCRIMINATOR = DiscriminatorConfig(channels=256)
# A latent twice as large as the network's default: FID -0.3, recall +0.01 (run v4h), v5's.
RECIPE_GENERATOR = GeneratorConfig(latent_dim=128)


@dataclass
class TrainConfig:
    data_dir: str | None = None
    store: str = "model_store"
    run_dir: str = "runs/latest"
    version: str | None = None
    parent: str | None = None
    # v3's 26,000, then 10,000 with decaying rates (v3.1), then 10,000 more after a restart (v5)
    steps: int = 46_000
    batch_size: int = 64
    loss: Loss = "hinge"  # v3: FID 14.1 -> 9.9 against v2's bce (training/README.md)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    # Mode-seeking regulariser (Mao et al., 2019): rewards G for mapping different z of one digit
    # to different images, the cure for the conditional GAN's one-prototype-per-digit collapse.
    mode_seeking: float = 0.25
    # Weight of the auxiliary classification loss over the steps (AC-GAN, Odena et al., 2017): D
    # learns the digit of real images and G is rewarded when its images are read as the digit
    # asked for. It trades conditional accuracy against recall (training/README.md).
    aux_classifier_schedule: StepSchedule = RECIPE_AUX_CLASSIFIER
    # TAC-GAN (Gong et al., 2019): from this step on, a twin digit head on the critic learns the
    # digits of G's images, and G is also rewarded for confusing it, with the AC-GAN term's
    # weight: that term's bias towards easy-to-classify digits cancels. 0: from the first step;
    # None: no twin. Only with the AC-GAN term on (a run without it has no twin). From the
    # restart: FID -0.8 to -0.9, recall +0.006 to +0.032 over v5 (runs v4k, v6).
    twin_classifier_from: int | None = RECIPE_RESTART
    # Differentiable augmentation of everything the critic sees (training.augment), e.g.
    # "translation,cutout"; "" for none.
    augment: str = ""
    # Zero-centred gradient penalty on real images (R1, Mescheder et al., 2018): gamma / 2 *
    # E|grad_x D(x)|^2, applied every r1_every steps with its weight scaled up to match (lazy
    # regularisation, Karras et al., 2020). 0 for none.
    r1_gamma: float = 0.0
    r1_every: int = 4
    # From this step on, both learning rates fall linearly to 0 at the last step; None: constant.
    # v3.1: FID 9.9 -> 9.5, precision 0.732 -> 0.748 over v3's 26,000 constant-rate steps.
    lr_decay_start: int | None = RECIPE_DECAY_START
    # Warm restarts (SGDR-like, Loshchilov & Hutter, 2017): at each of these steps after the
    # decay's start the rates return to their full value and fall linearly to 0 again at the
    # next restart or the last step. v5: a second 10,000-step decay from 36,000 (run v4j).
    lr_restarts: tuple[int, ...] = (RECIPE_RESTART,)
    precision: Precision = "auto"
    generator: GeneratorConfig = RECIPE_GENERATOR
    discriminator: DiscriminatorConfig = RECIPE_DISCRIMINATOR
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 50
    resume: bool = False
    limit_samples: int | None = None  # train on the first N digits only (tests, smoke runs)


# Where a run keeps its files and how it reports: not part of what it trains.
RUN_FIELDS = frozenset(
    {
        "data_dir", "store", "run_dir", "version", "parent", "device", "checkpoint_every",
        "sample_every", "log_every", "resume",
    }
)  # fmt: skip


def discriminator_config(config: TrainConfig) -> DiscriminatorConfig:
    """The critic a run builds. Its AC-GAN head (and the twin, if asked for, from any step)
    exists from the first step when the weight is above 0 at some step of the schedule (whatever
    the run's length, so that a resumed run finds the same critic); with the term off throughout
    it is left out, since DDP rejects parameters without gradients."""
    head = config.aux_classifier_schedule.peak > 0
    twin = head and config.twin_classifier_from is not None
    return replace(config.discriminator, classifier_head=head, twin_head=twin)


def twin_trains_at(config: TrainConfig, step: int) -> bool:
    """Whether the twin head and its term in G's loss are on at ``step``."""
    return config.twin_classifier_from is not None and step >= config.twin_classifier_from


def uses_bfloat16(config: TrainConfig, device: torch.device) -> bool:
    """Whether the forward passes run under bfloat16 autocast (the weights, the optimisers' state
    and the exported average stay float32)."""
    if config.precision == "auto":
        return has_native_bfloat16(device)
    return config.precision == "bfloat16"


def arithmetic(config: TrainConfig, device: torch.device) -> str:
    """What ``precision`` means on ``device``, as manifests record it."""
    return "bfloat16" if uses_bfloat16(config, device) else "float32"


def options_record(config: TrainConfig) -> dict[str, Any]:
    """Every field of the run as manifests write it: the schedule in the syntax the CLI reads."""
    record = asdict(config)
    record["aux_classifier_schedule"] = str(config.aux_classifier_schedule)
    return record


def has_native_bfloat16(device: torch.device) -> bool:
    """CUDA, or a CPU with AVX512-BF16 or AMX (elsewhere bfloat16 is emulated, slower)."""
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return device.type == "cuda"


def recipe_record(config: TrainConfig) -> dict[str, Any]:
    """The manifest's account of the recipe: its name and the fields this run changed."""
    default = TrainConfig()
    changed = [
        f.name
        for f in fields(TrainConfig)
        if f.name not in RUN_FIELDS and getattr(config, f.name) != getattr(default, f.name)
    ]
    return {"name": RECIPE, "changed": changed}
