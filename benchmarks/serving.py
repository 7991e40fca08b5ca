"""Load test of the HTTP service, dynamic batching on vs off, against local servers it starts.

For each mode it launches ``python -m app`` on 127.0.0.1 (a free port, a temporary state dir,
``GAN_*`` settings from the command line), waits for ``/readyz``, runs every scenario at every
concurrency for a fixed duration, then stops the server with SIGTERM. Meanwhile it samples the
server's RSS from ``/proc/<pid>/status`` and reads its peak (``VmHWM``) just before the SIGTERM.

Scenarios:

* ``single``: ``POST /generate {"seed": i, "format": "png"}`` -- one PNG image per request;
* ``n64``: ``POST /generate {"n": 64, "format": "base64"}`` -- 64 images per request, as JSON;
* ``n256``: the same with ``"n": 256`` (not run by default; ``benchmarks/gpu_check.sh`` runs it).

Modes: ``on`` = ``GAN_MAX_BATCH_IMAGES=256`` (the worker merges queued requests into one forward
pass); ``off`` = ``GAN_MAX_BATCH_IMAGES=1`` (one request per forward pass; a 64-image request is
still served whole, because ``InferenceWorker._next_batch`` always takes the first queued job
alone even when it is larger than the limit).

The ceiling is the in-process generator speed at batch 64, timed before any server starts with
``generator_speed.measure`` (the same code as ``benchmarks/generator_speed.py``).

Examples::

    python benchmarks/serving.py                         # full run on ./model_store
    python benchmarks/serving.py --random-model --quick  # smoke run, no trained model needed
    python benchmarks/serving.py --json bench-serving.json

This file is the command line; the harness it drives lives in ``benchmarks/harness/``
(``server``: the process under test, ``load``: wrk and httpx, ``runner``: rows, modes and the
whole run, ``report``: tables and summary).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from generator_speed import DTYPES, positive_int_list
from harness.load import SCENARIOS
from harness.runner import random_model_store, run
from harness.server import MODES

DEFAULT_CONCURRENCY = (1, 8, 32, 128)
QUICK_CONCURRENCY = (1, 8)


def _choices(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        values = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [v for v in values if v not in allowed]
        if not values or unknown:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return values

    return parse


def _add_workload_options(parser: argparse.ArgumentParser) -> None:
    """What is served and what is asked of it."""
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--store", type=Path, default=Path("model_store"), help="model store")
    model.add_argument(
        "--random-model",
        action="store_true",
        help="serve an untrained Generator(GeneratorConfig()) from a temporary store",
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per scenario row (default 10; 2 with --quick)"
    )
    parser.add_argument(
        "--concurrency",
        type=positive_int_list,
        help="comma-separated client concurrencies (default 1,8,32,128; 1,8 with --quick)",
    )
    parser.add_argument(
        "--scenarios",
        type=_choices(SCENARIOS),
        default=["single", "n64"],
        help="comma-separated, of single,n64,n256 (default single,n64)",
    )
    parser.add_argument("--modes", type=_choices(MODES), default=list(MODES), help="on,off")


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """The servers' settings and lifecycle."""
    parser.add_argument(
        "--max-batch-images", type=int, default=256, help="GAN_MAX_BATCH_IMAGES with batching on"
    )
    parser.add_argument(
        "--max-wait-ms", type=float, default=None, help="GAN_MAX_WAIT_MS (default: the app's)"
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=0,
        help="GAN_TORCH_THREADS of the servers and threads of the raw measurement "
        "(0 = the app's default, all cores but one)",
    )
    parser.add_argument(
        "--device",
        default=None,
        help="GAN_DEVICE of the servers and device of the raw ceiling (default: the app's "
        "auto for the servers, cpu for the raw ceiling)",
    )
    parser.add_argument(
        "--dtype",
        choices=sorted(DTYPES),
        default=None,
        help="GAN_DTYPE of the servers, and dtype of the raw ceiling on CUDA (default: the app's)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="GAN_KEY=VALUE",
        help="extra server setting (repeatable), e.g. GAN_REQUEST_TIMEOUT_S=30",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)


def _add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """The load generator, the sampling, the raw ceiling and the output."""
    parser.add_argument(
        "--client-timeout", type=float, default=60.0, help="httpx timeout of one request, s"
    )
    parser.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load generator: wrk (apt-get install wrk; default when present) or httpx",
    )
    parser.add_argument("--rss-interval", type=float, default=0.5, help="RSS sampling period, s")
    parser.add_argument(
        "--raw-min-time", type=float, default=3.0, help="timed seconds of the raw ceiling"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 s rows at concurrency 1 and 8, 0.5 s raw ceiling (an explicit "
        "--duration or --concurrency still wins)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results here")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    _add_workload_options(parser)
    _add_server_options(parser)
    _add_measurement_options(parser)
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.concurrency is None:
        args.concurrency = list(QUICK_CONCURRENCY if args.quick else DEFAULT_CONCURRENCY)
    if args.quick:
        args.raw_min_time = min(args.raw_min_time, 0.5)
    for item in args.server_env:
        if not re.fullmatch(r"GAN_[A-Z0-9_]+=.*", item):
            parser.error(f"--server-env wants GAN_KEY=VALUE, got {item!r}")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        workdir = Path(tmp)
        store = random_model_store(workdir) if args.random_model else args.store
        results = asyncio.run(run(args, store, workdir))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
