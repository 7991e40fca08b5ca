"""A real server process for end-to-end tests: ``python -m app`` on a free loopback port, its
output in a log file, stopped by PID (SIGTERM, then SIGKILL) however the test ends."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
        """(status, body) of a GET; HTTP errors are answers too."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=timeout_s) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}:\n{self.log()}")
            try:
                if self.get("/readyz", timeout_s=1.0)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready within {timeout_s}s:\n{self.log()}")


def server_env(store: Path, state_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a quiet, fast test server: CPU, one torch thread, no warm-up."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GAN_")}
    env.update(
        GAN_MODEL_STORE=str(store),
        GAN_STATE_DIR=str(state_dir),
        GAN_PORT=str(port),
        GAN_DEVICE="cpu",
        GAN_TORCH_THREADS="1",
        GAN_WARMUP_BATCHES="0",
        GAN_RELOAD_INTERVAL_S="0",
        GAN_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update({f"GAN_{key.upper()}": value for key, value in settings.items()})
    return env


@contextmanager
def running_server(
    store: Path, workdir: Path, *, ready: bool = True, **settings: str
) -> Iterator[ServerProcess]:
    """``python -m app`` serving ``store``; ``settings`` become ``GAN_*`` variables."""
    port = free_port()
    log_path = workdir / f"server-{port}.log"
    env = server_env(store, workdir / "state", port, **settings)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    server = ServerProcess(process, port, log_path)
    try:
        if ready:
            server.wait_ready()
        yield server
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 20.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
