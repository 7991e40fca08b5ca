"""The tiny generator the tests publish (randomly initialised, deterministic for a seed), and the
manifest of an untrained evaluator to publish beside it."""

from __future__ import annotations

from typing import Any

from gan.networks import Generator, GeneratorConfig
from gan.store import CLASSIFIER_DIR, CLASSIFIER_WEIGHTS_FILE, EVALUATOR_ARCHITECTURES, Manifest
from gan.testing import random_generator

TINY_VERSION = "tiny"
TINY_GENERATOR = GeneratorConfig(latent_dim=8, embed_dim=4, channels=8)


def tiny_generator(seed: int = 0) -> Generator:
    """A randomly initialised tiny generator (deterministic for a seed), in eval mode."""
    return random_generator(TINY_GENERATOR, seed=seed)


def evaluator_manifest(evaluator: str = CLASSIFIER_DIR, **fields: Any) -> Manifest:
    """The manifest of the store's ``evaluator`` (``classifier`` or ``judge``), its architecture
    the one that evaluator is trained as, to publish with that network's state dict."""
    return Manifest.model_validate(
        {
            "kind": "classifier",
            "version": evaluator,
            "architecture": {"name": EVALUATOR_ARCHITECTURES[evaluator]},
            "weights_file": CLASSIFIER_WEIGHTS_FILE,
            "weights_sha256": "",
            **fields,
        }
    )
