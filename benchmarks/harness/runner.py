"""Running the serving benchmark: :func:`run_row` measures one scenario at one concurrency
against a running server (the load, plus /metrics and RSS before and after), :func:`run_mode`
starts a server for one batching mode and takes it through every row, and :func:`run` times the
raw-generator ceiling first and then runs every mode. :func:`random_model_store` is the
``--random-model`` store: an untrained ``Generator(GeneratorConfig())``, the shipped
architecture, active as ``bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import torch

from gan.networks import GeneratorConfig
from gan.store import ModelStore, StoreError
from gan.testing import publish_random_generator
from generator_speed import BatchResult, environment, measure, prepare_model
from harness.load import Row, httpx_load, images_per_request, wrk_load
from harness.report import format_row, print_report, summarise
from harness.server import (
    Server,
    ServerReport,
    mib,
    proc_status_kib,
    sample_rss,
    scrape_metrics,
    start_server,
    stop_server,
)

RANDOM_VERSION = "bench"


def random_model_store(workdir: Path) -> Path:
    """A store holding one untrained ``Generator(GeneratorConfig())``, active as ``bench``."""
    root = workdir / "random_model_store"
    publish_random_generator(ModelStore(root), RANDOM_VERSION, GeneratorConfig(), seed=0)
    return root


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


async def run_rows(args: argparse.Namespace, server: Server) -> list[Row]:
    """Every scenario at every concurrency against ``server``, each row printed to stderr."""
    rows: list[Row] = []
    for scenario in args.scenarios:
        for concurrency in args.concurrency:
            if server.process.poll() is not None:
                raise RuntimeError(
                    f"server ({server.mode}) died with {server.process.returncode}:\n"
                    f"{server.log_tail()}"
                )
            row = await run_row(
                server, scenario, concurrency, args.duration, args.client_timeout, args.client
            )
            rows.append(row)
            print(f"  {format_row(row)}", file=sys.stderr, flush=True)
    return rows


async def run_mode(
    args: argparse.Namespace, mode: str, store: Path, workdir: Path
) -> tuple[list[Row], ServerReport]:
    server, startup_s = start_server(args, mode, store, workdir)
    rss_ready = server.rss_kib()
    rows: list[Row] = []
    sampler = asyncio.create_task(sample_rss(server, args.rss_interval))
    try:
        rows = await run_rows(args, server)
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


def raw_ceiling(args: argparse.Namespace, store: Path) -> tuple[BatchResult, dict[str, object]]:
    """The in-process generator speed at batch 64 (in a thread, like the worker), timed with the
    servers' thread count (the app's default: all cores but one), and its environment."""
    torch.set_num_threads(args.torch_threads or max(1, (os.cpu_count() or 2) - 1))
    try:
        ModelStore(store).active_version()
    except StoreError as error:
        raise SystemExit(
            f"{error}\nTrain and publish a model first, pass --store, or use --random-model."
        ) from error
    device = getattr(args, "device", None) or "cpu"
    dtype = getattr(args, "dtype", None) or "float32"
    mut = prepare_model(
        store, None, random_init=False, device=device, dtype=dtype if device != "cpu" else "float32"
    )
    raw = measure(mut, 64, min_time_s=args.raw_min_time)
    env = environment(mut)
    del mut
    print(
        f"Raw generator {env['model']} at batch 64 ({env['torch_threads']} torch threads, "
        f"{env['cpu_count']} CPUs): forward {raw.forward_images_per_s:,.0f} img/s, "
        f"latents+forward+to_uint8 {raw.end_to_end_images_per_s:,.0f} img/s",
        file=sys.stderr,
        flush=True,
    )
    return raw, env


async def run(args: argparse.Namespace, store: Path, workdir: Path) -> dict[str, Any]:
    """The whole benchmark: raw ceiling, every mode, the printed report; returns the results
    that ``--json`` writes."""
    raw, env = raw_ceiling(args, store)
    rows: list[Row] = []
    reports: list[ServerReport] = []
    for mode in args.modes:
        print(f"batching {mode}:", file=sys.stderr, flush=True)
        mode_rows, report = await run_mode(args, mode, store, workdir)
        rows += mode_rows
        reports.append(report)
    summary = summarise(rows, raw, reports)
    print_report(rows, summary, raw, env, args.duration)
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
