"""The LitServe peer: the project's active generator behind LitServe's dynamic batching.

``LitAPI(max_batch_size=64, batch_timeout=0.005)`` and one inference worker: LitServe's HTTP
process (uvicorn, forked) puts each request on a queue, the worker process (spawned) gathers up
to 64 requests or waits 5 ms, runs ``decode_request`` on each, ``predict`` once on the batch
(one forward pass), and ``encode_response`` on each result (the PNG, encoded in the worker).
The model, the latents and the PNG are the project's (``peer_common``), so the answer is the
project's for the same ``{"digit": d, "seed": s, "format": "png"}``. ``GET /readyz`` is
LitServe's health check (200 once the worker has run ``setup``).

LitServe starts several processes (a multiprocessing manager, the worker, the HTTP server):
start it in its own session (``setsid``, ``start_new_session=True``) and stop its whole process
group.

    python benchmarks/peers/litserve_server.py --port 8102 [--store model_store]
"""

# No ``from __future__ import annotations`` here: LitServe reads the annotations of
# decode_request's ``request`` and of encode_response's return as real objects to build its route.
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
from fastapi import HTTPException, Response
from peer_common import (
    PNG_MEDIA_TYPE,
    BadRequest,
    DigitRequest,
    build_parser,
    draw,
    load_active,
    parse_request,
    png_of,
    response_headers,
    set_threads,
)

from gan.store import LoadedGenerator

MAX_BATCH_SIZE = 64
BATCH_TIMEOUT_S = 0.005
Drawn = tuple[np.ndarray, int, int]  # image, digit, seed


class GeneratorAPI(ls.LitAPI):  # type: ignore[misc]  # litserve ships no type information
    def __init__(self, store: Path, torch_threads: int) -> None:
        super().__init__(
            max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S, api_path="/generate"
        )
        self.store_root = store
        self.torch_threads = torch_threads
        self.loaded: LoadedGenerator | None = None
        self.torch_device = "cpu"

    def setup(self, device: str) -> None:
        """In the worker process: the project's loader, then a warm-up batch."""
        set_threads(self.torch_threads)
        self.torch_device = device
        self.loaded = load_active(self.store_root, device)
        draw(self.loaded, [DigitRequest(0, 0)] * MAX_BATCH_SIZE, device)

    # ``request`` stays unannotated, as in LitServe's examples: LitServe then reads the body with
    # ``await request.json()`` and hands this method the parsed JSON.
    def decode_request(self, request, **kwargs: Any) -> DigitRequest:  # type: ignore[no-untyped-def]
        try:
            return parse_request(request)
        except BadRequest as error:
            raise HTTPException(status_code=422, detail=str(error)) from None

    def batch(self, inputs: list[DigitRequest]) -> list[DigitRequest]:
        return inputs

    def predict(self, x: list[DigitRequest], **kwargs: Any) -> list[Drawn]:
        assert self.loaded is not None, "setup() runs first"
        images, digits = draw(self.loaded, x, self.torch_device)
        return [(images[i], digits[i], x[i].seed) for i in range(len(x))]

    def unbatch(self, output: list[Drawn]) -> list[Drawn]:
        return output

    def encode_response(self, output: Drawn, **kwargs: Any) -> Response:
        assert self.loaded is not None, "setup() runs first"
        image, digit, seed = output
        version = self.loaded.version
        png = png_of(image, version, digit, seed)
        return Response(png, media_type=PNG_MEDIA_TYPE, headers=response_headers(version, seed))


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser(__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument(
        "--fast-queue",
        action="store_true",
        help="LitServer(fast_queue=True): ZeroMQ between the HTTP and worker processes instead "
        "of multiprocessing queues (off by default, as in LitServe)",
    )
    args = parser.parse_args(argv)
    accelerator = "cuda" if args.device.startswith("cuda") else "cpu"
    api = GeneratorAPI(args.store.resolve(), args.torch_threads)
    server = ls.LitServer(
        api,
        accelerator=accelerator,
        devices=1,
        workers_per_device=1,
        timeout=60,
        healthcheck_path="/readyz",
        fast_queue=args.fast_queue,
    )
    print(
        json.dumps({"peer": "litserve", "port": args.port, "fast_queue": args.fast_queue}),
        flush=True,
    )
    server.run(
        host=args.host,
        port=args.port,
        log_level="warning",
        generate_client_file=False,
        num_api_servers=1,
        http=args.http,
        loop=args.loop,
        access_log=False,
    )


if __name__ == "__main__":
    main()
