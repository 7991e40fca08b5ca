"""Helpers that publish randomly initialised generators into a model store, for the tests' and
the benchmarks' stores: no training and no data needed, deterministic for a seed.

Nothing heavy happens at import beyond torch (and the project's own ``gan.networks`` and
``gan.store``); nothing here is used by the service itself.
"""

from __future__ import annotations

from typing import Any

import torch

from gan.networks import Generator, GeneratorConfig
from gan.store import WEIGHTS_FILE, Manifest, ModelStore


def random_generator(config: GeneratorConfig, *, seed: int = 0) -> Generator:
    """An untrained ``Generator(config)`` in eval mode, the same weights for the same config and
    seed. The global torch RNG is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Generator(config).eval()


def publish_random_generator(
    store: ModelStore,
    version: str,
    config: GeneratorConfig,
    *,
    seed: int = 0,
    activate: bool = True,
    **manifest_fields: Any,
) -> Manifest:
    """Publish :func:`random_generator` ``(config, seed=seed)`` as ``version`` of ``store`` and,
    with ``activate``, make it the active version. ``manifest_fields`` go to the manifest as they
    are (e.g. ``training=``, ``metrics=``, ``parent=``). Returns the manifest as stored, with its
    weights' sha256."""
    manifest = Manifest(
        kind="generator",
        version=version,
        architecture=config.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",  # publish() records the real one
        **manifest_fields,
    )
    store.publish(manifest, random_generator(config, seed=seed).state_dict())
    if activate:
        store.set_active(version)
    return store.manifest(version)
