"""How fast this host trains a recipe: real training steps (the networks, losses, optimisers and
EMA of ``training.train``, at the run's batch size, on its device) on random images, so that no
data set is needed. ``python -m training speed`` prints the result as one JSON line, which a
caller multiplies out for an honest estimate of a run's length before starting it.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from gan.device import pick_device
from gan.networks import NUM_CLASSES
from training.config import TrainConfig
from training.distributed import Distributed
from training.train import build_networks, memory_format, train_step

WARMUP_STEPS = 3  # first steps pay for allocations and kernel selection
MIN_STEPS = 3


def measure(config: TrainConfig, seconds: float) -> dict[str, Any]:
    """Time training steps for about ``seconds`` after the warm-up. The result: images/s and
    steps/s, the batch size and device, how many steps were timed over how long, and what
    ``config.steps`` would take at that rate (training only: evaluation not included)."""
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    nets = build_networks(config, device, Distributed())
    real = (torch.rand(config.batch_size, 1, 28, 28, device=device) * 2 - 1).contiguous(
        memory_format=memory_format(device)
    )
    labels = torch.randint(NUM_CLASSES, (config.batch_size,), device=device)
    # Steps counted from 0, as a run's are: the AC-GAN term and the lazy R1 penalty cost what
    # they cost in training, on the steps where they are due.
    for step in range(WARMUP_STEPS):
        train_step(config, nets, real, labels, step)
    _synchronize(device)
    timed, start = 0, time.perf_counter()
    while timed < MIN_STEPS or time.perf_counter() - start < seconds:
        train_step(config, nets, real, labels, WARMUP_STEPS + timed)
        _synchronize(device)
        timed += 1
    elapsed = time.perf_counter() - start
    images_per_s = timed * config.batch_size / elapsed
    return {
        "images_per_s": round(images_per_s, 1),
        "steps_per_s": round(timed / elapsed, 3),
        "batch_size": config.batch_size,
        "device": str(device),
        "timed_steps": timed,
        "timed_s": round(elapsed, 3),
        "steps": config.steps,
        "estimated_training_s": round(config.steps * config.batch_size / images_per_s, 1),
    }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
