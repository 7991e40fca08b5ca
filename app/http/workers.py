"""Several worker processes on one port (``GAN_WORKERS``), so that every core serves.

One process under one GIL runs the event loop, the inference thread and the PNG encoder in
turn; on 2 cores it left the second core mostly idle (benchmarks/PROFILE.md). With N workers a
small supervisor binds the listening socket once and starts N copies of ``python -m app``; each
inherits the socket (the kernel hands each new connection to one of them), loads the active
model and batches its own requests. The supervisor imports neither torch nor the app.

Worker 0 is the primary: the only one that runs retraining jobs and activates versions, and so
the one place the admin and job endpoints live. The others relay those requests to it over a
Unix socket (``app.http.forwarding``). An activation swaps the primary at once; the others follow
the store's ACTIVE pointer within ``FOLLOW_INTERVAL_S``, and the primary answers once every
worker reports the new version (or after ``FOLLOW_WAIT_S``). A worker that dies is started again;
SIGTERM is passed on to every worker, each drains as a single server would.

Metrics: prometheus_client's multiprocess mode (a directory of memory-mapped files, one set per
process), so ``/metrics`` on any worker counts the requests of all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from app.config import Settings

log = logging.getLogger(__name__)

FOLLOW_INTERVAL_S = 0.25  # how often a worker looks at the ACTIVE pointer (one small file read)
FOLLOW_WAIT_S = 30.0  # longest an activation waits for the other workers to swap
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)  # delay before restarting a worker that keeps dying
STABLE_S = 30.0  # a worker that lived this long resets the backoff
CONFIG_ERROR = 2  # exit status of a worker (and of python -m app) refused by its settings
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerRole:
    """One worker's place among its peers, given by the supervisor on the command line."""

    index: int
    count: int
    runtime_dir: Path  # private to one supervisor: sockets and the workers' served versions

    @property
    def primary(self) -> bool:
        return self.index == 0

    @property
    def primary_socket(self) -> Path:
        return self.runtime_dir / "primary.sock"

    def _serving_file(self, index: int) -> Path:
        return self.runtime_dir / f"serving-{index}"

    def report_serving(self, version: str) -> None:
        """Record the version this worker serves now (atomically: a reader never sees half)."""
        path = self._serving_file(self.index)
        partial = path.with_suffix(".partial")
        partial.write_text(version)
        partial.replace(path)

    def serving(self) -> list[str | None]:
        """The version each worker last reported (None: not yet, or unreadable)."""
        versions: list[str | None] = []
        for index in range(self.count):
            try:
                versions.append(self._serving_file(index).read_text())
            except OSError:
                versions.append(None)
        return versions

    async def wait_for_peers(self, version: str, timeout_s: float = FOLLOW_WAIT_S) -> bool:
        """Wait until every worker serves ``version``; False if some did not within the time."""
        deadline = time.monotonic() + timeout_s
        while any(served != version for served in self.serving()):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(FOLLOW_INTERVAL_S / 2)
        return True


def worker_arguments(argv: list[str]) -> tuple[WorkerRole, int] | None:
    """The role and listening descriptor a supervisor passed (``python -m app --worker ...``),
    or None when started by a user."""
    parser = argparse.ArgumentParser(prog="python -m app", add_help=True)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # INDEX/COUNT
    parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--runtime-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is None:
        return None
    index, _, count = args.worker.partition("/")
    return WorkerRole(int(index), int(count), args.runtime_dir), args.listen_fd


def worker_sockets(role: WorkerRole, listen_fd: int) -> list[socket.socket]:
    """The inherited TCP socket, and for the primary its Unix socket for the relayed requests."""
    sockets = [socket.socket(fileno=listen_fd)]
    if role.primary:
        path = role.primary_socket
        path.unlink(missing_ok=True)  # left by a primary that died
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        unix.bind(str(path))
        unix.listen(128)
        sockets.append(unix)
    return sockets


def default_torch_threads(workers: int) -> int:
    """Intra-op threads per worker: the cores shared out, one per worker left to its loop."""
    return max(1, (os.cpu_count() or 2) // workers - 1)


def _end_with_parent() -> None:
    """In the new worker, before exec: SIGTERM when the supervisor dies (even by SIGKILL), so no
    orphan keeps serving on the port. Linux's prctl(PR_SET_PDEATHSIG); elsewhere, nothing."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Starts ``count`` workers on one socket, restarts the ones that die, stops them all."""

    def __init__(self, settings: Settings, count: int) -> None:
        self.settings = settings
        self.count = count
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="gan-workers-"))
        (self.runtime_dir / "metrics").mkdir()
        self.listener = socket.create_server(
            (settings.host, settings.port), backlog=2048, reuse_port=False
        )
        self.listener.set_inheritable(True)
        self.stop_signal: int | None = None  # the signal that is stopping the workers
        self.signalled: set[int] = set()  # workers it was passed on to
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * count
        self.started: list[float] = [0.0] * count
        self.failures: list[int] = [0] * count

    def _start(self, index: int) -> None:
        env = {**os.environ, METRICS_ENV: str(self.runtime_dir / "metrics")}
        if not self.settings.torch_threads:
            env["GAN_TORCH_THREADS"] = str(default_torch_threads(self.count))
        command = [
            sys.executable,
            "-m",
            "app",
            "--worker",
            f"{index}/{self.count}",
            "--listen-fd",
            str(self.listener.fileno()),
            "--runtime-dir",
            str(self.runtime_dir),
        ]
        self.workers[index] = subprocess.Popen(
            command,
            env=env,
            pass_fds=[self.listener.fileno()],
            # Its own process group: a terminal's Ctrl-C reaches the supervisor alone, which
            # passes it on once (a second SIGINT would make uvicorn skip the graceful shutdown).
            process_group=0,
            preexec_fn=_end_with_parent,
        )
        self.started[index] = time.monotonic()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        """The first SIGTERM/SIGINT is passed on once to each worker (each drains); another one
        is passed on again (each then stops at once, as a lone server does)."""
        del frame
        if self.stop_signal is not None:
            self.signalled.clear()
        self.stop_signal = signum
        self._pass_on_stop()

    def _pass_on_stop(self) -> None:
        for process in self.workers:
            if process is not None and process.poll() is None and process.pid not in self.signalled:
                process.send_signal(self.stop_signal or signal.SIGTERM)
                self.signalled.add(process.pid)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        log.info("starting %d workers", self.count, extra={"runtime_dir": str(self.runtime_dir)})
        status = 0
        try:
            for index in range(self.count):
                self._start(index)
            while self.stop_signal is None and not status:
                time.sleep(0.2)
                status = self._restart_dead()
            self._pass_on_stop()  # also to a worker started as the signal arrived
            for process in self.workers:
                if process is not None:
                    process.wait()
        finally:
            self.listener.close()
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        return status

    def _restart_dead(self) -> int:
        """Start again each worker that ended; a nonzero status to stop with, else 0."""
        from prometheus_client import multiprocess

        for index, process in enumerate(self.workers):
            if process is None or process.poll() is None or self.stop_signal is not None:
                continue
            multiprocess.mark_process_dead(process.pid, str(self.runtime_dir / "metrics"))
            if process.returncode == CONFIG_ERROR:
                return CONFIG_ERROR  # the settings are wrong: every restart would fail the same
            lived_s = time.monotonic() - self.started[index]
            self.failures[index] = 0 if lived_s > STABLE_S else self.failures[index] + 1
            delay = RESTART_BACKOFF_S[min(self.failures[index], len(RESTART_BACKOFF_S) - 1)]
            log.error(
                "worker %d (pid %d) exited with %s; restarting in %.1fs",
                index,
                process.pid,
                process.returncode,
                delay,
            )
            time.sleep(delay)
            if self.stop_signal is None:
                self._start(index)
        return 0


def supervise(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        supervisor = Supervisor(settings, settings.worker_count())
    except OSError as error:  # the port is taken, or the address is not this host's
        print(f"error: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return 1
    return supervisor.run()
