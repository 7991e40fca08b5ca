"""Shared fixtures: the committed MNIST subset and a tiny published generator."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.networks import Generator, GeneratorConfig
from gan.store import WEIGHTS_FILE, Manifest, ModelStore

FIXTURE_MNIST = Path(__file__).parent / "fixtures" / "mnist"
TINY_VERSION = "tiny"
TINY_GENERATOR = GeneratorConfig(latent_dim=8, embed_dim=4, channels=8)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The committed MNIST subset: 200 train (20 per digit) and 100 test (10 per digit) digits."""
    assert (FIXTURE_MNIST / "train-images-idx3-ubyte.gz").is_file(), (
        "run tests/fixtures/make_mnist_fixture.py"
    )
    return FIXTURE_MNIST


def tiny_generator(seed: int = 0) -> Generator:
    """A randomly initialised tiny generator (deterministic for a seed), in eval mode."""
    torch.manual_seed(seed)
    return Generator(TINY_GENERATOR).eval()


@pytest.fixture
def tiny_store(tmp_path: Path) -> ModelStore:
    """A model store in tmp_path holding one tiny random generator, version "tiny", active."""
    store = ModelStore(tmp_path / "model_store")
    manifest = Manifest(
        kind="generator",
        version=TINY_VERSION,
        architecture=TINY_GENERATOR.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",
    )
    store.publish(manifest, tiny_generator().state_dict())
    store.set_active(TINY_VERSION)
    return store
