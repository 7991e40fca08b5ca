"""This project's server against two peers on the same model and request: LitServe (dynamic
batching, max_batch_size=64, batch_timeout=5 ms, one worker) and a naive FastAPI app (the model
in a sync ``def`` route, no batching), both in ``benchmarks/peers/``. The project runs twice:
``project`` with one worker per core (``GAN_WORKERS=0``) and ``single`` with one (the default).

For each server in turn (one at a time, on 127.0.0.1 and a free port): start it, wait for
``/readyz``, check one ``{"digit": 7, "seed": 42, "format": "png"}`` answer (a PNG; its sha256 is
compared across servers), warm it up with wrk at c=32 for ``--warmup`` seconds, then measure
single-PNG ``POST /generate`` (seeds varying) with wrk ``-t1`` at each ``--concurrency`` for
``--duration`` seconds; stop it (peers: their whole process group). With the one-worker project
server up, ``{"n": 64, "format": "base64"}`` goodput (200s only, ``harness.goodput``) is measured
at each ``--n64-concurrency`` and at 4 x the best of them, and compared with the best goodput and
with the raw forward pass: the in-process generator at batch 64 with the server's thread count,
timed just before and just after that series (the server idle), the higher of the two.

Prints the tables and writes everything, with a description of the machine, as JSON::

    python benchmarks/serving_peers.py                                  # ~4 minutes
    python benchmarks/serving_peers.py --quick --json /tmp/peers.json   # smoke run, 2 s cells
    python benchmarks/serving_peers.py --servers naive --concurrency 8 --duration 5 --skip-n64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from gan.device import cpu_model
from generator_speed import (
    forward_rate,
    positive_int_list,
    prepare_model,
)
from harness import peers
from harness.goodput import GoodputRow, goodput_row
from harness.peers import Cell
from harness.server import REPO_ROOT, Server, stop_server, wait_ready

DEFAULT_JSON = Path(__file__).resolve().parent / "results-peers.json"
PACKAGES = (
    "torch", "numpy", "pillow", "fastapi", "starlette", "uvicorn", "h11", "uvloop", "httptools",
    "pydantic", "litserve", "pyzmq", "httpx",
)  # fmt: skip


def _servers(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in peers.SERVERS]
    if not names or unknown or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"choose from {','.join(peers.SERVERS)}, each once")
    return names


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add = parser.add_argument
    add("--store", type=Path, default=Path("model_store"), help="model store (its active version)")
    add(
        "--servers",
        type=_servers,
        default=list(peers.SERVERS),
        help="project (GAN_WORKERS=0: one per core), litserve, naive, single (GAN_WORKERS=1)",
    )
    add("--concurrency", type=positive_int_list, default=[1, 8, 32, 128], help="single-PNG cells")
    add("--duration", type=float, help="seconds per cell (default 10; 2 with --quick)")
    add(
        "--rounds",
        type=int,
        default=1,
        help="passes over all the servers; ratios are taken within a round, then the median",
    )
    add("--warmup", type=float, help="seconds of wrk at c=32 before a server's cells (default 8)")
    add("--warmup-concurrency", type=int, default=32, help="concurrency of the warm-up")
    add("--settle", type=float, default=1.0, help="pause between cells, s")
    add(
        "--n64-concurrency",
        type=positive_int_list,
        default=[1, 4, 8],
        help="n=64 base64 goodput points of the project's server; 4 x the best is added",
    )
    add("--overload-factor", type=int, default=4, help="overload = this x the best n64 point")
    add(
        "--n64-pairs",
        type=int,
        default=8,
        help="then this many slices of n=64 at the best concurrency, each between two slices "
        "of the raw pass: each held to the mean of its two, and the median of those ratios",
    )
    add("--pair-seconds", type=float, default=2.0, help="seconds of each slice of the pairs")
    add("--skip-n64", action="store_true", help="no raw ceiling, no n64 goodput")
    add("--raw-min-time", type=float, default=3.0, help="timed seconds of the raw forward pass")
    add(
        "--torch-threads",
        type=int,
        default=0,
        help="torch intra-op threads of every server and of the raw forward pass "
        "(0 = the project's default: all cores but one)",
    )
    add("--device", default=None, help="GAN_DEVICE of the project and --device of the peers")
    add(
        "--http",
        default="auto",
        help="uvicorn HTTP protocol of the peers (auto: httptools when installed, as the project)",
    )
    add(
        "--litserve-fast-queue",
        action="store_true",
        help="LitServer(fast_queue=True): ZeroMQ instead of multiprocessing queues",
    )
    add(
        "--server-env",
        action="append",
        default=[],
        metavar="GAN_KEY=VALUE",
        help="extra setting of the project's server (repeatable)",
    )
    add("--wrk-timeout", type=float, default=30.0, help="wrk --timeout, s")
    add("--host", default="127.0.0.1")
    add("--startup-timeout", type=float, default=180.0)
    add(
        "--shutdown-timeout",
        type=float,
        default=10.0,
        help="SIGTERM to SIGKILL, s (LitServe sometimes keeps its HTTP process after SIGTERM)",
    )
    add("--quick", action="store_true", help="2 s cells, 2 s warm-up, 0.5 s raw forward pass")
    add("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    add("--no-json", action="store_true", help="write no JSON")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 2.0 if args.quick else 10.0
    if args.warmup is None:
        args.warmup = 2.0 if args.quick else 8.0
    if args.quick:
        args.raw_min_time = min(args.raw_min_time, 0.5)
        args.pair_seconds = min(args.pair_seconds, 1.0)
    if not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk)")
    for item in args.server_env:
        if not item.startswith("GAN_") or "=" not in item:
            parser.error(f"--server-env wants GAN_KEY=VALUE, got {item!r}")
    return args


# ----- the machine ----------------------------------------------------------------------------
def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else None


def machine(torch_threads: int) -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": _mem_total_gib(),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch_threads,
        "cuda_available": torch.cuda.is_available(),
        "packages": {name: _version(name) for name in PACKAGES},
        "wrk": _first_line(["wrk", "-v"]),
        "git_commit": _first_line(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"]),
        "load_average_start": list(os.getloadavg()),
    }


# ----- the run --------------------------------------------------------------------------------
def effective_threads(requested: int) -> int:
    return requested or max(1, (os.cpu_count() or 2) - 1)


def start(args: argparse.Namespace, name: str, workdir: Path) -> tuple[Server, float]:
    threads = effective_threads(args.torch_threads)
    if name in peers.PROJECT_WORKERS:
        # Several workers share the cores out themselves unless --torch-threads says otherwise.
        project_threads = threads if name == "single" else args.torch_threads
        server = peers.spawn_project(
            name, args.host, args.store, workdir, project_threads, args.device, args.server_env
        )
    else:
        extra = ["--fast-queue"] if name == "litserve" and args.litserve_fast_queue else []
        server = peers.spawn_peer(
            name, args.host, args.store, workdir, threads, args.device, args.http, extra
        )
    try:
        return server, wait_ready(server, args.startup_timeout, args.shutdown_timeout)
    except BaseException:
        stop(args, server)
        raise


def stop(args: argparse.Namespace, server: Server) -> tuple[int | None, float, bool]:
    if server.env.get(peers.GROUP):
        return peers.stop_group(server, args.shutdown_timeout)
    return stop_server(server, args.shutdown_timeout)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def n64_goodput(args: argparse.Namespace, server: Server) -> list[GoodputRow]:
    """n=64 base64 goodput at each --n64-concurrency, then at the overload factor x the best."""
    rows: list[GoodputRow] = []

    def point(concurrency: int) -> None:
        row = goodput_row(server, args.host, "on", concurrency, args.duration, args.wrk_timeout)
        load = row.load
        say(
            f"  n64 c={concurrency}: {load.images_per_s:,.0f} images/s (200 x{load.ok}, "
            f"503 x{load.shed}, other {load.other_errors})"
        )
        rows.append(row)
        time.sleep(args.settle)

    for concurrency in args.n64_concurrency:
        point(concurrency)
    best = max(rows, key=lambda row: row.load.images_per_s).load.concurrency
    overload = args.overload_factor * best
    if overload not in args.n64_concurrency:
        point(overload)
    return rows


def n64_pairs(
    args: argparse.Namespace, server: Server, goodput: list[GoodputRow]
) -> list[dict[str, float]]:
    """--n64-pairs slices of n=64 served at the series' best concurrency, each bracketed by
    slices of the raw forward pass (raw, served, raw, served, ..., raw; --pair-seconds each) and
    held to the mean of the two around it. This machine's speed drifts by 20-40 % within a
    minute (benchmarks/README.md); slices seconds long, timed on either side, cancel most of it.
    The model is loaded once for all of them, as the server holds its own."""
    best = max(goodput, key=lambda row: row.load.images_per_s).load.concurrency
    torch.set_num_threads(effective_threads(args.torch_threads))
    mut = prepare_model(args.store, None, random_init=False)
    forward_rate(mut, 64, args.pair_seconds)  # untimed: a fresh model draws slower at first
    raws = [forward_rate(mut, 64, args.pair_seconds)]
    pairs = []
    for index in range(args.n64_pairs):
        row = goodput_row(server, args.host, "on", best, args.pair_seconds, args.wrk_timeout)
        raws.append(forward_rate(mut, 64, args.pair_seconds))
        before, after = raws[-2:]
        served = row.load.images_per_s
        say(
            f"  pair {index + 1}: raw {before:,.0f} / {after:,.0f}, n64 c={best} {served:,.0f} "
            f"images/s (the server's forward pass {row.forward_images_per_s or 0:,.0f})"
        )
        pairs.append(pair_record(best, before, after, served, row.forward_images_per_s))
    return pairs


def pair_record(
    concurrency: int,
    raw_before: float,
    raw_after: float,
    served: float,
    server_forward: float | None,
) -> dict[str, float]:
    """One served slice and the raw slices on either side (images/s): held to their mean, which
    is right for a speed that drifts linearly over the three slices."""
    return {
        "concurrency": concurrency,
        "raw_before_images_per_s": raw_before,
        "raw_after_images_per_s": raw_after,
        "raw_images_per_s": (raw_before + raw_after) / 2,
        "served_images_per_s": served,
        "server_forward_images_per_s": server_forward or 0.0,
    }


def n64_server(servers: list[str]) -> str | None:
    """Where n=64 goodput is measured: the one-worker project (its torch threads are the raw
    forward pass's), else the project."""
    return next((name for name in ("single", "project") if name in servers), None)


def run_server(
    args: argparse.Namespace, name: str, workdir: Path, seed_base: int, round_index: int
) -> tuple[list[Cell], list[GoodputRow], dict[str, Any]]:
    say(f"{peers.LABELS[name]} (round {round_index + 1} of {args.rounds}):")
    server, startup_s = start(args, name, workdir)
    record: dict[str, Any] = {
        "name": name,
        "round": round_index,
        "settings": server.env,
        "startup_s": startup_s,
    }
    cells: list[Cell] = []
    goodput: list[GoodputRow] = []
    try:
        say(f"  ready in {startup_s:.1f} s")
        record["sanity"] = peers.sanity(server)
        if not record["sanity"]["ok"]:
            raise RuntimeError(f"{name}: bad answer {record['sanity']}\n{server.log_tail()}")
        warm = peers.measure_cell(
            server, args.warmup_concurrency, args.warmup, args.wrk_timeout, seed_base
        )
        record["warmup"] = asdict(warm)
        say(f"  warm-up c={warm.concurrency}: {warm.requests_per_s:,.1f} req/s")
        for index, concurrency in enumerate(args.concurrency, start=1):
            time.sleep(args.settle)
            cell = peers.measure_cell(
                server,
                concurrency,
                args.duration,
                args.wrk_timeout,
                seed_base + index * 10**7,
                round_index,
            )
            cells.append(cell)
            say(
                f"  c={concurrency}: {cell.requests_per_s:,.1f} req/s, p50 {cell.p50_ms or 0:.1f} "
                f"ms, p99 {cell.p99_ms or 0:.1f} ms, errors {cell.errors}"
            )
        if name == n64_server(args.servers) and not args.skip_n64:
            # The raw pass just before and just after the series, with the server idle: this
            # machine's speed drifts by 20-40 % over minutes, and the higher of the two is the
            # ceiling the served rate is held to.
            record["raw_before"] = raw_forward(args)
            time.sleep(args.settle)
            goodput = n64_goodput(args, server)
            record["raw_after"] = raw_forward(args)
            record["n64_pairs"] = n64_pairs(args, server, goodput)
    finally:
        record["exit_code"], record["shutdown_s"], record["killed"] = stop(args, server)
        record["log_tail"] = server.log_tail(20)
    return cells, goodput, record


def n64_summary(
    goodput: list[GoodputRow],
    raws: list[dict[str, Any]],
    factor: int,
    pairs: Sequence[dict[str, float]] = (),
) -> dict[str, Any] | None:
    if not goodput:
        return None
    paired = [100 * p["served_images_per_s"] / p["raw_images_per_s"] for p in pairs]
    paired_forward = [
        100 * p["server_forward_images_per_s"] / p["raw_images_per_s"]
        for p in pairs
        if p.get("server_forward_images_per_s")
    ]
    raw = max(raws, key=lambda r: r["forward_images_per_s"]) if raws else None
    best = max(goodput, key=lambda row: row.load.images_per_s)
    over_c = factor * best.load.concurrency
    over = next((row for row in goodput if row.load.concurrency == over_c), None)
    best_ips = best.load.images_per_s
    return {
        "goodput": [
            {**asdict(row), "images_per_s": row.load.images_per_s, "ok_200": row.load.ok}
            for row in goodput
        ],
        "raw_forward_batch64": raws,
        "best_concurrency": best.load.concurrency,
        "best_images_per_s": best_ips,
        "raw_forward_images_per_s": raw["forward_images_per_s"] if raw else None,
        "raw_forward_before_after": [r["forward_images_per_s"] for r in raws],
        "pct_of_raw_forward": 100 * best_ips / raw["forward_images_per_s"] if raw else None,
        "raw_end_to_end_images_per_s": raw["end_to_end_images_per_s"] if raw else None,
        "overload_concurrency": over_c,
        "overload_images_per_s": over.load.images_per_s if over else None,
        "overload_pct_of_best": 100 * over.load.images_per_s / best_ips
        if over and best_ips
        else None,
        "overload_503": over.load.shed if over else None,
        "overload_other_errors": over.load.other_errors if over else None,
        "pairs": list(pairs),
        "paired_pcts": paired,
        "paired_pct_of_raw_forward": statistics.median(paired) if paired else None,
        "paired_forward_pcts": paired_forward,
    }


def n64_median(rounds: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """The targets' two percentages: one round's, or over several the median of the rounds'."""
    measured = [r for r in rounds if r is not None]
    if not measured:
        return None

    def median(key: str) -> float | None:
        values = [r[key] for r in measured if r[key] is not None]
        return statistics.median(values) if values else None

    return {
        "rounds": len(measured),
        "pct_of_raw_forward": median("pct_of_raw_forward"),
        "overload_pct_of_best": median("overload_pct_of_best"),
        "paired_pct_of_raw_forward": median("paired_pct_of_raw_forward"),
    }


def n64_lines(summary: dict[str, Any] | None, threads: int, label: str) -> list[str]:
    if summary is None:
        return [f"- {label}n=64 base64: not measured"]
    lines = []
    if summary["pct_of_raw_forward"] is not None:
        lines.append(
            f"- {label}n=64 base64, best goodput (c={summary['best_concurrency']}): "
            f"{summary['best_images_per_s']:,.0f} images/s = {summary['pct_of_raw_forward']:.0f}% "
            f"of the raw forward pass at batch 64 ({summary['raw_forward_images_per_s']:,.0f} "
            f"images/s, the higher of before and after, "
            f"{' / '.join(f'{r:,.0f}' for r in summary['raw_forward_before_after'])}; "
            f"{threads} torch thread{'s' if threads > 1 else ''}; target >= 90%)"
        )
    if summary["paired_pcts"]:
        pair = summary["pairs"][0]
        lines.append(
            f"- {label}n=64 base64 in {len(summary['pairs'])} slices at c={pair['concurrency']}, "
            f"each held to the raw pass timed on either side: "
            f"{', '.join(f'{pct:.0f}%' for pct in summary['paired_pcts'])}, median "
            f"{summary['paired_pct_of_raw_forward']:.0f}% of the raw forward pass (target >= 90%)"
        )
    if summary["paired_forward_pcts"]:
        lines.append(
            f"- {label}the server's own forward pass in those slices (images per forward second, "
            f"from /metrics): median {statistics.median(summary['paired_forward_pcts']):.0f}% of "
            "the raw pass"
        )
    if summary["overload_pct_of_best"] is not None:
        lines.append(
            f"- {label}n=64 goodput at c={summary['overload_concurrency']} (4x overload): "
            f"{summary['overload_images_per_s']:,.0f} images/s = "
            f"{summary['overload_pct_of_best']:.0f}% of the best (target >= 80%); "
            f"503 x{summary['overload_503']}, other errors {summary['overload_other_errors']}"
        )
    return lines


def median_lines(summary: dict[str, Any] | None) -> list[str]:
    if summary is None or summary["rounds"] < 2:
        return []
    pct, over = summary["pct_of_raw_forward"], summary["overload_pct_of_best"]
    paired = summary.get("paired_pct_of_raw_forward")
    return [
        f"- median of {summary['rounds']} rounds: n=64 base64 "
        + ("-" if pct is None else f"{pct:.0f}%")
        + " of the raw forward pass (target >= 90%), "
        + ("" if paired is None else f"{paired:.0f}% in pairs, ")
        + "goodput at 4x overload "
        + ("-" if over is None else f"{over:.0f}%")
        + " of the best (target >= 80%)"
    ]


def round_table(summary: dict[str, Any], concurrencies: list[int]) -> str:
    """The project's ratios in each round, then their median (the main table's)."""
    measured = summary["ratios"].items()
    pairs = [pair for pair, per_c in measured if any(v is not None for v in per_c.values())]
    head = ["round", *(f"{pair} c={c}" for pair in pairs for c in concurrencies)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    rows = [(str(i + 1), one) for i, one in enumerate(summary["round_ratios"])]
    for name, ratio in [*rows, ("median", summary["ratios"])]:
        cells = [ratio[pair][str(c)] for pair in pairs for c in concurrencies]
        lines.append(
            "| " + " | ".join([name, *("-" if v is None else f"{v:.2f}x" for v in cells)]) + " |"
        )
    return "\n".join(lines)


def raw_forward(args: argparse.Namespace) -> dict[str, Any]:
    """The in-process generator at batch 64, with the servers' thread count (harness.runner)."""
    from harness.runner import raw_ceiling

    raw_args = argparse.Namespace(
        torch_threads=effective_threads(args.torch_threads), raw_min_time=args.raw_min_time
    )
    raw, env = raw_ceiling(raw_args, args.store)
    return {**asdict(raw), "environment": env}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    threads = effective_threads(args.torch_threads)
    env = machine(threads)
    cells: list[Cell] = []
    rounds_n64: list[dict[str, Any] | None] = []
    records = []
    for round_index in range(args.rounds):
        goodput: list[GoodputRow] = []
        raws: list[dict[str, Any]] = []
        pairs: list[dict[str, float]] = []
        for index, name in enumerate(args.servers):
            seed_base = (round_index * len(args.servers) + index) * 10**9
            server_cells, server_goodput, record = run_server(
                args, name, workdir, seed_base, round_index
            )
            cells += server_cells
            goodput += server_goodput
            raws += [record[when] for when in ("raw_before", "raw_after") if when in record]
            pairs += record.get("n64_pairs", [])
            records.append(record)
        rounds_n64.append(n64_summary(goodput, raws, args.overload_factor, pairs))
    env["load_average_end"] = list(os.getloadavg())
    summary: dict[str, Any] = {
        "ratios": peers.ratios(cells, args.concurrency),
        "round_ratios": peers.round_ratios(cells, args.concurrency),
        "n64": n64_median(rounds_n64),
        "n64_rounds": rounds_n64,
        "same_png": len({r["sanity"].get("sha256") for r in records if "sanity" in r}) == 1,
    }
    main_table = peers.table(cells, args.servers, args.concurrency)
    print(
        f"\nServing peers: model {records[0]['sanity'].get('model_version')}, "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''} (each cell: the median), "
        f"{args.duration:g} s per cell after {args.warmup:g} s of warm-up at "
        f"c={args.warmup_concurrency}, wrk -t1 on the same machine ({env['cpu_model']}, "
        f"{env['cpu_count']} CPUs, torch {env['torch']}, {threads} torch threads; load average "
        f"{env['load_average_start'][0]:.2f} at the start)\n"
    )
    print(main_table)
    print("\nServer processes per cell (from /proc):\n")
    print(peers.detail_table(cells))
    if args.rounds > 1 and len(args.servers) > 1:  # ratios need a peer
        print(f"\nRatios within each round (the table above: medians of {args.rounds}):\n")
        print(round_table(summary, args.concurrency))
    print()
    for index, one in enumerate(summary["n64_rounds"]):
        label = f"round {index + 1}: " if args.rounds > 1 else ""
        for line in n64_lines(one, threads, label):
            print(line)
    for line in median_lines(summary["n64"]):
        print(line)
    print(
        "- the same PNG for {digit 7, seed 42} from every server: "
        + ("yes" if summary["same_png"] else "NO (see servers[].sanity)")
    )
    return {
        "machine": env,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "servers": records,
        "cells": [asdict(cell) for cell in cells],
        "summary": summary,
        "table": main_table,
    }


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gan-peers-") as tmp:
        results = run(args, Path(tmp))
    if not args.no_json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
