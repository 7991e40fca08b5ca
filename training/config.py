"""What a training run is asked to do: one dataclass, the single source of the recipe's defaults
(the CLI's options default to its fields, and a test holds the jobs API to the same values)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from gan.networks import DiscriminatorConfig, GeneratorConfig

Loss = Literal["bce", "hinge"]


@dataclass
class TrainConfig:
    data_dir: str | None = None
    store: str = "model_store"
    run_dir: str = "runs/latest"
    version: str | None = None
    parent: str | None = None
    steps: int = 10_000
    batch_size: int = 64
    loss: Loss = "bce"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999
    # Mode-seeking regulariser (Mao et al., 2019): rewards G for mapping different z of one digit
    # to different images, the cure for the conditional GAN's one-prototype-per-digit collapse.
    mode_seeking: float = 0.25
    # Weight of the auxiliary classification loss (AC-GAN, Odena et al., 2017): D learns the digit
    # of real images and G is rewarded when its images are read as the digit asked for.
    aux_classifier: float = 0.1
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 1000
    sample_every: int = 500
    log_every: int = 50
    resume: bool = False
    limit_samples: int | None = None  # train on the first N digits only (tests, smoke runs)


def discriminator_config(config: TrainConfig) -> DiscriminatorConfig:
    """The critic a run builds. Its AC-GAN head exists only when its loss is on: DDP rejects
    parameters without gradients."""
    return replace(config.discriminator, classifier_head=config.aux_classifier > 0)
