"""Differentiable augmentation for the critic (DiffAugment, Zhao et al., 2020).

The critic sees real and generated digits through the same random translation and cutout, and
G's gradient flows through them, so the critic cannot memorise the 60,000 training digits while
G is never asked to draw a shifted or cut digit. Both fill with the background (-1, black), not
with grey as the paper's natural images do: a shifted MNIST digit still looks like one.
"""

from __future__ import annotations

from functools import cache
from typing import Literal, get_args

import torch
import torch.nn.functional as F

Policy = Literal["translation", "cutout"]
POLICIES: tuple[str, ...] = get_args(Policy)
BACKGROUND = -1.0
TRANSLATION_RATIO = 0.125  # at most 1/8 of the side, rounded: 4 pixels of 28
CUTOUT_RATIO = 0.5  # a square half the side: 14x14 of 28x28


@cache  # a training step asks for its run's policy: parsed once
def parse_policy(text: str) -> tuple[Policy, ...]:
    """``"translation,cutout"`` -> the policies in order; ``""`` or ``"none"`` -> none."""
    names = [name.strip() for name in text.split(",") if name.strip() not in ("", "none")]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}: choose from {', '.join(POLICIES)}")
    return tuple(names)  # type: ignore[arg-type]


def augment(images: torch.Tensor, policy: tuple[Policy, ...]) -> torch.Tensor:
    """(N, 1, H, W) -> (N, 1, H, W), each image transformed with its own random draw."""
    for name in policy:
        images = translate(images) if name == "translation" else cutout(images)
    return images


def translate(images: torch.Tensor, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its side in x and y, padding with the background."""
    n, _, h, w = images.shape
    pad = max(1, int(h * ratio + 0.5))
    device = images.device
    shift_y = torch.randint(-pad, pad + 1, (n, 1, 1), device=device)
    shift_x = torch.randint(-pad, pad + 1, (n, 1, 1), device=device)
    rows = torch.arange(h, device=device).view(1, h, 1) + pad + shift_y  # (N, H, 1)
    cols = torch.arange(w, device=device).view(1, 1, w) + pad + shift_x  # (N, 1, W)
    padded = F.pad(images, (pad, pad, pad, pad), value=BACKGROUND)  # (N, C, H+2p, W+2p)
    batch = torch.arange(n, device=device).view(n, 1, 1)
    # Advanced indexing around the channel slice gives (N, H, W, C).
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def cutout(images: torch.Tensor, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Blank one square of ``ratio`` of the side per image, at a random centre, with the
    background (the square may hang over the edge)."""
    n, _, h, w = images.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    device = images.device
    top = torch.randint(0, h + (1 - size_y % 2), (n, 1, 1), device=device) - size_y // 2
    left = torch.randint(0, w + (1 - size_x % 2), (n, 1, 1), device=device) - size_x // 2
    rows = torch.arange(h, device=device).view(1, h, 1)
    cols = torch.arange(w, device=device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return images.masked_fill(inside.unsqueeze(1), BACKGROUND)
