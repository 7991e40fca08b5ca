"""The peers benchmark's servers and cells: this project (``python -m app``, through
:func:`harness.server.spawn`) against the peer servers of ``benchmarks/peers/`` (LitServe and a
naive FastAPI app), each a process group of its own, all on the same model and request.

A cell is one server at one concurrency: wrk with one thread (``-t1``) sends ``POST /generate
{"digit": i % 10, "seed": i, "format": "png"}`` (the serving benchmark's Lua script with a digit,
seeds numbered from an offset so that no cell repeats another's) and reports req/s and p50/p99;
the server's processes' CPU seconds and RSS are read from ``/proc`` around it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from harness.load import PNG_SIGNATURE, WRK_SCRIPT, Load, parse_wrk
from harness.server import REPO_ROOT, Server, free_port, spawn

SERVERS = ("project", "litserve", "naive", "single")
LABELS = {
    "project": "this project",
    "litserve": "LitServe",
    "naive": "naive FastAPI",
    "single": "this project, 1 worker",
}
PROJECT_WORKERS = {"project": "0", "single": "1"}  # GAN_WORKERS: 0 = one per core
PEER_SCRIPTS = {
    "litserve": REPO_ROOT / "benchmarks" / "peers" / "litserve_server.py",
    "naive": REPO_ROOT / "benchmarks" / "peers" / "naive_server.py",
}
SANITY_BODY = {"digit": 7, "seed": 42, "format": "png"}
CELL_BODY = (
    '\'{"digit": \' .. (counter % 10) .. \', "seed": \' .. counter .. \', "format": "png"}\''
)
GROUP = "process_group"  # Server.env key: set when the server leads its own process group


@dataclass
class Cell:
    server: str
    concurrency: int
    duration_s: float  # wall time of the wrk run
    requests: int  # 2xx responses
    requests_per_s: float
    p50_ms: float | None  # wrk's latency histogram (every answer)
    p99_ms: float | None
    errors: int  # non-2xx answers and socket errors
    error_kinds: dict[str, int]
    load_average_1m: float  # of the machine, as the cell started
    server_cpu_s: float | None  # CPU seconds of the server's processes during the cell
    server_rss_mib: float | None  # RSS of the server's processes after the cell
    round: int = 0  # which pass over the servers (serving_peers --rounds)


# ----- processes ------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from the state field on (the command name may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def group_pids(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (the project's workers lead process groups of their
    own, so that a terminal's Ctrl-C reaches only their supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        fields = _stat_fields(int(entry.name)) if entry.name.isdigit() else None
        if fields and fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def server_pids(server: Server) -> list[int]:
    if server.env.get(GROUP):
        return sorted(set(group_pids(server.pid)) | set(descendants(server.pid)))
    return [server.pid] if server.process.poll() is None else []


def cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def rss_mib(pids: list[int]) -> float | None:
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024 if pids else None


# ----- starting and stopping ------------------------------------------------------------------
def project_settings(
    store: Path,
    state_dir: Path,
    torch_threads: int,
    device: str | None,
    extra: list[str],
    workers: str = "1",
) -> dict[str, str]:
    """The app's defaults, but quiet, on ``store``, with a private state dir; ``torch_threads``
    0 leaves the threads to the app (with several workers: the cores shared out)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "GAN_MODEL_STORE": str(store.resolve()),
        "GAN_STATE_DIR": str(state_dir),
        "GAN_LOG_LEVEL": "WARNING",
        "GAN_RELOAD_INTERVAL_S": "0",
        "GAN_WORKERS": workers,
    }
    if torch_threads:
        settings["GAN_TORCH_THREADS"] = str(torch_threads)
    if device is not None:
        settings["GAN_DEVICE"] = device
    for item in extra:
        key, _, value = item.partition("=")
        settings[key] = value
    return settings


def spawn_project(
    name: str,
    host: str,
    store: Path,
    workdir: Path,
    torch_threads: int,
    device: str | None,
    extra: list[str],
) -> Server:
    """``python -m app`` as ``name`` (``PROJECT_WORKERS``), in its own process group: with
    several workers its CPU is the group's, and the group is stopped together."""
    settings = project_settings(
        store, workdir / f"state-{name}", torch_threads, device, extra, PROJECT_WORKERS[name]
    )
    server = spawn(host, name, settings, workdir, own_group=True)
    server.env[GROUP] = "1"  # recorded, not in the process's environment (already started)
    return server


def spawn_peer(
    name: str, host: str, store: Path, workdir: Path, torch_threads: int, device: str | None,
    http: str, extra_args: list[str] | None = None,
) -> Server:  # fmt: skip
    """Start a peer of ``benchmarks/peers/`` in a new session (its own process group), its
    output in ``workdir/server-<name>.log``; does not wait for it. ``extra_args`` go to its
    command line (e.g. ``--fast-queue`` for LitServe)."""
    port = free_port(host)
    command = [
        sys.executable, str(PEER_SCRIPTS[name]), "--host", host, "--port", str(port),
        "--store", str(store.resolve()), "--torch-threads", str(torch_threads),
        "--device", device or "cpu", "--http", http, *(extra_args or []),
    ]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if not key.startswith("GAN_")}
    log_path = workdir / f"server-{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    settings = {"command": " ".join(command[1:]), GROUP: "1"}
    return Server(name, settings, process, f"http://{host}:{port}", log_path)


def stop_group(server: Server, timeout: float) -> tuple[int | None, float, bool]:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after ``timeout``.
    Returns the leader's exit code, the seconds it took and whether SIGKILL was needed."""
    started = time.monotonic()
    pgid = server.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = started + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(max(0.0, deadline - time.monotonic()))
    while group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    killed = False
    if group_pids(pgid) or server.process.poll() is None:
        killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        server.process.wait()
    return server.process.returncode, time.monotonic() - started, killed


# ----- measuring ------------------------------------------------------------------------------
def sanity(server: Server) -> dict[str, Any]:
    """One ``{"digit": 7, "seed": 42, "format": "png"}``: status, PNG or not, its sha256."""
    try:
        response = httpx.post(f"{server.base_url}/generate", json=SANITY_BODY, timeout=30)
    except httpx.HTTPError as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}
    body = response.content
    return {
        "ok": response.status_code == 200 and body.startswith(PNG_SIGNATURE),
        "status": response.status_code,
        "content_type": response.headers.get("content-type"),
        "model_version": response.headers.get("x-model-version"),
        "bytes": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


def wrk_cell(
    base_url: str, concurrency: int, duration_s: float, timeout_s: float, seed_offset: int
) -> Load:
    """wrk -t1 at ``concurrency``: single PNGs, seeds from ``seed_offset`` + 1 on."""
    script_text = WRK_SCRIPT.replace("local counter = 0", f"local counter = {seed_offset}")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text % CELL_BODY)
    command = [
        "wrk", "-t1", f"-c{concurrency}", f"-d{duration_s:g}s", "--latency",
        "--timeout", f"{timeout_s:g}s", "-s", script.name, base_url,
    ]  # fmt: skip
    started = time.monotonic()
    try:
        output = subprocess.run(
            command, capture_output=True, text=True, check=True, timeout=duration_s + 60
        ).stdout
    finally:
        Path(script.name).unlink()
    return parse_wrk(output, time.monotonic() - started)


def measure_cell(
    server: Server,
    concurrency: int,
    duration_s: float,
    timeout_s: float,
    seed_offset: int,
    round_index: int = 0,
) -> Cell:
    if server.process.poll() is not None:
        raise RuntimeError(
            f"{server.mode} exited with {server.process.returncode}:\n{server.log_tail()}"
        )
    load_average = os.getloadavg()[0]
    cpu_before = cpu_seconds(server_pids(server))
    load = wrk_cell(server.base_url, concurrency, duration_s, timeout_s, seed_offset)
    pids = server_pids(server)
    cpu_after = cpu_seconds(pids)
    return Cell(
        server=server.mode,
        concurrency=concurrency,
        duration_s=load.wall_s,
        requests=load.requests,
        requests_per_s=load.requests / load.wall_s if load.wall_s else 0.0,
        p50_ms=None if load.p50_s is None else load.p50_s * 1000,
        p99_ms=None if load.p99_s is None else load.p99_s * 1000,
        errors=sum(load.errors.values()),
        error_kinds=load.errors,
        load_average_1m=load_average,
        server_cpu_s=cpu_after - cpu_before if pids else None,
        server_rss_mib=rss_mib(pids),
        round=round_index,
    )


# ----- reporting ------------------------------------------------------------------------------
def find(cells: list[Cell], server: str, concurrency: int) -> Cell | None:
    """The cell of ``server`` at ``concurrency``; over several rounds, one whose req/s, p50 and
    p99 are the medians of the rounds' (each median on its own)."""
    found = [c for c in cells if (c.server, c.concurrency) == (server, concurrency)]
    if len(found) <= 1:
        return found[0] if found else None
    return replace(
        found[0],
        requests=sum(c.requests for c in found),
        requests_per_s=statistics.median(c.requests_per_s for c in found),
        p50_ms=_median_or_none([c.p50_ms for c in found]),
        p99_ms=_median_or_none([c.p99_ms for c in found]),
        errors=sum(c.errors for c in found),
    )


def _median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratios(cells: list[Cell], concurrencies: list[int]) -> dict[str, dict[str, float | None]]:
    """req/s of the project / req/s of each peer, per concurrency (None where one is missing):
    the ratio within each round (servers measured minutes apart, not half an hour), then the
    median over the rounds."""
    per_round = round_ratios(cells, concurrencies)
    result: dict[str, dict[str, float | None]] = {}
    for pair in per_round[0] if per_round else {}:
        result[pair] = {
            str(c): _median_or_none([one[pair][str(c)] for one in per_round]) for c in concurrencies
        }
    return result


def round_ratios(
    cells: list[Cell], concurrencies: list[int]
) -> list[dict[str, dict[str, float | None]]]:
    """The project / peer ratios of each round on its own."""
    result = []
    for round_index in sorted({c.round for c in cells}):
        of_round = [c for c in cells if c.round == round_index]
        pairs: dict[str, dict[str, float | None]] = {}
        for peer in SERVERS[1:]:
            per_c: dict[str, float | None] = {}
            for concurrency in concurrencies:
                ours, theirs = (
                    find(of_round, "project", concurrency),
                    find(of_round, peer, concurrency),
                )
                per_c[str(concurrency)] = (
                    ours.requests_per_s / theirs.requests_per_s
                    if ours and theirs and theirs.requests_per_s
                    else None
                )
            pairs[f"project/{peer}"] = per_c
        result.append(pairs)
    return result


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cell_text(cell: Cell | None) -> tuple[str, str]:
    if cell is None:
        return "-", "-"
    rate = f"{cell.requests_per_s:,.1f}" + (f" ({cell.errors} err)" if cell.errors else "")
    return rate, f"{_ms(cell.p50_ms)} / {_ms(cell.p99_ms)}"


def table(cells: list[Cell], servers: list[str], concurrencies: list[int]) -> str:
    """One row per concurrency: req/s and p50 / p99 per server, then the project's ratios."""
    peers = [peer for peer in SERVERS[1:] if peer in servers and "project" in servers]
    head = ["c"]
    for name in servers:
        head += [f"{LABELS[name]} req/s", f"{LABELS[name]} p50 / p99 ms"]
    head += [f"project / {LABELS[peer]}" for peer in peers]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    ratio = ratios(cells, concurrencies)
    for concurrency in concurrencies:
        row = [str(concurrency)]
        for name in servers:
            row += list(_cell_text(find(cells, name, concurrency)))
        for peer in peers:
            value = ratio[f"project/{peer}"][str(concurrency)]
            row.append("-" if value is None else f"{value:.2f}x")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def detail_table(cells: list[Cell]) -> str:
    """Per cell: what the server's processes spent, and the errors."""
    lines = [
        "| server | c | requests | server CPU s | server CPU s / 1k req | RSS MiB | load avg "
        "| errors |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for cell in cells:
        per_k = (
            f"{1000 * cell.server_cpu_s / cell.requests:.2f}"
            if cell.server_cpu_s is not None and cell.requests
            else "-"
        )
        kinds = ", ".join(f"{k}: {v}" for k, v in sorted(cell.error_kinds.items())) or "-"
        cpu = "-" if cell.server_cpu_s is None else f"{cell.server_cpu_s:.1f}"
        rss = "-" if cell.server_rss_mib is None else f"{cell.server_rss_mib:.0f}"
        lines.append(
            f"| {LABELS[cell.server]} | {cell.concurrency} | {cell.requests} | {cpu} | {per_k} "
            f"| {rss} | {cell.load_average_1m:.2f} | {kinds} |"
        )
    return "\n".join(lines)
