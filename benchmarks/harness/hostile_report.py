"""What the hostile-input benchmark prints: one Markdown table of every scenario and goodput
point, and the goodput-at-overload summary against the issue's target (>= 80 % of the best
images/s at any concurrency)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.goodput import GoodputRow
from harness.hostile_scenarios import Scenario, Watch
from harness.probe import ProbeStats

TARGET_PCT = 80.0


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _healthz(stats: ProbeStats | None) -> str:
    if stats is None:
        return "-"
    text = f"{_num(stats.p50_ms)} / {_num(stats.p99_ms)} / {_num(stats.max_ms)} (n={stats.samples}"
    failures = ", ".join(f"{kind} x{n}" for kind, n in sorted(stats.failures.items()))
    return text + (f"; failed: {failures})" if failures else ")")


def _rss(watch: Watch) -> str:
    peak = _num(watch.peak_rss_mib) + ("" if watch.peak_since_start else " (lifetime)")
    return f"{_num(watch.rss_before_mib)} -> {_num(watch.rss_after_mib)}; peak {peak}"


HEADER = (
    "| scenario | sent | answer | time to answer | /healthz p50 / p99 / max ms during it "
    "| server RSS MiB before -> after; peak |\n|---|---|---|---|---|---|"
)


def scenario_line(row: Scenario) -> str:
    return (
        f"| {row.name} | {row.sent} | {row.answer} | {row.time_to_answer} "
        f"| {_healthz(row.watch.healthz)} | {_rss(row.watch)} |"
    )


def goodput_line(row: GoodputRow, best: float) -> str:
    load = row.load
    pct = 100 * load.images_per_s / best if best else None
    sent = (
        f'POST /generate `{{"n": 64, "format": "base64"}}`, wrk -c{load.concurrency}, '
        f"{load.duration_s:.0f} s (load average {row.load_average_1m:.1f})"
    )
    shed = ", ".join(f"{reason} {n:.0f}" for reason, n in sorted(row.rejected.items()))
    answer = (
        f"200 x{load.ok}, 503 x{load.shed}" + (f" ({shed})" if shed else "")
        + f", other errors {load.other_errors}" + (f" ({_kinds(row)})" if load.other_errors else "")
        + f": **{load.images_per_s:,.0f} images/s** ({_num(pct, 0)} % of best); worker busy "
        f"{_num(row.worker_busy_pct, 0)} %, forward pass {_num(row.forward_images_per_s, 0)} "
        "images/s"
    )  # fmt: skip
    timing = f"p50 {_num(load.p50_ms)} / p99 {_num(load.p99_ms)} ms (all answers)"
    return (
        f"| goodput, admission {row.admission}, c={load.concurrency} | {sent} | {answer} "
        f"| {timing} | {_healthz(row.watch.healthz)} | {_rss(row.watch)} |"
    )


def _kinds(row: GoodputRow) -> str:
    kinds = {f"HTTP {s}": n for s, n in row.load.statuses.items() if s not in (200, 503)}
    kinds.update(row.load.socket_errors)
    return ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))


def table(scenarios: Sequence[Scenario], goodput: Sequence[GoodputRow]) -> str:
    best = max((row.load.images_per_s for row in goodput), default=0.0)
    lines = [HEADER]
    lines += [scenario_line(row) for row in scenarios]
    lines += [goodput_line(row, best) for row in goodput]
    return "\n".join(lines)


def summarise(goodput: Sequence[GoodputRow], points: Sequence[int]) -> dict[str, Any]:
    """Goodput at each overload concurrency in ``points`` per admission setting, as a % of the
    best images/s of any row (any concurrency, either setting)."""
    if not goodput or not points:
        return {}
    best = max(goodput, key=lambda row: row.load.images_per_s)
    summary: dict[str, Any] = {
        "best": {
            "admission": best.admission,
            "concurrency": best.load.concurrency,
            "images_per_s": best.load.images_per_s,
        },
        "target_pct": TARGET_PCT,
        "overload": {},
    }
    for row in goodput:
        if row.load.concurrency in points and best.load.images_per_s:
            pct = 100 * row.load.images_per_s / best.load.images_per_s
            point = summary["overload"].setdefault(str(row.load.concurrency), {})
            point[row.admission] = {
                "images_per_s": row.load.images_per_s,
                "pct_of_best": pct,
                "shed_503": row.load.shed,
                "other_errors": row.load.other_errors,
                "meets_target": pct >= TARGET_PCT,
            }
    return summary


def summary_text(summary: dict[str, Any], best_concurrency: int | None, factor: int) -> str:
    if not summary:
        return "Goodput at overload: n/a (not measured)"
    best = summary["best"]
    lines = [
        f"Goodput under overload, as a % of the best images/s of any row "
        f"({best['images_per_s']:,.0f}: admission {best['admission']}, c={best['concurrency']}); "
        f"the best-throughput concurrency of the base points was {best_concurrency}, so "
        f"{factor}x overload is c={factor * (best_concurrency or 0)}:"
    ]
    for concurrency, point in summary["overload"].items():
        for admission, value in point.items():
            verdict = "PASS" if value["meets_target"] else "FAIL"
            lines.append(
                f"- c={concurrency}, admission {admission}: {value['images_per_s']:,.0f} "
                f"images/s = {value['pct_of_best']:.0f} % of best (target >= "
                f"{TARGET_PCT:.0f} %: {verdict}); 503 x{value['shed_503']}, other errors "
                f"{value['other_errors']}"
            )
    return "\n".join(lines)
