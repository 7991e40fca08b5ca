"""The tiny generator the tests publish: randomly initialised, deterministic for a seed."""

from __future__ import annotations

from gan.networks import Generator, GeneratorConfig
from gan.testing import random_generator

TINY_VERSION = "tiny"
TINY_GENERATOR = GeneratorConfig(latent_dim=8, embed_dim=4, channels=8)


def tiny_generator(seed: int = 0) -> Generator:
    """A randomly initialised tiny generator (deterministic for a seed), in eval mode."""
    return random_generator(TINY_GENERATOR, seed=seed)
