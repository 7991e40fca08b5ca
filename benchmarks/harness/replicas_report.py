"""What ``benchmarks/replicas.py`` prints and writes: one Markdown table of the scenarios (each
with its propagation or recovery times), the JSON document of ``--json`` (host, topology,
results, table), and the verdict: failed requests anywhere, or an activation past its bound.
"""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

from harness.replicas_load import Result
from harness.replicas_topology import Replica


def _activate_cell(details: dict[str, Any]) -> str:
    return "; ".join(
        f"{one['version']}: "
        + ", ".join(
            f"{name.split('_', 1)[-1]} {seconds}s"
            for name, seconds in one["seconds_per_replica"].items()
        )
        + f" after the activation's {one['activation_answered_after_s']}s response"
        + f" (bound {one['bound_s']:g}s)"
        for one in details["runs"]
    )


def _recovery_cell(r: Result) -> str:
    """The table's last column: propagation times, recovery times, or CPU and memory."""
    d = r.details
    if r.scenario == "activate":
        return _activate_cell(d)
    if r.scenario == "kill-9":
        return (
            f"{d['replica']}: restarted {d['restarted_after_s']}s, ready "
            f"{d['ready_after_s']}s, taking requests {d['taking_requests_after_s']}s"
        )
    if r.scenario == "rolling-restart":
        return ", ".join(
            f"{s['replica'].split('_', 1)[-1]} ready {s['ready_after_s']}s" for s in d["steps"]
        )
    return (
        f"{d['cpu_cores_under_load']} cores, RSS {d['rss_idle_mib']} -> "
        f"{d['rss_under_load_mib']} MiB (peak {d['rss_peak_mib']}; "
        f"{d['largest_requests']['rss_peak_mib']} with the largest requests)"
    )


def table(results: list[Result]) -> str:
    head = (
        "| scenario | requests sent | failures | req/s | p99 ms | nginx retried (method: n) "
        "| propagation / recovery |\n|---|---|---|---|---|---|---|"
    )
    rows = [head]
    for r in results:
        retried = ", ".join(f"{k}: {v}" for k, v in sorted(r.nginx_retried.items())) or "0"
        failures = f"{r.failures}" + (f" {r.failure_kinds}" if r.failures else "")
        rows.append(
            f"| {r.scenario} | {r.requests} | {failures} | {r.requests_per_s:.0f} | "
            f"{r.p99_ms} | {retried} | {_recovery_cell(r)} |"
        )
    return "\n".join(rows)


def document(
    args: argparse.Namespace, load_before: float, replicas: list[Replica], results: list[Result]
) -> dict[str, Any]:
    """The ``--json`` document; ``load_before``: the 1-minute load average before the run."""
    return {
        "command": "make replicas-test",
        "host": {
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            # wrk, nginx and the 4 replicas share these cores with whatever else runs.
            "load_average_1m_before": round(load_before, 2),
            "load_average_1m_after": round(os.getloadavg()[0], 2),
        },
        "topology": {
            "replicas": [r.__dict__ for r in replicas],
            "load": f"wrk -t2 -c{args.connections} via nginx, GET /digits + POST /generate",
            "reload_interval_s": args.reload_interval,
        },
        "results": [r.__dict__ for r in results],
        "table": table(results),
    }


def verdict(results: list[Result]) -> str | None:
    """The failure message, or None: no failed request anywhere, every activation in time."""
    failed = [
        r.scenario
        for r in results
        if r.failures
        or r.nginx_failures
        or r.details.get("largest_requests", {}).get("failures", 0)
    ]
    late = [
        r.scenario
        for r in results
        if r.scenario == "activate" and not all(x["within_bound"] for x in r.details["runs"])
    ]
    if failed or late:
        return f"FAIL: failed requests in {failed}; late propagation in {late}"
    return None
