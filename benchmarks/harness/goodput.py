"""Goodput under overload: ``POST /generate {"n": 64, "format": "base64"}`` from wrk at a given
concurrency, counting answers by status in a Lua ``response()`` callback, so that only 200s count
as goodput (images/s = 200s x 64 / wrk's duration) and 503s (shed by admission control) are told
apart from other errors (other statuses, socket errors, wrk's timeouts).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from harness.hostile_scenarios import Watch, watched
from harness.server import Server

IMAGES_PER_REQUEST = 64
GOODPUT_BODY = '{"n": 64, "format": "base64"}'

GOODPUT_LUA = """
wrk.method = "POST"
wrk.path = "/generate"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '@BODY@'
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(merged) do table.insert(parts, status .. "=" .. n) end
  io.write("GOODPUT statuses ", table.concat(parts, ","), "\\n")
  local e = summary.errors
  io.write(string.format(
    "GOODPUT summary duration_us=%d connect=%d read=%d write=%d timeout=%d\\n",
    summary.duration, e.connect, e.read, e.write, e.timeout))
  io.write(string.format("GOODPUT latency p50_us=%d p99_us=%d\\n",
    latency:percentile(50), latency:percentile(99)))
end
""".replace("@BODY@", GOODPUT_BODY)


@dataclass
class GoodputLoad:
    """What wrk saw at one concurrency."""

    concurrency: int
    duration_s: float
    statuses: dict[int, int]  # answers by status
    socket_errors: dict[str, int]  # connect, read, write, timeout (wrk's --timeout)
    p50_ms: float | None  # over every answer (503s included), wrk's own histogram
    p99_ms: float | None

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def shed(self) -> int:
        return self.statuses.get(503, 0)

    @property
    def other_errors(self) -> int:
        others = sum(n for status, n in self.statuses.items() if status not in (200, 503))
        return others + sum(self.socket_errors.values())

    @property
    def images_per_s(self) -> float:
        return self.ok * IMAGES_PER_REQUEST / self.duration_s if self.duration_s else 0.0


def wrk_goodput(
    base_url: str, concurrency: int, duration_s: float, timeout_s: float
) -> GoodputLoad:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(GOODPUT_LUA)
    command = [
        "wrk", f"-t{min(2, concurrency)}", f"-c{concurrency}", f"-d{duration_s:g}s",
        "--timeout", f"{timeout_s:g}s", "-s", script.name, base_url,
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=duration_s + 60
        )
    finally:
        Path(script.name).unlink()
    return parse_goodput(concurrency, done.stdout)


def parse_goodput(concurrency: int, output: str) -> GoodputLoad:
    """The :class:`GoodputLoad` in the ``GOODPUT`` lines the Lua ``done()`` writes."""
    statuses_line = re.search(r"^GOODPUT statuses (.*)$", output, re.M)
    summary = re.search(r"^GOODPUT summary (.*)$", output, re.M)
    latency = re.search(r"^GOODPUT latency p50_us=(\d+) p99_us=(\d+)$", output, re.M)
    if statuses_line is None or summary is None:
        raise RuntimeError(f"wrk printed no GOODPUT lines:\n{output}")
    statuses = {
        int(status): int(n) for status, n in re.findall(r"(\d+)=(\d+)", statuses_line.group(1))
    }
    fields = {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", summary.group(1))}
    duration_s = fields.pop("duration_us") / 1e6
    p50 = int(latency.group(1)) / 1000 if latency else None
    p99 = int(latency.group(2)) / 1000 if latency else None
    return GoodputLoad(
        concurrency=concurrency,
        duration_s=duration_s,
        statuses=statuses,
        socket_errors={key: value for key, value in fields.items() if value},
        p50_ms=p50,
        p99_ms=p99,
    )


@dataclass
class GoodputRow:
    admission: str  # "on" (the app's GAN_MAX_QUEUE_WAIT_S) or "relaxed"
    load: GoodputLoad
    watch: Watch
    load_average_1m: float  # of the machine, as the row started
    worker_busy_pct: float | None  # forward-pass seconds / wall time, from /metrics
    forward_images_per_s: float | None  # images per forward-pass second: the CPU's speed then
    rejected: dict[str, float]  # requests shed by admission control, by reason, from /metrics


def metrics(host: str, port: int) -> dict[str, float]:
    """Every series of the server's /metrics by its full name (labels included); empty if it
    does not answer."""
    connection = http.client.HTTPConnection(host, port, timeout=5)
    try:
        connection.request("GET", "/metrics")
        text = connection.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    finally:
        connection.close()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name and not line.startswith("#"):
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def goodput_row(
    server: Server, host: str, admission: str, concurrency: int, duration_s: float,
    timeout_s: float,
) -> GoodputRow:  # fmt: skip
    """One wrk run, after the queue left by the previous one has drained (at most 30 s)."""
    end = time.monotonic() + 30
    while time.monotonic() < end and metrics(host, server.port).get("gan_queue_images", 0.0):
        time.sleep(0.2)
    load_average = os.getloadavg()[0]
    before = metrics(host, server.port)
    with watched(server, host) as watch:
        load = wrk_goodput(server.base_url, concurrency, duration_s, timeout_s)
    after = metrics(host, server.port)
    compute = delta(before, after, "gan_batch_compute_seconds_sum")
    images = delta(before, after, "gan_batch_images_sum")
    busy = 100 * compute / load.duration_s if compute is not None and load.duration_s else None
    speed = images / compute if images is not None and compute else None
    prefix = 'gan_rejected_requests_total{reason="'
    rejected = {
        name.removeprefix(prefix).rstrip('"}'): value - before.get(name, 0.0)
        for name, value in after.items()
        if name.startswith(prefix) and value - before.get(name, 0.0)
    }
    return GoodputRow(admission, load, watch, load_average, busy, speed, rejected)


def delta(before: dict[str, float], after: dict[str, float], name: str) -> float | None:
    return after[name] - before.get(name, 0.0) if name in after else None
