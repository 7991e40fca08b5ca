"""Publishing a trained generator: its sample grid and a new version in the model store.

The EMA generator is staged in the store (a hidden directory no listing shows), evaluated there
when asked, and only then published, its metrics already in the manifest, by one rename
(``gan.staging``). A run killed at any point leaves no version behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan.imaging import encode_png, tile
from gan.networks import NUM_CLASSES
from gan.sampling import to_uint8
from gan.store import (
    SAMPLES_FILE,
    WEIGHTS_FILE,
    Manifest,
    ModelStore,
    VersionExists,
    new_version_name,
)
from training.config import (
    TrainConfig,
    arithmetic,
    discriminator_config,
    options_record,
    recipe_record,
)
from training.data import checksums
from training.ema import WARMUP_RULE
from training.evaluate import manifest_metrics
from training.progress import Phase
from training.provenance import Piece, pieces_record

# The sample grid's latents: GRID_SEED seeds one torch generator that draws all 100 latents in
# order, row by row; row d holds digit d. Every version of one latent size shows the same latents.
GRID_SEED = 1234
GRID_COLUMNS = 10


def sample_grid(generator: nn.Module, latent_dim: int, device: torch.device) -> bytes:
    """10x10 PNG grid: row d holds ten samples of digit d from fixed latents."""
    rng = torch.Generator().manual_seed(GRID_SEED)
    z = torch.randn(GRID_COLUMNS * NUM_CLASSES, latent_dim, generator=rng).to(device)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(GRID_COLUMNS).to(device)
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        images = to_uint8(generator(z, labels)).numpy()
    generator.train(was_training)
    description = {"Description": "sample grid, rows are digits 0-9"}
    return encode_png(tile(images, columns=GRID_COLUMNS), description)


def check_publishable(config: TrainConfig, evaluate: bool) -> None:
    """Refuse, before any training, a run whose end could not publish: a version name that is
    invalid or taken, or (with evaluation) a store without a classifier that loads, or with a
    judge that does not."""
    store = ModelStore(config.store)
    if config.version is not None and store.version_dir(config.version).exists():
        raise VersionExists(f"model version {config.version!r} already exists in {store.root}")
    if evaluate:
        for evaluator in store.scoring_evaluators():
            store.load_classifier(evaluator)


def export(
    config: TrainConfig,
    ema_generator: nn.Module,
    pieces: list[Piece],
    evaluate_per_digit: int | None = None,
    phase: Callable[[Phase], None] = lambda _: None,
) -> str:
    """Stage the EMA generator as a new version, evaluate it there if ``evaluate_per_digit``
    (announcing the "evaluating" phase), then publish it ("publishing"); returns the version.
    The manifest records the run's ``pieces`` and the step the last one resumed at: the
    configuration before it may have differed."""
    version = config.version or new_version_name()
    device = next(ema_generator.parameters()).device
    grid = sample_grid(ema_generator, config.generator.latent_dim, device)
    manifest = Manifest(
        kind="generator",
        version=version,
        architecture=config.generator.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",  # filled in by staging from the bytes it writes
        training=training_record(config, pieces, arithmetic(config, device)),
        data={"mnist_md5": checksums(config.data_dir)},
        parent=config.parent,
    )
    store = ModelStore(config.store)

    def write_grid(directory: Path) -> None:
        (directory / SAMPLES_FILE).write_bytes(grid)

    with store.stage(manifest, ema_generator.state_dict(), write_grid) as staged:
        metrics = None
        if evaluate_per_digit is not None:
            phase("evaluating")
            generator = staged.load_generator()
            metrics = manifest_metrics(generator, store, config.data_dir, evaluate_per_digit)
        phase("publishing")
        staged.publish(metrics)
    return version


def training_record(
    config: TrainConfig, pieces: list[Piece], used_arithmetic: str
) -> dict[str, Any]:
    """The manifest's training section: the run's options (with what ``precision`` meant on
    this device), the generator's own architecture left to the manifest's ``architecture``."""
    training = options_record(config)
    training.pop("generator")
    training.pop("discriminator")
    training["discriminator_architecture"] = discriminator_config(config).to_dict()
    training["arithmetic"] = used_arithmetic
    training["ema_warmup"] = WARMUP_RULE
    training["resumed_at_step"] = pieces[-1]["from_step"]
    training["pieces"] = pieces_record(config, pieces)
    training["recipe"] = recipe_record(config)
    return training
