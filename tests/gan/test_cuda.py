"""The GPU path: the shipped generator, a training step and the service on CUDA. Skipped on a
machine without one; ``benchmarks/gpu_check.sh`` runs them (``pytest -m cuda``) where there is."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore
from training.config import TrainConfig
from training.speed import measure

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
]
STORE = Path(__file__).parents[2] / "model_store"
SEEDS = list(range(256))


def draw(device: str, dtype: torch.dtype) -> torch.Tensor:
    """The shipped generator's 256 digits (seeds 0..255, digit seed % 10) as uint8 on the CPU."""
    store = ModelStore(STORE)
    loaded = store.load_generator(store.active_version(), torch.device(device))
    z, labels = latents_for_seeds(SEEDS, loaded.model.config.latent_dim, [s % 10 for s in SEEDS])
    with torch.inference_mode(), torch.autocast(device, dtype, enabled=dtype != torch.float32):
        return to_uint8(loaded.model(z.to(device), labels.to(device)))


def test_the_generator_draws_on_cuda_what_it_draws_on_the_cpu() -> None:
    cpu = draw("cpu", torch.float32).int()
    gpu = draw("cuda", torch.float32).int()
    assert (cpu - gpu).abs().max() <= 2  # float32 kernels differ in their last bits only


def test_bfloat16_stays_close_to_float32() -> None:
    full = draw("cuda", torch.float32).float()
    half = draw("cuda", torch.bfloat16).float()
    assert (full - half).abs().mean() < 4.0  # grey levels of 255, on average


def test_a_training_step_runs_in_bf16_autocast_on_cuda() -> None:
    config = replace(TrainConfig(), device="cuda", batch_size=256, steps=100)
    result = measure(config, seconds=1.0)
    assert result["device"].startswith("cuda") and result["images_per_s"] > 0
