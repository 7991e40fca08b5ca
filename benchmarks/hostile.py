"""Hostile input and faults against the real server: what a hostile or broken client gets, how
long it takes, and what it costs everybody else (/healthz latency meanwhile, the server's RSS).

It starts ``python -m app`` (the shipped model in ./model_store, or ``--random-model``) on
127.0.0.1 and free ports, the app's defaults except where said:

1. the hostile server (``GAN_MAX_CONNECTIONS=200``, ``GAN_HEADER_TIMEOUT_S=5`` by default): a
   baseline of /healthz alone; a 50,000-parameter Content-Type on ``POST /restore`` (a ~250 KB
   head); a 128 MiB header; 3 x the connection cap of idle connections; a head sent one byte
   every 0.5 s (slowloris); non-finite JSON numbers on ``POST /generate``;
2. then two goodput servers side by side, both with ``GAN_MAX_HEADER_BYTES`` at its 1 MiB cap:
   ``on`` keeps the app's admission control (``GAN_MAX_QUEUE_WAIT_S`` default), ``relaxed``
   sets ``GAN_MAX_QUEUE_WAIT_S=1000`` (off). The 50,000-parameter head is sent to ``on`` again,
   where the 1 MiB limit lets it reach the app. Then wrk sends ``POST /generate {"n": 64,
   "format": "base64"}`` at each ``--concurrency`` (4,8,16,32), at ``--overload-factor`` (4) x
   the best-throughput one and at ``--extra-concurrency`` (128), to both servers in turn (one at
   a time, alternating which goes first) so that the machine's changing load falls on both.

A prober asks ``GET /healthz`` every 20 ms on one keep-alive connection during every scenario.
It prints one Markdown table and the goodput summary, and writes everything as JSON
(``--json``). Examples::

    python benchmarks/hostile.py --json benchmarks/results-hostile.json   # ~5 minutes
    python benchmarks/hostile.py --random-model --quick                   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from generator_speed import positive_int_list
from harness import hostile_scenarios as scenarios
from harness.goodput import GoodputRow, goodput_row
from harness.hostile_report import summarise, summary_text, table
from harness.hostile_scenarios import Scenario
from harness.server import Server, mib, proc_status_kib, spawn, stop_server, wait_ready

SERVERS: list[dict[str, Any]] = []  # what became of each server, for the JSON


def base_settings(
    args: argparse.Namespace, store: Path, workdir: Path, name: str
) -> dict[str, str]:
    state_dir = workdir / f"state-{name}"
    state_dir.mkdir()
    return {
        "GAN_MODEL_STORE": str(store.resolve()),
        "GAN_STATE_DIR": str(state_dir),
        "GAN_LOG_LEVEL": "WARNING",
        "GAN_RELOAD_INTERVAL_S": "0",
    }


@contextmanager
def serving(
    args: argparse.Namespace, name: str, settings: dict[str, str], workdir: Path
) -> Iterator[Server]:
    """A ready server for the block, stopped by PID (SIGTERM, then SIGKILL) however it ends."""
    server = spawn(args.host, name, settings, workdir)
    record: dict[str, Any] = {"name": name, "settings": server.env, "pid": server.pid}
    try:
        record["startup_s"] = wait_ready(server, args.startup_timeout, args.shutdown_timeout)
        print(f"{name}: ready in {record['startup_s']:.1f} s", file=sys.stderr, flush=True)
        yield server
    finally:
        record["lifetime_peak_rss_mib"] = mib(proc_status_kib(server.pid, "VmHWM"))
        record["exit_code"], record["shutdown_s"], record["killed"] = stop_server(
            server, args.shutdown_timeout
        )
        log = server.log_path.read_text(errors="replace")
        record["log_has"] = {
            text: text in log for text in ("Too many open files", "Traceback", "ERROR")
        }
        record["log_tail"] = server.log_tail(30)
        SERVERS.append(record)


def run_hostile(args: argparse.Namespace, store: Path, workdir: Path) -> list[Scenario]:
    settings = base_settings(args, store, workdir, "hostile")
    settings["GAN_MAX_CONNECTIONS"] = str(args.max_connections)
    settings["GAN_HEADER_TIMEOUT_S"] = str(args.header_timeout)
    host, cap, deadline = args.host, args.max_connections, args.header_timeout
    rows: list[Scenario] = []
    with serving(args, "hostile", settings, workdir) as server:
        steps = [
            lambda: scenarios.baseline(server, host, args.baseline),
            lambda: scenarios.many_parameters(server, host, "50,000 parameters", 2000, 3.0),
            lambda: scenarios.huge_header(server, host),
            lambda: scenarios.idle_connections(server, host, cap, deadline),
            lambda: scenarios.slowloris(server, host, deadline),
            lambda: scenarios.non_finite(server, host),
        ]
        for step in steps:
            rows.append(step())
            print(f"  {rows[-1].name}: {rows[-1].answer}", file=sys.stderr, flush=True)
    return rows


def goodput_points(
    args: argparse.Namespace, servers: dict[str, Server], concurrencies: Sequence[int]
) -> list[GoodputRow]:
    """Each concurrency against both servers in turn (alternating which goes first), so that
    the machine's changing load falls on both alike."""
    rows = []
    for index, concurrency in enumerate(concurrencies):
        order = list(servers.items()) if index % 2 == 0 else list(servers.items())[::-1]
        for admission, server in order:
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.mode} died with {server.process.returncode}")
            row = goodput_row(
                server, args.host, admission, concurrency, args.duration, args.wrk_timeout
            )
            load = row.load
            print(
                f"  admission {admission}, c={concurrency}: {load.images_per_s:,.0f} images/s, "
                f"200 x{load.ok}, 503 x{load.shed}, other {load.other_errors}, worker busy "
                f"{row.worker_busy_pct or 0:.0f} %, load {row.load_average_1m:.1f}",
                file=sys.stderr,
                flush=True,
            )
            rows.append(row)
    return sorted(rows, key=lambda row: (row.admission != "on", row.load.concurrency))


def run_goodput(
    args: argparse.Namespace, store: Path, workdir: Path
) -> tuple[list[Scenario], list[GoodputRow], int, int]:
    """Both goodput servers at once; the 1 MiB-head scenario row, the goodput rows, the
    best-throughput concurrency (either setting) and the overload concurrency."""
    on = base_settings(args, store, workdir, "goodput-on")
    on["GAN_MAX_HEADER_BYTES"] = str(1 << 20)
    relaxed = {**on, **base_settings(args, store, workdir, "goodput-relaxed")}
    relaxed["GAN_MAX_QUEUE_WAIT_S"] = "1000"
    with (
        serving(args, "goodput-on", on, workdir) as on_server,
        serving(args, "goodput-relaxed", relaxed, workdir) as relaxed_server,
    ):
        head_rows = [
            scenarios.many_parameters(on_server, args.host, "50,000 parameters, 1 MiB head", 5, 30)
        ]
        status, body = scenarios.request(
            args.host, on_server.port, "POST", "/generate", b'{"n": 64, "format": "base64"}'
        )
        print(f"goodput-on: sanity request {status} {body[:60]!r}", file=sys.stderr)
        servers = {"on": on_server, "relaxed": relaxed_server}
        rows = goodput_points(args, servers, args.concurrency)
        best = max(rows, key=lambda row: row.load.images_per_s).load.concurrency
        overload = args.overload_factor * best
        extra = sorted({overload, *args.extra_concurrency} - set(args.concurrency))
        rows = sorted(
            rows + goodput_points(args, servers, extra),
            key=lambda row: (row.admission != "on", row.load.concurrency),
        )
    return head_rows, rows, best, overload


def goodput_json(row: GoodputRow) -> dict[str, Any]:
    load = row.load
    return {
        **asdict(row),
        "ok_200": load.ok,
        "shed_503": load.shed,
        "other_errors": load.other_errors,
        "images_per_s": load.images_per_s,
    }


def run(args: argparse.Namespace, store: Path, workdir: Path) -> dict[str, Any]:
    loads = {"start": os.getloadavg()}
    rows = run_hostile(args, store, workdir) if not args.skip_hostile else []
    loads["after_hostile"] = os.getloadavg()
    goodput: list[GoodputRow] = []
    best = overload = None
    if not args.skip_goodput:
        head_rows, goodput, best, overload = run_goodput(args, store, workdir)
        rows += head_rows
    loads["end"] = os.getloadavg()
    points = [] if overload is None else sorted({overload, *args.extra_concurrency})
    summary = summarise(goodput, points)
    text = table(rows, goodput)
    load_text = ", ".join(
        f"{when} {' / '.join(f'{x:.2f}' for x in la)}" for when, la in loads.items()
    )
    print(
        f"\nHostile input and faults: model store {store}, {os.cpu_count()} CPUs shared with "
        f"the client; load average (1 / 5 / 15 min): {load_text}\n"
    )
    print(text)
    print()
    print(summary_text(summary, best, args.overload_factor))
    return {
        "environment": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "load_average": loads,
        },
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "servers": SERVERS,
        "scenarios": [asdict(row) for row in rows],
        "goodput": [goodput_json(row) for row in goodput],
        "best_concurrency": best,
        "summary": summary,
        "table": text,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--store", type=Path, default=Path("model_store"), help="model store")
    model.add_argument("--random-model", action="store_true", help="an untrained generator")
    parser.add_argument("--max-connections", type=int, default=200, help="GAN_MAX_CONNECTIONS")
    parser.add_argument("--header-timeout", type=int, default=5, help="GAN_HEADER_TIMEOUT_S")
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of /healthz alone")
    parser.add_argument("--duration", type=float, help="seconds per goodput point (default 15)")
    parser.add_argument("--concurrency", type=positive_int_list, help="default 4,8,16,32")
    parser.add_argument("--overload-factor", type=int, default=4, help="x the best concurrency")
    parser.add_argument(
        "--extra-concurrency",
        type=positive_int_list,
        default=[128],
        help="goodput points measured as well (default 128)",
    )
    parser.add_argument("--wrk-timeout", type=float, default=10.0, help="wrk --timeout, s")
    parser.add_argument("--skip-hostile", action="store_true", help="goodput only")
    parser.add_argument("--skip-goodput", action="store_true", help="hostile scenarios only")
    parser.add_argument("--quick", action="store_true", help="3 s points at 4,8 and 4 x best")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--startup-timeout", type=float, default=180.0)
    parser.add_argument("--shutdown-timeout", type=float, default=30.0)
    parser.add_argument("--json", type=Path, metavar="PATH", help="write all results here")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3.0 if args.quick else 15.0
    if args.concurrency is None:
        args.concurrency = [4, 8] if args.quick else [4, 8, 16, 32]
    if args.quick:
        args.extra_concurrency = []
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gan-hostile-") as tmp:
        workdir = Path(tmp)
        store = args.store
        if args.random_model:
            from harness.runner import random_model_store  # torch only when asked

            store = random_model_store(workdir)
        results = run(args, store, workdir)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
