"""The two evaluation scripts of the applications (training.augmentation_eval and
training.restoration_eval): their helpers, and a smoke run of each on the committed MNIST subset
and the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.config import Settings
from gan.networks import Classifier
from gan.restoration import DEFAULT_RESTARTS, DEFAULT_STEPS
from gan.store import ModelStore
from support.app import preserved_process_state
from support.models import evaluator_manifest
from training import augmentation_eval, restoration_eval
from training.data import Split


def test_the_service_restores_as_the_evaluation_measures() -> None:
    settings = Settings(_env_file=None)
    assert (settings.restore_steps, settings.restore_restarts) == (DEFAULT_STEPS, DEFAULT_RESTARTS)


def test_stratified_sample_takes_each_digit_equally() -> None:
    labels = torch.arange(10).repeat(30)
    split = Split(torch.zeros(300, 28, 28, dtype=torch.uint8), labels)
    sample = augmentation_eval.stratified_sample(split, 50, seed=0)
    assert torch.bincount(sample.labels, minlength=10).tolist() == [5] * 10
    assert torch.equal(sample.labels, augmentation_eval.stratified_sample(split, 50, 0).labels)


def test_masks_and_nearest_fill() -> None:
    rng = torch.Generator().manual_seed(0)
    halves = restoration_eval.half_masks(8, rng)
    assert (halves.flatten(1).sum(1) == 14 * 28).all()
    drops = restoration_eval.drop_masks(200, 0.3, rng)
    assert drops.float().mean().item() == pytest.approx(0.3, abs=0.01)
    image = torch.zeros(1, 28, 28, dtype=torch.uint8)
    image[0, :, :14] = 200
    missing = torch.zeros(1, 28, 28, dtype=torch.bool)
    missing[0, :, 10:12] = True  # inside the bright left half: filled bright
    missing[0, :, 20:] = True  # inside the dark right half: filled dark
    filled = restoration_eval.nearest_fill(image, missing)
    assert torch.equal(filled, image)
    assert restoration_eval.masked_rmse(filled, image, missing) == 0.0


def test_smoke_runs_print_tables(tiny_store: ModelStore, mnist_dir: Path) -> None:
    with preserved_process_state():
        torch.set_num_threads(1)  # tiny tensors: threads only add overhead
        smoke_runs(tiny_store, mnist_dir)


def smoke_runs(tiny_store: ModelStore, mnist_dir: Path) -> None:
    torch.manual_seed(0)
    tiny_store.publish(evaluator_manifest(), Classifier().state_dict())
    store, data = str(tiny_store.root), str(mnist_dir)
    augmentation = augmentation_eval.run(
        augmentation_eval.Options(data, store, None, 50, 2, 2, 1, 0, 0)
    )
    assert "| (b) real + synthetic | 50 | 20 |" in augmentation
    restoration = restoration_eval.run(
        restoration_eval.Options(data, store, None, 4, 2, 1, 4, 0, 1)
    )
    assert "| half erased | GAN restoration |" in restoration
    assert "| 30% pixels dropped | nearest-neighbour fill |" in restoration
    assert "Latency of one restoration" in restoration
