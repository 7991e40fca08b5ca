"""The naive peer: a FastAPI app that calls the model inside a synchronous ``def`` route.

No batching, no queue, no dedicated inference thread: each ``POST /generate`` runs one forward
pass of one image in Starlette's thread pool (up to 40 threads at once), then encodes its PNG
there. The model, the latents and the PNG are the project's (``peer_common``), so the answer is
the project's for the same ``{"digit": d, "seed": s, "format": "png"}``. ``GET /readyz`` answers
200 once the model is loaded and warmed up.

    python benchmarks/peers/naive_server.py --port 8101 [--store model_store] [--torch-threads N]
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Literal

import uvicorn
from fastapi import FastAPI, Response
from peer_common import (
    PNG_MEDIA_TYPE,
    DigitRequest,
    build_parser,
    draw,
    load_active,
    png_of,
    response_headers,
    set_threads,
)
from pydantic import BaseModel, ConfigDict, Field

from gan.networks import NUM_CLASSES
from gan.sampling import MAX_SEED
from gan.store import LoadedGenerator


class GenerateBody(BaseModel):
    """The one request this peer answers, validated by FastAPI as a naive app would."""

    model_config = ConfigDict(extra="forbid")
    digit: int | None = Field(None, ge=0, le=NUM_CLASSES - 1)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    format: Literal["png"] = "png"


def create_app(loaded: LoadedGenerator, device: str) -> FastAPI:
    app = FastAPI(title="naive MNIST GAN peer", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready", "version": loaded.version}

    @app.post("/generate")
    def generate(body: GenerateBody) -> Response:
        seed = body.seed if body.seed is not None else random.randint(0, MAX_SEED)
        images, digits = draw(loaded, [DigitRequest(body.digit, seed)], device)
        png = png_of(images[0], loaded.version, digits[0], seed)
        return Response(
            png, media_type=PNG_MEDIA_TYPE, headers=response_headers(loaded.version, seed)
        )

    return app


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser(__doc__.split("\n\n")[0] if __doc__ else "").parse_args(argv)
    set_threads(args.torch_threads)
    loaded = load_active(args.store, args.device)
    draw(loaded, [DigitRequest(0, 0)] * 2, args.device)  # warm-up, before /readyz answers
    app = create_app(loaded, args.device)
    print(json.dumps({"peer": "naive", "version": loaded.version, "port": args.port}), flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http=args.http,
        loop=args.loop,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
