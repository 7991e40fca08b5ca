"""An image's identity: its seed, digit and model version name it for good."""

from __future__ import annotations

import secrets

from app.serving.errors import VersionMismatchError

RANDOM_SEED_BOUND = 2**31  # seeds the server picks when a request gives none


def pick_seed(seed: int | None) -> int:
    """The request's seed, or a random one (returned to the client in ``X-Seed``)."""
    return seed if seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)


def check_pinned(pinned: str | None, served: str) -> None:
    """A request that names a version gets that version's images or a 404, never another's.
    Checked before queueing (the usual case) and again on the result: a swap may land between."""
    if pinned is not None and pinned != served:
        raise VersionMismatchError(
            f"model version {pinned!r} is not served here (active: {served!r})"
        )
