"""Device, dtype and kernel choices for a forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan import device as devices
from gan.device import compute_dtype, hardware_name
from gan.networks import ATEN_MAX_BATCH, ConvTranspose2d, Generator, GeneratorConfig
from gan.sampling import draw_uint8

CPU = torch.device("cpu")


def test_bfloat16_only_on_cuda() -> None:
    assert compute_dtype(CPU, torch.bfloat16) == torch.float32
    assert compute_dtype(torch.device("cuda"), torch.bfloat16) == torch.bfloat16


def onednn_off(x: torch.Tensor, layer: ConvTranspose2d) -> torch.Tensor:
    """torch's own choice with oneDNN switched off: ATen's kernel."""
    torch._C._set_mkldnn_enabled(False)
    try:
        return F.conv_transpose2d(x, layer.weight, layer.bias, 2, 1)
    finally:
        torch._C._set_mkldnn_enabled(True)


def test_a_small_cpu_batch_runs_on_aten_and_a_larger_one_as_torch_picks() -> None:
    torch.manual_seed(0)
    layer = ConvTranspose2d(32, 16, 4, stride=2, padding=1).eval()
    small, large = torch.randn(ATEN_MAX_BATCH, 32, 7, 7), torch.randn(ATEN_MAX_BATCH + 1, 32, 7, 7)
    with torch.inference_mode():
        assert torch.equal(layer(small), onednn_off(small, layer))
        assert not torch.equal(
            layer(small), F.conv_transpose2d(small, layer.weight, layer.bias, 2, 1)
        )
        assert torch.equal(layer(large), F.conv_transpose2d(large, layer.weight, layer.bias, 2, 1))
    assert torch._C._get_mkldnn_enabled()  # nothing process-wide was switched


def test_the_kernels_of_a_batch_and_of_one_image_agree_to_a_grey_level() -> None:
    torch.manual_seed(0)
    model = Generator(GeneratorConfig(latent_dim=8, embed_dim=4, channels=16)).eval()
    seeds = list(range(ATEN_MAX_BATCH + 1))
    digits: list[int | None] = [seed % 10 for seed in seeds]
    batched, _ = draw_uint8(model, seeds, digits, device=CPU)
    alone = np.concatenate(
        [
            draw_uint8(model, [seed], [digit], device=CPU)[0]
            for seed, digit in zip(seeds, digits, strict=True)
        ]
    )
    # Other kernels round the last float bits differently: at most one grey level apart.
    assert np.abs(batched.astype(int) - alone.astype(int)).max() <= 1


def test_the_hardware_is_named_by_the_cpu_model_or_the_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(devices, "cpu_model", lambda: "AMD EPYC")
    assert hardware_name(CPU) == "AMD EPYC"
    monkeypatch.setattr(devices, "cpu_model", lambda: None)  # no /proc/cpuinfo: platform's name
    assert hardware_name(CPU) and hardware_name(CPU) != "AMD EPYC"
    assert hardware_name(torch.device("meta")) == "meta"
