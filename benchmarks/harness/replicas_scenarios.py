"""The scenarios of ``benchmarks/replicas.py``, each under wrk load with its fault, each one
``Result``: ``activate`` (a new version through nginx, timed to every replica), ``kill-9`` (one
API replica's process killed, back and taking requests), ``rolling-restart`` (every replica
restarted in turn) and ``single-replica`` (one replica's CPU and memory, loaded directly).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.replicas_load import WRK_HEAVY_SCRIPT, Result, Wrk, load, result
from harness.replicas_topology import (
    Replica,
    Topology,
    container_cpu_seconds,
    http,
    proc_rss_mib,
    run,
    served_requests,
    version_of,
    wait_ready,
    wait_until,
)


def _propagation(
    topology: Topology, replicas: list[Replica], target: str, token: str | None, bound_s: float
) -> dict[str, Any]:
    """``target`` activated through nginx while every replica's ``/info`` is polled for it."""
    seen: dict[str, float] = {}

    def poll(replica: Replica) -> None:
        deadline = time.monotonic() + bound_s + 30
        while time.monotonic() < deadline:
            if version_of(replica) == target:
                seen[replica.name] = time.monotonic()
                return
            time.sleep(0.05)

    sent = time.monotonic()
    threads = [threading.Thread(target=poll, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    # force: the older version fails the quality gates against the newer (a rollback).
    status, body = http(
        "POST", f"{topology.proxy_url}/models/{target}/activate", token, 30, {"force": True}
    )
    answered = time.monotonic()
    assert status == 200, f"activate {target}: HTTP {status} {body[:200]!r}"
    for thread in threads:
        thread.join()
    after = {
        r.name: max(0.0, round(seen[r.name] - answered, 2)) for r in replicas if r.name in seen
    }
    return {
        "version": target,
        "activation_answered_after_s": round(answered - sent, 2),
        "seconds_per_replica": {r.name: after.get(r.name) for r in replicas},
        "seconds_per_replica_since_request": {
            r.name: round(seen[r.name] - sent, 2) if r.name in seen else None for r in replicas
        },
        "bound_s": bound_s,
        "within_bound": len(after) == len(replicas) and all(v <= bound_s for v in after.values()),
    }


def scenario_activate(topology: Topology, args: argparse.Namespace) -> Result:
    """Propagation is timed from the activation's response: the replica that took the request
    loads and warms the version first, moves the ACTIVE pointer, swaps and answers; from then on
    each other replica must notice the pointer (every interval) and load the version itself."""
    replicas = topology.replicas()
    start_version = version_of(replicas[0])
    assert start_version is not None
    bound_s = 2 * args.reload_interval
    propagation: list[dict[str, Any]] = []
    with load(topology, args.connections) as report:
        for target in (args.version, start_version):
            propagation.append(_propagation(topology, replicas, target, args.token, bound_s))
            time.sleep(1.0)
    return result(
        "activate", report, {"reload_interval_s": args.reload_interval, "runs": propagation}
    )


def scenario_kill(topology: Topology, args: argparse.Namespace) -> Result:
    victim = next(r for r in topology.replicas() if r.service == "api" and r.name.endswith("_2"))
    old_pid = topology.pid(victim)
    with load(topology, args.connections) as report:
        before = served_requests(victim)
        os.kill(old_pid, signal.SIGKILL)
        restarted_s = wait_until(lambda: topology.pid(victim) not in (0, old_pid), 60, 0.1)
        victim = next(r for r in topology.replicas() if r.name == victim.name)  # new address?
        ready_s = wait_ready(victim, 60) + restarted_s
        after_restart = served_requests(victim)
        rejoined_s = (
            wait_until(lambda: served_requests(victim) > after_restart + 5, 60, 0.2) + ready_s
        )
    return result(
        "kill-9",
        report,
        {
            "replica": victim.name,
            "served_before_kill": before,
            "restarted_after_s": round(restarted_s, 2),
            "ready_after_s": round(ready_s, 2),
            "taking_requests_after_s": round(rejoined_s, 2),
            "served_after_rejoin": served_requests(victim),
        },
    )


def _restart(topology: Topology, replica: Replica, stop_timeout: int) -> dict[str, Any]:
    """``podman restart`` of one replica, until it is ready again at its (new) address."""
    old_ip, started = replica.ip, time.monotonic()
    run([topology.engine, "restart", "--time", str(stop_timeout), replica.name])
    restarted_s = time.monotonic() - started
    fresh = next(r for r in topology.replicas() if r.name == replica.name)
    ready_s = wait_ready(fresh, 60) + restarted_s
    return {
        "replica": replica.name,
        "restart_s": round(restarted_s, 2),
        "ready_after_s": round(ready_s, 2),
        "address": f"{old_ip} -> {fresh.ip}",
    }


def scenario_rolling(topology: Topology, args: argparse.Namespace) -> Result:
    order = sorted(topology.replicas(), key=lambda r: (r.service != "api", r.name))
    steps = []
    with load(topology, args.connections) as report:
        for replica in order:
            steps.append(_restart(topology, replica, args.stop_timeout))
    return result("rolling-restart", report, {"steps": steps})


def _peak_mib(engine: str, name: str, seconds: float) -> float:
    """The container's largest ``podman stats`` memory, sampled every second for ``seconds``."""
    peak = 0.0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        time.sleep(1.0)
        peak = max(peak, container_cpu_seconds(engine, name)[1])
    return peak


def _saturate(
    engine: str, replica: Replica, pid: int, connections: int, seconds: float
) -> tuple[dict[str, Any], dict[str, float]]:
    """wrk's report, and the replica's CPU cores, memory peak and RSS while wrk saturates it."""
    wrk = Wrk(replica.url, connections)
    time.sleep(3.0)
    cpu0, _ = container_cpu_seconds(engine, replica.name)
    t0 = time.monotonic()
    peak_mib = _peak_mib(engine, replica.name, seconds)
    cpu1, _ = container_cpu_seconds(engine, replica.name)
    cores = (cpu1 - cpu0) / (time.monotonic() - t0)
    rss, hwm = proc_rss_mib(pid)
    summary, _ = wrk.stop()
    return summary, {"cores": cores, "peak_mib": peak_mib, "rss": rss, "hwm": hwm}


def _largest_requests(engine: str, replica: Replica, pid: int, seconds: float) -> dict[str, Any]:
    """The largest requests, a few at a time: their outcome and the replica's memory peak."""
    heavy = Wrk(replica.url, 4, threads=1, script=WRK_HEAVY_SCRIPT)
    heavy_peak_mib = _peak_mib(engine, replica.name, seconds)
    heavy_summary, _ = heavy.stop()
    _, heavy_hwm = proc_rss_mib(pid)
    return {
        "request": "POST /generate n=256 grid scale=16, 4 at a time",
        "requests": heavy_summary["requests"],
        "failures": heavy_summary["failures"],
        "p99_ms": heavy_summary["p99_ms"],
        "podman_stats_mem_peak_mib": round(heavy_peak_mib, 1),
        "rss_peak_mib": round(heavy_hwm, 1),
    }


def scenario_single(topology: Topology, args: argparse.Namespace) -> Result:
    """One replica loaded directly (no nginx): its CPU and memory under saturation."""
    replica = next(r for r in topology.replicas() if r.name.endswith("api_1"))
    pid = topology.pid(replica)
    idle_rss, _ = proc_rss_mib(pid)
    _, idle_mib = container_cpu_seconds(topology.engine, replica.name)
    summary, loaded = _saturate(
        topology.engine, replica, pid, args.connections, args.single_seconds
    )
    largest = _largest_requests(topology.engine, replica, pid, args.single_seconds)
    nginx = {"requests": 0, "failures": 0, "retried": {}, "aborted_by_client_at_stop": 0}
    report = {**summary, "nginx": nginx}
    return result(
        "single-replica",
        report,
        {
            "replica": replica.name,
            "cpu_cores_under_load": round(loaded["cores"], 2),
            "podman_stats_mem_idle_mib": round(idle_mib, 1),
            "podman_stats_mem_peak_mib": round(loaded["peak_mib"], 1),
            "rss_idle_mib": round(idle_rss, 1),
            "rss_under_load_mib": round(loaded["rss"], 1),
            "rss_peak_mib": round(loaded["hwm"], 1),
            "largest_requests": largest,
            "host_cpus": os.cpu_count(),
        },
    )


SCENARIOS: dict[str, Callable[[Topology, argparse.Namespace], Result]] = {
    "activate": scenario_activate,
    "kill-9": scenario_kill,
    "rolling-restart": scenario_rolling,
    "single-replica": scenario_single,
}
