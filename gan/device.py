"""Device choice shared by training and serving."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# Below this many images a CPU forward pass runs faster on ATen's own convolutions than on
# oneDNN's: at batch 1 the shipped generator took ~0.6-1.0 ms without oneDNN against ~0.9-1.4 ms
# with it (its transposed convolution to one channel alone: 20 us against 160 us), at 4 they
# are even, from 8 on oneDNN wins (benchmarks/README.md, "Small batches without oneDNN").
ONEDNN_MIN_BATCH = 4


def pick_device(name: str) -> torch.device:
    """``auto`` means CUDA when available, else the CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def compute_dtype(device: torch.device, requested: torch.dtype) -> torch.dtype:
    """The dtype a forward pass runs in: ``requested`` (bfloat16 by autocast) on CUDA only; the
    CPU always draws in float32."""
    return requested if device.type == "cuda" else torch.float32


def batch_kernels(device: torch.device, batch: int) -> contextlib.AbstractContextManager[object]:
    """The kernels for a forward pass of ``batch`` images: oneDNN off for a small batch on the
    CPU, else as torch chooses. The switch is process-wide (``torch.backends.mkldnn``), so small
    batches must not be drawn in two threads at once: the service draws them under the inference
    worker's lock, or in its one-thread inference process. A pass that overlaps one (a swap's
    warm-up) only runs on other kernels for that time; its numbers stay right."""
    if device.type != "cpu" or batch >= ONEDNN_MIN_BATCH:
        return contextlib.nullcontext()
    return _without_onednn()


@contextlib.contextmanager
def _without_onednn() -> Iterator[None]:
    # The switch behind torch.backends.mkldnn.enabled, without its flags() context manager: on
    # leaving, that one also restores a TF32 switch for Intel GPUs, with a UserWarning on every
    # build without them.
    previous = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(previous)
