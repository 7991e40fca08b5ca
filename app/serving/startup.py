"""Choosing the version to serve at start-up: the active one, or, when it does not verify or
load, the newest that does (its parent chain first). A fallback is said loudly: a CRITICAL log
line, ``/info``'s ``degraded``, ``/readyz``'s detail and the ``gan_model_fallback`` metric."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import torch

from gan.store import LoadedGenerator, ModelStore, StoreError

log = logging.getLogger(__name__)
ModelLoader = Callable[[ModelStore, torch.device], LoadedGenerator]


class NothingToServeError(Exception):
    """No version in the store verifies and loads."""


def load_for_serving(
    store: ModelStore, device: torch.device, model_loader: ModelLoader
) -> tuple[LoadedGenerator, str | None]:
    """The model to serve, and None, or a sentence saying why it is not the active version."""
    try:
        return model_loader(store, device), None
    except StoreError as error:
        problem = error
    log.critical("the active version cannot be served: %s", problem)
    for version in fallback_candidates(store):
        try:
            loaded = store.load_generator(version, device)
        except StoreError as error:
            log.error("fallback candidate %s cannot be served either: %s", version, error)
            continue
        note = f"the active version cannot be served ({problem}); serving {version!r} instead"
        log.critical(note)
        return loaded, note
    raise NothingToServeError(f"no model version in {store.root} verifies and loads: {problem}")


def fallback_candidates(store: ModelStore) -> Iterator[str]:
    """The active version's parent chain, then every other version, newest first."""
    seen: set[str] = set()
    try:
        version: str | None = store.manifest(store.active_version()).parent
        seen.add(store.active_version())
    except StoreError:
        version = None
    while version is not None and version not in seen:
        seen.add(version)
        yield version
        try:
            version = store.manifest(version).parent
        except StoreError:
            version = None
    for manifest in reversed(store.versions()):
        if manifest.version not in seen:
            seen.add(manifest.version)
            yield manifest.version
