"""Load generation: what a scenario sends and expects, and the two clients that send it.

:func:`wrk_load` drives the server with ``wrk`` (a Lua script numbers the seeds) and parses its
report; :func:`httpx_load` runs ``concurrency`` httpx workers in this process. Both return a
:class:`Load`; :class:`Row` is one measured row (a mode, scenario and concurrency), client and
server side together, and :func:`percentile` the nearest-rank percentile they use.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.server import Server

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIOS = ("single", "n64", "n256")
IMAGES = {"single": 1, "n64": 64, "n256": 256}


@dataclass
class Row:
    mode: str
    scenario: str
    concurrency: int
    duration_s: float
    requests: int  # successful (200) responses
    images: int  # images in successful responses
    errors: int  # non-200 responses and exceptions
    error_kinds: dict[str, int]
    requests_per_s: float
    images_per_s: float
    p50_ms: float | None  # over successful requests
    p99_ms: float | None
    mean_batch_images: float | None  # server side: images per forward pass
    worker_busy_pct: float | None  # server side: forward-pass time / wall time
    queue_wait_ms: float | None  # server side: mean time from enqueue to its batch's start
    rejected: float | None  # server side: requests shed by backpressure
    rss_start_mib: float | None
    rss_end_mib: float | None


@dataclass
class Load:
    """What the load generator saw in one row."""

    requests: int  # successful (200) responses
    errors: dict[str, int]
    wall_s: float
    p50_s: float | None
    p99_s: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100)
    return sorted_values[int(rank) - 1]


def request_body(scenario: str, index: int) -> dict[str, Any]:
    if scenario == "single":
        return {"seed": index, "format": "png"}
    return {"n": IMAGES[scenario], "format": "base64"}


def images_per_request(scenario: str) -> int:
    return IMAGES[scenario]


def check_response(scenario: str, response: httpx.Response) -> str | None:
    """Why a 200 response is not what was asked for, or None. Run on one response per row."""
    if scenario == "single":
        if not response.content.startswith(PNG_SIGNATURE):
            return "not a PNG"
        return None
    try:
        count = len(response.json()["images"])
    except (ValueError, KeyError, TypeError):
        return "not a JSON body with images"
    wanted = IMAGES[scenario]
    return None if count == wanted else f"{count} images instead of {wanted}"


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, "/generate", nil, %s)
end
"""


def wrk_load(server: Server, scenario: str, concurrency: int, duration_s: float) -> Load:
    """Drive the server with wrk (C, epoll): a Python client on the same 2 cores saturates first
    (httpx's AsyncClient managed only ~230 req/s of /healthz at concurrency 32, ~76 at 128)."""
    body = (
        '\'{"seed": \' .. counter .. \', "format": "png"}\''
        if scenario == "single"
        else "'" + json.dumps(request_body(scenario, 0)) + "'"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % body)
    threads = min(2, concurrency)
    command = [
        "wrk", f"-t{threads}", f"-c{concurrency}", f"-d{duration_s:g}s", "--latency",
        "--timeout", "60s", "-s", script.name, server.base_url,
    ]  # fmt: skip
    started = time.monotonic()
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    wall = time.monotonic() - started
    Path(script.name).unlink()
    return parse_wrk(output, wall)


def parse_wrk(output: str, wall_s: float) -> Load:
    """The :class:`Load` in wrk's ``--latency`` report."""
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors: dict[str, int] = {}
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors["HTTP non-2xx"] = int(non_2xx.group(1))
    if socket := re.search(r"Socket errors: (.*)", output):
        errors["socket"] = sum(int(n) for n in re.findall(r"\d+", socket.group(1)))
    quantiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", output, re.M))
    return Load(
        requests=total - errors.get("HTTP non-2xx", 0),
        errors={k: v for k, v in errors.items() if v},
        wall_s=wall_s,
        p50_s=_wrk_seconds(quantiles.get("50")),
        p99_s=_wrk_seconds(quantiles.get("99")),
    )


def _wrk_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * units[unit]


async def httpx_load(
    client: httpx.AsyncClient, scenario: str, concurrency: int, duration_s: float
) -> Load:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    checked: list[str | None] = []
    counter = iter(range(10**12))

    async def worker(end: float) -> None:
        while time.monotonic() < end:
            body = request_body(scenario, next(counter))
            sent = time.perf_counter()
            try:
                response = await client.post("/generate", json=body)
            except Exception as error:  # any failure of one request counts as an error
                kind = type(error).__name__
                errors[kind] = errors.get(kind, 0) + 1
                continue
            elapsed = time.perf_counter() - sent
            if response.status_code != 200:
                kind = f"HTTP {response.status_code}"
                errors[kind] = errors.get(kind, 0) + 1
                continue
            if not checked:
                checked.append(check_response(scenario, response))
            latencies.append(elapsed)

    started = time.monotonic()
    await asyncio.gather(*(worker(started + duration_s) for _ in range(concurrency)))
    wall = time.monotonic() - started  # includes the requests in flight at the end
    if checked and checked[0] is not None:
        errors[f"bad body: {checked[0]}"] = errors.get(f"bad body: {checked[0]}", 0) + 1
    latencies.sort()
    return Load(len(latencies), errors, wall, percentile(latencies, 50), percentile(latencies, 99))
