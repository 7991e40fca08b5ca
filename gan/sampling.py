"""How a request's seeds become generator inputs, shared by the service, the CLI and the tests.

Each image is defined by one integer seed: its latent vector (and, when no digit is asked for, its
digit) comes from a generator seeded with that seed alone, so an image never depends on the other
images in its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from gan.networks import NUM_CLASSES, Generator

MAX_SEED = 2**63 - 1


def latents_for_seeds(
    seeds: Sequence[int],
    latent_dim: int,
    digits: Sequence[int | None],
    truncation: float | Sequence[float] = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return z of shape (N, latent_dim) and int64 labels of shape (N,) for N seeds.

    ``digits[i] is None`` means "a random digit drawn from seed i". ``truncation`` (0 < t <= 1)
    scales every latent towards the mean: typical-looking digits at the cost of variety. It is
    part of an image's identity; at 1 the latents are exactly those drawn from the seed. One
    truncation per seed scales each row by its own (a batch of several requests).
    """
    if len(seeds) != len(digits):
        raise ValueError("seeds and digits must have the same length")
    scales = [float(truncation)] * len(seeds) if isinstance(truncation, int | float) else truncation
    if len(scales) != len(seeds):
        raise ValueError("seeds and truncations must have the same length")
    for scale in scales:
        if not 0 < scale <= 1:
            raise ValueError(f"truncation must be in (0, 1], not {scale!r}")
    z = torch.empty(len(seeds), latent_dim)
    labels: list[int] = []
    rng = torch.Generator()
    for i, (seed, digit) in enumerate(zip(seeds, digits, strict=True)):
        rng.manual_seed(seed)
        torch.randn(latent_dim, generator=rng, out=z[i])  # drawn into its row: no copy
        labels.append(
            digit if digit is not None else int(torch.randint(NUM_CLASSES, (1,), generator=rng))
        )
    if any(scale != 1 for scale in scales):
        z.mul_(torch.tensor(scales, dtype=z.dtype).unsqueeze(1))  # (N, 1): one scale per row
    return z, torch.tensor(labels, dtype=torch.int64)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) in [-1, 1] -> (N, H, W) uint8 on the CPU."""
    scaled = ((images.float().clamp(-1, 1) + 1) * 127.5).round()
    return scaled.to(torch.uint8).squeeze(1).cpu()


def from_uint8(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) uint8 -> (N, 1, H, W) float in [-1, 1], the networks' input range."""
    return images.unsqueeze(1).float().div(127.5).sub(1.0)


def draw_uint8(
    model: Generator,
    seeds: Sequence[int],
    digits: Sequence[int | None],
    truncation: float | Sequence[float] = 1.0,
    *,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> tuple[np.ndarray, list[int]]:
    """One batch as the service draws it, in its worker thread or its inference process: the
    seeds' latents, one forward pass under inference mode (``dtype`` other than float32: by
    autocast, see ``gan.device.compute_dtype``), then (N, H, W) uint8 images and the N digits."""
    z, labels = latents_for_seeds(seeds, model.config.latent_dim, digits, truncation)
    autocast = torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
    with torch.inference_mode(), autocast:
        images = model(z.to(device), labels.to(device))
    return to_uint8(images).numpy(), labels.tolist()
