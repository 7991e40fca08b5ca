"""Load test of the HTTP service, dynamic batching on vs off, against local servers it starts.

For each mode it launches ``python -m app`` on 127.0.0.1 (a free port, a temporary state dir,
``GAN_*`` settings from the command line), waits for ``/readyz``, runs every scenario at every
concurrency for a fixed duration, then stops the server with SIGTERM. Meanwhile it samples the
server's RSS from ``/proc/<pid>/status`` and reads its peak (``VmHWM``) just before the SIGTERM.

Scenarios:

* ``single``: ``POST /generate {"seed": i, "format": "png"}`` -- one PNG image per request;
* ``n64``: ``POST /generate {"n": 64, "format": "base64"}`` -- 64 images per request, as JSON.

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
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import torch
from generator_speed import (
    BatchResult,
    environment,
    measure,
    positive_int_list,
    prepare_model,
)

from gan.networks import Generator, GeneratorConfig
from gan.store import WEIGHTS_FILE, Manifest, ModelStore, StoreError

REPO_ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCENARIOS = ("single", "n64")
MODES = ("on", "off")
DEFAULT_CONCURRENCY = (1, 8, 32, 128)
QUICK_CONCURRENCY = (1, 8)
RANDOM_VERSION = "bench"


# ----- server process ------------------------------------------------------------------------
def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def proc_status_kib(pid: int, key: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def mib(kib: int | None) -> float | None:
    return None if kib is None else kib / 1024


@dataclass
class Server:
    mode: str
    env: dict[str, str]  # the GAN_* settings it ran with
    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, KiB)

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int | None:
        return proc_status_kib(self.pid, "VmRSS")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def server_env(args: argparse.Namespace, mode: str, store: Path, state_dir: Path) -> dict[str, str]:
    max_concurrency = max(args.concurrency)
    settings = {
        "GAN_MODEL_STORE": str(store.resolve()),
        "GAN_MAX_BATCH_IMAGES": str(args.max_batch_images if mode == "on" else 1),
        "GAN_MAX_N": "256",
        # Room for every client's request at once, so that backpressure never sheds load here.
        "GAN_MAX_QUEUE_IMAGES": str(max(4096, 2 * 64 * max_concurrency)),
        "GAN_LOG_LEVEL": "WARNING",
        "GAN_RELOAD_INTERVAL_S": "0",
        "GAN_STATE_DIR": str(state_dir),
        "GAN_TORCH_THREADS": str(args.torch_threads),
    }
    if args.max_wait_ms is not None:
        settings["GAN_MAX_WAIT_MS"] = f"{args.max_wait_ms:g}"
    for item in args.server_env:
        key, _, value = item.partition("=")
        settings[key] = value
    return settings


def start_server(
    args: argparse.Namespace, mode: str, store: Path, workdir: Path
) -> tuple[Server, float]:
    """Launch ``python -m app`` and wait until /readyz answers 200; returns it and its start-up
    time in seconds."""
    state_dir = workdir / f"state-{mode}"
    state_dir.mkdir()
    port = free_port(args.host)
    settings = server_env(args, mode, store, state_dir)
    settings.update(GAN_HOST=args.host, GAN_PORT=str(port))
    # Only the settings above: GAN_* variables of the calling shell would make runs differ.
    env = {key: value for key, value in os.environ.items() if not key.startswith("GAN_")}
    env.update(settings)
    log_path = workdir / f"server-{mode}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(mode, settings, process, f"http://{args.host}:{port}", log_path)
    started = time.monotonic()
    deadline = started + args.startup_timeout
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server ({mode}) exited with {process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/readyz").status_code == 200:
                    return server, time.monotonic() - started
            if time.monotonic() > deadline:
                stop_server(server, args.shutdown_timeout)
                raise RuntimeError(
                    f"server ({mode}) not ready after {args.startup_timeout:g}s:\n"
                    f"{server.log_tail()}"
                )
            time.sleep(0.2)


def stop_server(server: Server, timeout: float) -> tuple[int | None, float, bool]:
    """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` s. Returns the exit code,
    the seconds the shutdown took and whether SIGKILL was needed. Uvicorn re-raises a caught
    SIGTERM once its graceful shutdown is done, so a clean exit reads -15 (or 0)."""
    started = time.monotonic()
    killed = False
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            killed = True
            server.process.kill()
            server.process.wait()
    return server.process.returncode, time.monotonic() - started, killed


async def sample_rss(server: Server, interval_s: float) -> None:
    while True:
        rss = server.rss_kib()
        if rss is not None:
            server.rss_samples.append((time.monotonic(), rss))
        await asyncio.sleep(interval_s)


async def scrape_metrics(client: httpx.AsyncClient) -> dict[str, float]:
    """The label-free series of /metrics (histogram sums and counts, totals) by name."""
    values: dict[str, float] = {}
    try:
        response = await client.get("/metrics")
    except httpx.HTTPError:
        return values
    for line in response.text.splitlines():
        if line.startswith("#"):
            continue
        name, _, value = line.partition(" ")
        if "{" in name:
            # Keep totals over labels for the counters we read (e.g. rejected by reason).
            base = name.split("{", 1)[0]
            with contextlib.suppress(ValueError):
                values[base] = values.get(base, 0.0) + float(value)
            continue
        with contextlib.suppress(ValueError):
            values[name] = float(value)
    return values


# ----- load generation -----------------------------------------------------------------------
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


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 100))  # ceil(n * q / 100)
    return sorted_values[int(rank) - 1]


def request_body(scenario: str, index: int) -> dict[str, Any]:
    if scenario == "single":
        return {"seed": index, "format": "png"}
    return {"n": 64, "format": "base64"}


def images_per_request(scenario: str) -> int:
    return 1 if scenario == "single" else 64


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
    return None if count == 64 else f"{count} images instead of 64"


@dataclass
class Load:
    """What the load generator saw in one row."""

    requests: int  # successful (200) responses
    errors: dict[str, int]
    wall_s: float
    p50_s: float | None
    p99_s: float | None


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
        wall_s=wall,
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


async def run_row(
    server: Server, scenario: str, concurrency: int, duration_s: float, timeout_s: float,
    client_kind: str = "wrk",
) -> Row:  # fmt: skip
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=server.base_url, limits=limits, timeout=timeout_s
    ) as client:
        before = await scrape_metrics(client)
        rss_start = server.rss_kib()
        if client_kind == "wrk":
            load = await asyncio.to_thread(wrk_load, server, scenario, concurrency, duration_s)
        else:
            load = await httpx_load(client, scenario, concurrency, duration_s)
        rss_end = server.rss_kib()
        after = await scrape_metrics(client)
    errors, wall = load.errors, load.wall_s

    def delta(name: str) -> float | None:
        if not after:  # /metrics unreachable
            return None
        return after.get(name, 0.0) - before.get(name, 0.0)  # labelled series appear on first use

    batches, batch_images = delta("gan_batch_images_count"), delta("gan_batch_images_sum")
    compute_s = delta("gan_batch_compute_seconds_sum")
    waits, wait_s = delta("gan_queue_wait_seconds_count"), delta("gan_queue_wait_seconds_sum")
    p50, p99 = load.p50_s, load.p99_s
    images = load.requests * images_per_request(scenario)
    return Row(
        mode=server.mode,
        scenario=scenario,
        concurrency=concurrency,
        duration_s=wall,
        requests=load.requests,
        images=images,
        errors=sum(errors.values()),
        error_kinds=errors,
        requests_per_s=load.requests / wall,
        images_per_s=images / wall,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        mean_batch_images=(batch_images / batches)
        if batches and batch_images is not None
        else None,
        worker_busy_pct=None if compute_s is None else 100 * compute_s / wall,
        queue_wait_ms=1000 * wait_s / waits if waits and wait_s is not None else None,
        rejected=delta("gan_rejected_requests_total"),
        rss_start_mib=mib(rss_start),
        rss_end_mib=mib(rss_end),
    )


@dataclass
class ServerReport:
    mode: str
    settings: dict[str, str]
    startup_s: float
    rss_ready_mib: float | None  # after warm-up, before the first request
    rss_load_start_mib: float | None
    rss_load_end_mib: float | None
    rss_max_sampled_mib: float | None
    peak_rss_mib: float | None  # VmHWM just before SIGTERM
    exit_code: int | None  # -15 (SIGTERM re-raised by uvicorn after a graceful shutdown) or 0
    shutdown_s: float
    killed: bool  # SIGKILL needed after --shutdown-timeout
    log_tail: str


async def run_mode(
    args: argparse.Namespace, mode: str, store: Path, workdir: Path
) -> tuple[list[Row], ServerReport]:
    server, startup_s = start_server(args, mode, store, workdir)
    rss_ready = server.rss_kib()
    rows: list[Row] = []
    sampler = asyncio.create_task(sample_rss(server, args.rss_interval))
    try:
        for scenario in args.scenarios:
            for concurrency in args.concurrency:
                if server.process.poll() is not None:
                    raise RuntimeError(
                        f"server ({mode}) died with {server.process.returncode}:\n"
                        f"{server.log_tail()}"
                    )
                row = await run_row(
                    server, scenario, concurrency, args.duration, args.client_timeout, args.client
                )
                rows.append(row)
                print(f"  {format_row(row)}", file=sys.stderr, flush=True)
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        peak = proc_status_kib(server.pid, "VmHWM")
        exit_code, shutdown_s, killed = await asyncio.to_thread(
            stop_server, server, args.shutdown_timeout
        )
    samples = [rss for _, rss in server.rss_samples]
    samples += [
        round(1024 * value)
        for row in rows
        for value in (row.rss_start_mib, row.rss_end_mib)
        if value is not None
    ]
    report = ServerReport(
        mode=mode,
        settings=server.env,
        startup_s=startup_s,
        rss_ready_mib=mib(rss_ready),
        rss_load_start_mib=rows[0].rss_start_mib if rows else None,
        rss_load_end_mib=rows[-1].rss_end_mib if rows else None,
        rss_max_sampled_mib=mib(max(samples)) if samples else None,
        peak_rss_mib=mib(peak),
        exit_code=exit_code,
        shutdown_s=shutdown_s,
        killed=killed,
        log_tail=server.log_tail(),
    )
    return rows, report


# ----- model store ---------------------------------------------------------------------------
@contextlib.contextmanager
def random_model_store(workdir: Path) -> Iterator[Path]:
    """A store holding one untrained ``Generator(GeneratorConfig())``, active as ``bench``."""
    torch.manual_seed(0)
    root = workdir / "random_model_store"
    store = ModelStore(root)
    config = GeneratorConfig()
    manifest = Manifest(
        kind="generator",
        version=RANDOM_VERSION,
        architecture=config.to_dict(),
        weights_file=WEIGHTS_FILE,
        weights_sha256="",
    )
    store.publish(manifest, Generator(config).state_dict())
    store.set_active(RANDOM_VERSION)
    yield root


# ----- report --------------------------------------------------------------------------------
def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def format_row(row: Row) -> str:
    return (
        f"| {row.mode} | {row.scenario} | {row.concurrency} | {row.requests_per_s:,.1f} "
        f"| {row.images_per_s:,.0f} | {_ms(row.p50_ms)} | {_ms(row.p99_ms)} | {row.errors} |"
    )


def main_table(rows: Sequence[Row]) -> str:
    lines = [
        "| batching | scenario | concurrency | requests/s | images/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [format_row(row) for row in rows]
    return "\n".join(lines)


def server_table(rows: Sequence[Row]) -> str:
    lines = [
        "| batching | scenario | concurrency | images/forward pass | worker busy % "
        "| queue wait ms | shed (503) | RSS start MiB | RSS end MiB | error kinds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(row.error_kinds.items())) or "-"
        lines.append(
            f"| {row.mode} | {row.scenario} | {row.concurrency} | {_num(row.mean_batch_images)} "
            f"| {_num(row.worker_busy_pct, 0)} | {_num(row.queue_wait_ms, 2)} "
            f"| {_num(row.rejected, 0)} "
            f"| {_num(row.rss_start_mib)} | {_num(row.rss_end_mib)} | {kinds} |"
        )
    return "\n".join(lines)


def find(rows: Sequence[Row], mode: str, scenario: str, concurrency: int) -> Row | None:
    for row in rows:
        if (row.mode, row.scenario, row.concurrency) == (mode, scenario, concurrency):
            return row
    return None


def summarise(
    rows: Sequence[Row], raw: BatchResult, reports: Sequence[ServerReport]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    on, off = find(rows, "on", "single", 32), find(rows, "off", "single", 32)
    summary["single_c32_rps_ratio_on_off"] = (
        on.requests_per_s / off.requests_per_s if on and off and off.requests_per_s else None
    )
    n64 = [row for row in rows if row.mode == "on" and row.scenario == "n64"]
    best = max(n64, key=lambda row: row.images_per_s) if n64 else None
    summary["n64_best_on"] = (
        None
        if best is None
        else {
            "concurrency": best.concurrency,
            "images_per_s": best.images_per_s,
            "pct_of_raw_forward": 100 * best.images_per_s / raw.forward_images_per_s,
            "pct_of_raw_end_to_end": 100 * best.images_per_s / raw.end_to_end_images_per_s,
        }
    )
    c128 = [row for row in rows if row.concurrency == 128]
    summary["errors_at_c128"] = sum(row.errors for row in c128) if c128 else None
    summary["servers"] = {
        report.mode: {
            "peak_rss_mib": report.peak_rss_mib,
            "rss_load_start_mib": report.rss_load_start_mib,
            "rss_load_end_mib": report.rss_load_end_mib,
            "rss_max_sampled_mib": report.rss_max_sampled_mib,
            "exit_code": report.exit_code,
            "shutdown_s": report.shutdown_s,
            "killed": report.killed,
        }
        for report in reports
    }
    return summary


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def summary_text(summary: dict[str, Any], raw: BatchResult) -> str:
    lines = ["", "Summary:"]
    ratio = summary["single_c32_rps_ratio_on_off"]
    lines.append(
        f"- single-image requests/s at concurrency 32, batching on / off: "
        f"{'n/a (not measured)' if ratio is None else f'{ratio:.2f}x'} "
        f"(target >= 2x: {_verdict(None if ratio is None else ratio >= 2)})"
    )
    best = summary["n64_best_on"]
    if best is None:
        lines.append("- n64 served vs raw generator: n/a (not measured)")
    else:
        pct = best["pct_of_raw_forward"]
        lines.append(
            f"- n64 served images/s (batching on, best at concurrency {best['concurrency']}): "
            f"{best['images_per_s']:,.0f} = {pct:.0f}% of the raw generator's forward pass at "
            f"batch 64 ({raw.forward_images_per_s:,.0f} img/s; target >= 80%: "
            f"{_verdict(pct >= 80)}); {best['pct_of_raw_end_to_end']:.0f}% of the worker's "
            f"latents+forward+to_uint8 at batch 64 ({raw.end_to_end_images_per_s:,.0f} img/s)"
        )
        if pct > 100:
            lines.append(
                "  NOTE: above the batch-64 ceiling. With batching on the worker merges n64 "
                "requests into larger forward passes (see images/forward pass), which can beat "
                "batch 64; otherwise the raw measurement was disturbed (busy CPUs?)"
            )
    errors = summary["errors_at_c128"]
    lines.append(
        f"- errors at concurrency 128 (all modes and scenarios): "
        f"{'n/a (not measured)' if errors is None else errors} "
        f"(target 0: {_verdict(None if errors is None else errors == 0)})"
    )
    for mode, server in summary["servers"].items():
        lines.append(
            f"- server, batching {mode}: peak RSS (VmHWM) {_num(server['peak_rss_mib'])} MiB; "
            f"RSS at start of load {_num(server['rss_load_start_mib'])} MiB, at end "
            f"{_num(server['rss_load_end_mib'])} MiB, highest sampled "
            f"{_num(server['rss_max_sampled_mib'])} MiB; SIGTERM to exit "
            f"{server['shutdown_s']:.1f} s, exit code {server['exit_code']}"
            + (" (SIGKILLed: graceful shutdown timed out)" if server["killed"] else "")
        )
    return "\n".join(lines)


# ----- command line --------------------------------------------------------------------------
def _choices(allowed: Sequence[str]) -> Any:
    def parse(text: str) -> list[str]:
        values = [part.strip() for part in text.split(",") if part.strip()]
        unknown = [v for v in values if v not in allowed]
        if not values or unknown:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(allowed)}")
        return values

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
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
        "--scenarios", type=_choices(SCENARIOS), default=list(SCENARIOS), help="single,n64"
    )
    parser.add_argument("--modes", type=_choices(MODES), default=list(MODES), help="on,off")
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
        "--server-env",
        action="append",
        default=[],
        metavar="GAN_KEY=VALUE",
        help="extra server setting (repeatable), e.g. GAN_REQUEST_TIMEOUT_S=30",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
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


async def run(args: argparse.Namespace, store: Path, workdir: Path) -> dict[str, Any]:
    # The raw ceiling runs with the servers' thread count (the app's default: all cores but one).
    torch.set_num_threads(args.torch_threads or max(1, (os.cpu_count() or 2) - 1))
    try:
        ModelStore(store).active_version()
    except StoreError as error:
        raise SystemExit(
            f"{error}\nTrain and publish a model first, pass --store, or use --random-model."
        ) from error
    mut = prepare_model(store, None, random_init=False)
    raw = measure(mut, 64, min_time_s=args.raw_min_time)  # in a thread, like the worker
    env = environment(mut)
    del mut
    print(
        f"Raw generator {env['model']} at batch 64 ({env['torch_threads']} torch threads, "
        f"{env['cpu_count']} CPUs): forward {raw.forward_images_per_s:,.0f} img/s, "
        f"latents+forward+to_uint8 {raw.end_to_end_images_per_s:,.0f} img/s",
        file=sys.stderr,
        flush=True,
    )
    rows: list[Row] = []
    reports: list[ServerReport] = []
    for mode in args.modes:
        print(f"batching {mode}:", file=sys.stderr, flush=True)
        mode_rows, report = await run_mode(args, mode, store, workdir)
        rows += mode_rows
        reports.append(report)
    summary = summarise(rows, raw, reports)
    print(
        f"\nServing benchmark: model {env['model']}, {args.duration:g} s per row, "
        f"client and server on the same {env['cpu_count']}-CPU machine (load average before "
        f"the run: {env['load_average_1m']})\n"
    )
    print(main_table(rows))
    print("\nServer side (from /metrics and /proc):\n")
    print(server_table(rows))
    print(summary_text(summary, raw))
    return {
        "environment": env,
        "config": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(args).items()
        },
        "raw_generator_batch64": asdict(raw),
        "rows": [asdict(row) for row in rows],
        "servers": [asdict(report) for report in reports],
        "summary": summary,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gan-bench-") as tmp:
        workdir = Path(tmp)
        with contextlib.ExitStack() as stack:
            store = (
                stack.enter_context(random_model_store(workdir))
                if args.random_model
                else args.store
            )
            results = asyncio.run(run(args, store, workdir))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
