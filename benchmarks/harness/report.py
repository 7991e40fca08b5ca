"""What the serving benchmark prints: the client-side and server-side Markdown tables, one row
per mode, scenario and concurrency, and the summary (the JSON ``summary`` object and its text),
which checks the rows against the targets (batching speed-up, share of the raw generator, no
errors at concurrency 128) and reports each server's memory and shutdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generator_speed import BatchResult
from harness.load import Row
from harness.server import ServerReport


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
    summary["n64_goodput_4x_overload_on"] = overload_goodput(n64, best)
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


def overload_goodput(rows: Sequence[Row], best: Row | None) -> dict[str, Any] | None:
    """The row at 4 x the best row's concurrency, as a share of the best images/s; None when
    there is no such row."""
    if best is None or not best.images_per_s:
        return None
    over = next((row for row in rows if row.concurrency == 4 * best.concurrency), None)
    if over is None:
        return {"best_concurrency": best.concurrency, "overload_concurrency": None}
    return {
        "best_concurrency": best.concurrency,
        "overload_concurrency": over.concurrency,
        "images_per_s": over.images_per_s,
        "pct_of_best": 100 * over.images_per_s / best.images_per_s,
        "errors": over.errors,
        "error_kinds": over.error_kinds,
    }


def _overload_line(overload: dict[str, Any] | None) -> str:
    prefix = "- n64 goodput at 4x overload (batching on)"
    if overload is None:
        return f"{prefix}: n/a (not measured)"
    if overload["overload_concurrency"] is None:
        return f"{prefix}: n/a (no row at 4 x the best concurrency {overload['best_concurrency']})"
    pct = overload["pct_of_best"]
    return (
        f"{prefix}, concurrency {overload['overload_concurrency']} = 4 x "
        f"{overload['best_concurrency']}: {overload['images_per_s']:,.0f} images/s = {pct:.0f}% "
        f"of the best (target >= 80%: {_verdict(pct >= 80)}); errors {overload['errors']}"
    )


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _n64_lines(best: dict[str, Any] | None, raw: BatchResult) -> list[str]:
    if best is None:
        return ["- n64 served vs raw generator: n/a (not measured)"]
    pct = best["pct_of_raw_forward"]
    lines = [
        f"- n64 served images/s (batching on, best at concurrency {best['concurrency']}): "
        f"{best['images_per_s']:,.0f} = {pct:.0f}% of the raw generator's forward pass at "
        f"batch 64 ({raw.forward_images_per_s:,.0f} img/s; target >= 80%: "
        f"{_verdict(pct >= 80)}); {best['pct_of_raw_end_to_end']:.0f}% of the worker's "
        f"latents+forward+to_uint8 at batch 64 ({raw.end_to_end_images_per_s:,.0f} img/s)"
    ]
    if pct > 100:
        lines.append(
            "  NOTE: above the batch-64 ceiling. With batching on the worker merges n64 "
            "requests into larger forward passes (see images/forward pass), which can beat "
            "batch 64; otherwise the raw measurement was disturbed (busy CPUs?)"
        )
    return lines


def _server_line(mode: str, server: dict[str, Any]) -> str:
    return (
        f"- server, batching {mode}: peak RSS (VmHWM) {_num(server['peak_rss_mib'])} MiB; "
        f"RSS at start of load {_num(server['rss_load_start_mib'])} MiB, at end "
        f"{_num(server['rss_load_end_mib'])} MiB, highest sampled "
        f"{_num(server['rss_max_sampled_mib'])} MiB; SIGTERM to exit "
        f"{server['shutdown_s']:.1f} s, exit code {server['exit_code']}"
        + (" (SIGKILLed: graceful shutdown timed out)" if server["killed"] else "")
    )


def summary_text(summary: dict[str, Any], raw: BatchResult) -> str:
    lines = ["", "Summary:"]
    ratio = summary["single_c32_rps_ratio_on_off"]
    lines.append(
        f"- single-image requests/s at concurrency 32, batching on / off: "
        f"{'n/a (not measured)' if ratio is None else f'{ratio:.2f}x'} "
        f"(target >= 2x: {_verdict(None if ratio is None else ratio >= 2)})"
    )
    lines += _n64_lines(summary["n64_best_on"], raw)
    lines.append(_overload_line(summary["n64_goodput_4x_overload_on"]))
    errors = summary["errors_at_c128"]
    lines.append(
        f"- errors at concurrency 128 (all modes and scenarios): "
        f"{'n/a (not measured)' if errors is None else errors} "
        f"(target 0: {_verdict(None if errors is None else errors == 0)})"
    )
    lines += [_server_line(mode, server) for mode, server in summary["servers"].items()]
    return "\n".join(lines)


def print_report(
    rows: Sequence[Row],
    summary: dict[str, Any],
    raw: BatchResult,
    env: dict[str, object],
    duration_s: float,
) -> None:
    """Print the header line, both tables and the summary to stdout."""
    print(
        f"\nServing benchmark: model {env['model']}, {duration_s:g} s per row, "
        f"client and server on the same {env['cpu_count']}-CPU machine (load average before "
        f"the run: {env['load_average_1m']})\n"
    )
    print(main_table(rows))
    print("\nServer side (from /metrics and /proc):\n")
    print(server_table(rows))
    print(summary_text(summary, raw))
