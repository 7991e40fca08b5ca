"""The server under test: one ``python -m app`` process on a free local port.

Its ``GAN_*`` settings per batching mode, start-up until ``/readyz`` answers, graceful stop
(SIGTERM, then SIGKILL), RSS read from ``/proc/<pid>/status`` and sampled while it runs, the
label-free series of its ``/metrics``, and :class:`ServerReport`, what its lifetime looked like.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
MODES = ("on", "off")


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

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def rss_kib(self) -> int | None:
        return proc_status_kib(self.pid, "VmRSS")

    def reset_peak_rss(self) -> bool:
        """Reset its VmHWM to its current RSS (``5`` into /proc/<pid>/clear_refs, Linux 4.0+),
        so that the next VmHWM is the peak since now; False where that is not allowed."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


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
    if getattr(args, "device", None) is not None:
        settings["GAN_DEVICE"] = args.device
    if getattr(args, "dtype", None) is not None:
        settings["GAN_DTYPE"] = args.dtype
    for item in args.server_env:
        key, _, value = item.partition("=")
        settings[key] = value
    return settings


def launch(args: argparse.Namespace, mode: str, store: Path, workdir: Path) -> Server:
    """Start ``python -m app`` with :func:`server_env` on a free port; does not wait for it."""
    state_dir = workdir / f"state-{mode}"
    state_dir.mkdir()
    return spawn(args.host, mode, server_env(args, mode, store, state_dir), workdir)


def spawn(
    host: str, mode: str, settings: dict[str, str], workdir: Path, own_group: bool = False
) -> Server:
    """Start ``python -m app`` with exactly ``settings`` (plus GAN_HOST and a free GAN_PORT),
    its output in ``workdir/server-<mode>.log``, in a new session if ``own_group``; does not
    wait for it."""
    port = free_port(host)
    settings = {**settings, "GAN_HOST": host, "GAN_PORT": str(port)}
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
            start_new_session=own_group,
        )
    return Server(mode, settings, process, f"http://{host}:{port}", log_path)


def start_server(
    args: argparse.Namespace, mode: str, store: Path, workdir: Path
) -> tuple[Server, float]:
    """Launch ``python -m app`` and wait until /readyz answers 200; returns it and its start-up
    time in seconds."""
    server = launch(args, mode, store, workdir)
    return server, wait_ready(server, args.startup_timeout, args.shutdown_timeout)


def wait_ready(server: Server, startup_timeout: float, shutdown_timeout: float) -> float:
    """Wait until /readyz answers 200; the seconds it took. Stops the server and raises if it
    exits or is not ready within ``startup_timeout``."""
    process, mode = server.process, server.mode
    started = time.monotonic()
    deadline = started + startup_timeout
    with httpx.Client(base_url=server.base_url, timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server ({mode}) exited with {process.returncode} before it was ready:\n"
                    f"{server.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/readyz").status_code == 200:
                    return time.monotonic() - started
            if time.monotonic() > deadline:
                stop_server(server, shutdown_timeout)
                raise RuntimeError(
                    f"server ({mode}) not ready after {startup_timeout:g}s:\n{server.log_tail()}"
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
