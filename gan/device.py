"""Device choice shared by training and serving, and the hardware's name for the records."""

from __future__ import annotations

import platform
from pathlib import Path

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


def cpu_model() -> str | None:
    """The CPU's model as Linux names it, or None where /proc/cpuinfo does not."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def hardware_name(device: torch.device) -> str:
    """What ``device`` is: the GPU's name on CUDA, the CPU's model on the CPU, else the device."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return cpu_model() or platform.processor() or platform.machine()
    return str(device)
