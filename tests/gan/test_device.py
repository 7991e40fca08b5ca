"""Device, dtype and kernel choices for a forward pass."""

from __future__ import annotations

import numpy as np
import torch

from gan.device import ONEDNN_MIN_BATCH, batch_kernels, compute_dtype
from gan.networks import Generator, GeneratorConfig
from gan.sampling import draw_uint8

CPU = torch.device("cpu")
CONFIG = GeneratorConfig(latent_dim=8, embed_dim=4, channels=16)


class KernelRecorder(Generator):
    """Records whether oneDNN was on for each forward pass."""

    def __init__(self) -> None:
        super().__init__(CONFIG)
        self.onednn: list[bool] = []

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.onednn.append(torch._C._get_mkldnn_enabled())
        return super().forward(z, labels)


def test_bfloat16_only_on_cuda() -> None:
    assert compute_dtype(CPU, torch.bfloat16) == torch.float32
    assert compute_dtype(torch.device("cuda"), torch.bfloat16) == torch.bfloat16


def test_small_cpu_batches_run_without_onednn_and_restore_it() -> None:
    assert torch._C._get_mkldnn_enabled()
    with batch_kernels(CPU, ONEDNN_MIN_BATCH - 1):
        assert not torch._C._get_mkldnn_enabled()
    assert torch._C._get_mkldnn_enabled()
    with batch_kernels(CPU, ONEDNN_MIN_BATCH), batch_kernels(torch.device("cuda"), 1):
        assert torch._C._get_mkldnn_enabled()


def test_draw_picks_the_kernels_by_batch_size_and_they_agree() -> None:
    torch.manual_seed(0)
    model = KernelRecorder().eval()
    seeds = list(range(ONEDNN_MIN_BATCH))
    digits: list[int | None] = [seed % 10 for seed in seeds]
    batched, _ = draw_uint8(model, seeds, digits, device=CPU)
    alone = np.concatenate(
        [
            draw_uint8(model, [seed], [digit], device=CPU)[0]
            for seed, digit in zip(seeds, digits, strict=True)
        ]
    )
    assert model.onednn == [True] + [False] * len(seeds)
    assert torch._C._get_mkldnn_enabled()
    # Other kernels round differently in the last float bits: at most one grey level apart.
    assert np.abs(batched.astype(int) - alone.astype(int)).max() <= 1
