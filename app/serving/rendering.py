"""Encoding of generated images: PNG with provenance, grids, base64 JSON, and cache validators."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

import numpy as np

from app.schemas.images import GeneratedImage, GenerateResponse
from app.serving.identity import truncation_text
from app.serving.worker import GenerationResult
from gan.imaging import GENERATOR_NAME, encode_png, tile, upscale

GRID_COLUMNS = 10
INLINE_MAX_SCALE = 2  # single PNGs up to 56x56 are encoded without leaving the event loop
P = ParamSpec("P")
T = TypeVar("T")


class EncoderPool:
    """A small, dedicated thread pool for PNG/JSON encoding, off the event loop.

    Few threads on purpose: encoding a 28x28 PNG takes ~50 us, so a large pool (Starlette's has
    40 threads) only adds GIL contention with the event loop and the inference worker.
    """

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="encoder")

    async def run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, functools.partial(function, *args, **kwargs)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def provenance(version: str, digit: str, seed: str, truncation: float = 1.0) -> dict[str, str]:
    """The PNG's tEXt chunks; ``truncation`` only when it is not 1 (the bytes of an untruncated
    image are what they were before truncation existed)."""
    meta = {
        "Source": "synthetic",
        "Generator": GENERATOR_NAME,
        "model_version": version,
        "digit": digit,
        "seed": seed,
    }
    text = truncation_text(truncation)
    if text is not None:
        meta["truncation"] = text
    return meta


def image_png(result: GenerationResult, index: int, scale: int) -> bytes:
    image = upscale(result.images[index], scale)
    meta = provenance(
        result.version, str(result.digits[index]), str(result.seeds[index]), result.truncation
    )
    return encode_png(image, meta)


async def single_png(
    encoder: EncoderPool, result: GenerationResult, index: int, scale: int
) -> bytes:
    """One image's PNG: a small one encoded at once, on the event loop (at scale <= 2 that takes
    ~0.1 ms, less than the round trip to the encoder pool), a larger one in the pool."""
    if scale <= INLINE_MAX_SCALE:
        return image_png(result, index, scale)
    return await encoder.run(image_png, result, index, scale)


def grid_png(result: GenerationResult, scale: int) -> bytes:
    columns = min(len(result.seeds), GRID_COLUMNS)
    mosaic = upscale(tile(np.asarray(result.images), columns), scale)
    meta = provenance(
        result.version,
        ",".join(map(str, result.digits)),
        ",".join(map(str, result.seeds)),
        result.truncation,
    )
    return encode_png(mosaic, meta)


def image_pngs(result: GenerationResult, scale: int) -> list[bytes]:
    """Every image of ``result`` as its own PNG."""
    return [image_png(result, index, scale) for index in range(len(result.seeds))]


def base64_response(result: GenerationResult, scale: int) -> GenerateResponse:
    images = [
        GeneratedImage(
            digit=digit,
            seed=seed,
            truncation=result.truncation,
            png_base64=base64.b64encode(png).decode("ascii"),
        )
        for digit, seed, png in zip(
            result.digits, result.seeds, image_pngs(result, scale), strict=True
        )
    ]
    return GenerateResponse(model_version=result.version, images=images)


def etag(version: str, digit: int, seed: int, scale: int, truncation: float = 1.0) -> str:
    """Weak validator (``W/``) of the image these values name (a truncation of 1 keeps the tag it
    had before truncation existed). Weak, because the bytes are the same image but not always
    the same bytes: a forward pass rounds its last float bits by batch size and kernel, and of
    512 seeds, 1-3 images drawn alone and in a batch differed by one grey level in one pixel
    (benchmarks/README.md, "Small batches without oneDNN"). A strong tag would promise caches
    byte-identical answers."""
    text = truncation_text(truncation)
    key = f"{version}|{digit}|{seed}|{scale}{'' if text is None else '|' + text}".encode()
    return 'W/"' + hashlib.sha256(key).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, current: str) -> bool:
    if not if_none_match:
        return False
    # If-None-Match compares weakly (RFC 9110, 13.1.2): W/"x" and "x" are the same tag.
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or current.removeprefix("W/") in candidates
