"""An image's identity: its seed, digit, model version and truncation name it for good.

A truncation of 1 (the default) is the untruncated image: it is left out of every URL, header
and cache key, so those stay what they were before truncation existed."""

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


def truncation_text(truncation: float) -> str | None:
    """How URLs, headers and provenance write a truncation: the shortest text that parses back
    to the same float (``0.7``, not ``0.69999...``); None for 1, which is left out."""
    return None if truncation == 1 else repr(float(truncation))


def truncation_headers(truncation: float) -> dict[str, str]:
    """``X-Truncation`` beside ``X-Seed`` and ``X-Model-Version``, when it is not 1."""
    text = truncation_text(truncation)
    return {} if text is None else {"X-Truncation": text}
