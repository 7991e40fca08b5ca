"""The exported generator: an exponential moving average of G's weights and batch-norm buffers.

Its decay warms up, ``decay_t = min(decay, (1 + t) / (10 + t))`` with ``t`` the number of earlier
updates (the first update copies the weights). A fixed 0.999 would leave the EMA of a 100-step run
about 90% its first weights (0.999^100), so a short job would export a nearly untrained generator;
with the warm-up the EMA follows the weights closely early on and reaches the full decay after
about 9,000 steps. The update count is the ``n_averaged`` buffer of torch's ``AveragedModel``, so
it is in the checkpoint's ``ema`` state and a resumed run continues the same schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

# How the manifest's training section records the schedule.
WARMUP_RULE = (
    "decay_t = min(ema_decay, (1 + t) / (10 + t)), t = the number of earlier EMA updates "
    "(the first update copies the weights)"
)

TensorList = tuple[Tensor, ...] | list[Tensor]


def warmup_decay(decay: float, updates: int) -> float:
    """The decay of the update that follows ``updates`` earlier ones."""
    return min(decay, (1 + updates) / (10 + updates))


def ema_of(generator: nn.Module, decay: float) -> AveragedModel:
    """An EMA of ``generator`` (parameters and buffers) with the warmed-up decay."""
    return AveragedModel(generator, multi_avg_fn=_warmup_update(decay), use_buffers=True)


def _warmup_update(decay: float) -> Callable[[TensorList, TensorList, Tensor | int], None]:
    @torch.no_grad()
    def update(averaged: TensorList, current: TensorList, updates: Tensor | int) -> None:
        # AveragedModel copies the weights at the first update and calls this for the later ones.
        decay_t = warmup_decay(decay, int(updates))
        if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
            torch._foreach_lerp_(averaged, current, 1 - decay_t)
        else:  # integer buffers (batch norm's step count), as torch's own EMA treats them
            for ema_tensor, tensor in zip(averaged, current, strict=True):
                ema_tensor.copy_(ema_tensor * decay_t + tensor * (1 - decay_t))

    return update
