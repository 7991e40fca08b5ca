"""Device choice shared by training and serving."""

from __future__ import annotations

import torch


def pick_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else the CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def compute_dtype(device: torch.device, requested: torch.dtype) -> torch.dtype:
    """The dtype a forward pass runs in: ``requested`` (bfloat16 by autocast) on CUDA only; the
    CPU always draws in float32."""
    return requested if device.type == "cuda" else torch.float32
