"""What the peer servers share with each other and with the project: the model (the store's active
version, loaded by ``gan.store``), the latents (``gan.sampling.latents_for_seeds``), the PNG
(``gan.imaging.encode_png`` with the project's provenance chunks) and the request they accept,
``{"digit": d, "seed": s, "format": "png"}``, so that the three servers draw the same pixels and
answer with the same bytes; only how requests reach the model differs.

Run as scripts (``python benchmarks/peers/litserve_server.py``), the peers import ``peer_common``
from their own folder, which ``sys.path`` starts with.
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan.imaging import GENERATOR_NAME, encode_png
from gan.networks import NUM_CLASSES
from gan.sampling import MAX_SEED, latents_for_seeds, to_uint8
from gan.store import LoadedGenerator, ModelStore

PNG_MEDIA_TYPE = "image/png"


class BadRequest(ValueError):
    """The body is not ``{"digit": 0-9 or null, "seed": int or null, "format": "png"}``."""


@dataclass(frozen=True)
class DigitRequest:
    digit: int | None  # None: drawn from the seed, as the project does
    seed: int


def parse_request(body: Any) -> DigitRequest:
    """The request, checked as the project checks it (digit 0-9, seed 0..2**63-1, png only)."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = set(body) - {"digit", "seed", "format"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    digit, seed = body.get("digit"), body.get("seed")
    if digit is not None and (type(digit) is not int or not 0 <= digit < NUM_CLASSES):
        raise BadRequest("digit must be an integer from 0 to 9")
    if seed is None:
        seed = random.randint(0, MAX_SEED)
    elif type(seed) is not int or not 0 <= seed <= MAX_SEED:
        raise BadRequest(f"seed must be an integer from 0 to {MAX_SEED}")
    if body.get("format", "png") != "png":
        raise BadRequest("this server only answers format=png")
    return DigitRequest(digit, seed)


def load_active(store: Path, device: str) -> LoadedGenerator:
    """The store's active version, verified and loaded by the project's own loader."""
    model_store = ModelStore(store)
    loaded = model_store.load_generator(model_store.active_version(), torch.device(device))
    loaded.model.eval()
    return loaded


def draw(
    loaded: LoadedGenerator, requests: Sequence[DigitRequest], device: str
) -> tuple[np.ndarray, list[int]]:
    """One forward pass for ``requests``: (N, 28, 28) uint8 images and their digits, exactly as
    the project's inference worker draws them (same latents, inference mode, to_uint8)."""
    seeds = [request.seed for request in requests]
    digits = [request.digit for request in requests]
    z, labels = latents_for_seeds(seeds, loaded.model.config.latent_dim, digits)
    with torch.inference_mode():
        images = loaded.model(z.to(device), labels.to(device))
    return to_uint8(images).numpy(), labels.tolist()


def png_of(image: np.ndarray, version: str, digit: int, seed: int) -> bytes:
    """The PNG the project sends for this image (scale 1): the same tEXt provenance chunks."""
    provenance = {
        "Source": "synthetic",
        "Generator": GENERATOR_NAME,
        "model_version": version,
        "digit": str(digit),
        "seed": str(seed),
    }
    return encode_png(image, provenance)


def response_headers(version: str, seed: int) -> dict[str, str]:
    return {"X-Model-Version": version, "X-Seed": str(seed), "Cache-Control": "no-store"}


def set_threads(torch_threads: int) -> int:
    """torch intra-op threads: ``torch_threads``, or the project's default (all cores but one)."""
    threads = torch_threads or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return threads


def build_parser(description: str) -> argparse.ArgumentParser:
    """The options every peer takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, required=True, help="port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--store", type=Path, default=Path("model_store"), help="model store")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads (0 = the project's default: all cores but one)",
    )
    parser.add_argument(
        "--http",
        default="auto",
        help="uvicorn HTTP protocol (default auto: httptools when installed, as the project's "
        "server picks since uvicorn[standard] is a runtime dependency)",
    )
    parser.add_argument(
        "--loop", default="auto", help="uvicorn event loop (default auto, as the project's)"
    )
    return parser
