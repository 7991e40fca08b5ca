"""Publishing a trained generator: its sample grid and a new version in the model store."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan.imaging import encode_png, tile
from gan.networks import NUM_CLASSES
from gan.sampling import to_uint8
from gan.store import SAMPLES_FILE, WEIGHTS_FILE, Manifest, ModelStore, new_version_name
from training.config import TrainConfig, discriminator_config
from training.data import checksums
from training.ema import WARMUP_RULE


def sample_grid(generator: nn.Module, latent_dim: int, device: torch.device) -> bytes:
    """10x10 PNG grid: row d holds ten samples of digit d from fixed latents."""
    rng = torch.Generator().manual_seed(1234)
    z = torch.randn(10 * NUM_CLASSES, latent_dim, generator=rng).to(device)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(10).to(device)
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        images = to_uint8(generator(z, labels)).numpy()
    generator.train(was_training)
    return encode_png(tile(images, columns=10), {"Description": "sample grid, rows are digits 0-9"})


def export(config: TrainConfig, ema_generator: nn.Module, resumed_at_step: int = 0) -> str:
    """Publish the EMA generator as a new version in the model store. A resumed run records the
    step it resumed at: the configuration before it may have differed."""
    version = config.version or new_version_name()
    device = next(ema_generator.parameters()).device
    grid = sample_grid(ema_generator, config.generator.latent_dim, device)
    manifest = Manifest(
        kind="generator",
        version=version,
        architecture=config.generator.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",  # filled in by publish() from the bytes it writes
        training=training_record(config, resumed_at_step),
        data={"mnist_md5": checksums(config.data_dir)},
        parent=config.parent,
    )
    ModelStore(config.store).publish(
        manifest,
        ema_generator.state_dict(),
        extra_files=lambda directory: _write(directory / SAMPLES_FILE, grid),
    )
    return version


def training_record(config: TrainConfig, resumed_at_step: int) -> dict[str, Any]:
    """The manifest's training section: the run's options, the generator's own architecture
    left to the manifest's ``architecture``."""
    training: dict[str, Any] = asdict(config)
    training.pop("generator")
    training.pop("discriminator")
    training["discriminator_architecture"] = discriminator_config(config).to_dict()
    training["ema_warmup"] = WARMUP_RULE
    training["resumed_at_step"] = resumed_at_step
    return training


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
