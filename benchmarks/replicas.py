"""The replica topology under load and faults: 3 API replicas + the admin replica behind nginx.

Runs against a running ``docker-compose.replicas.yml`` project (``make replicas-test`` brings one
up with podman-compose, runs this, and takes it down). wrk loads nginx on loopback with a mix of
``GET /digits/{d}.png?seed=N`` and ``POST /generate`` while each scenario injects its fault:

* ``activate``: ``POST /models/{v}/activate`` through nginx, then each replica's own ``/info`` is
  polled (directly, on its container address) until it serves ``v``; it must within
  ``GAN_RELOAD_INTERVAL_S`` plus one interval. Then back to the version it started on.
* ``kill-9``: SIGKILL to one API replica's process (from the host, as the OOM killer would); the
  restart policy brings it back; it must be ready again and take requests (its own request
  counter grows).
* ``rolling-restart``: every replica (the 3 API replicas, then the admin) restarted one by one
  (``podman restart``: SIGTERM, graceful shutdown, start), each ready before the next.
* ``single-replica``: one replica loaded directly, with ``podman stats`` and ``/proc`` sampled,
  for the resource requests and limits of deploy/kubernetes.

A failure is any request wrk saw fail (a non-2xx response, a connect, read or timeout error);
nginx's access log (``deploy/nginx.conf``'s ``gan`` format) gives the same count from the other
side, and which requests nginx retried on another replica. Prints a table; ``--json`` writes it.

    python benchmarks/replicas.py --project gan-replicas --proxy-port 8080 --token "$TOKEN"

This file is the command line; the rest lives in ``benchmarks/harness/`` (``replicas_topology``:
the containers, each replica's endpoints, podman stats and /proc; ``replicas_load``: wrk, its
report and nginx's log; ``replicas_scenarios``: the scenarios; ``replicas_report``: the table,
the JSON and the verdict). Standard library only: ``make replicas-test`` runs it with the host's
``python3``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from harness.replicas_report import document, table, verdict
from harness.replicas_scenarios import SCENARIOS
from harness.replicas_topology import Topology, wait_ready


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--project", required=True, help="compose project name")
    parser.add_argument("--proxy-port", type=int, default=8080)
    parser.add_argument("--token", default=os.environ.get("GAN_ADMIN_TOKEN"))
    parser.add_argument("--reload-interval", type=float, default=2.0)
    parser.add_argument("--version", default="mnist-cgan-v1", help="version to activate")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--stop-timeout", type=int, default=20)
    parser.add_argument("--single-seconds", type=float, default=10.0)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()[0]
    topology = Topology(args.engine, args.project, args.proxy_port)
    replicas = topology.replicas()
    for replica in replicas:
        wait_ready(replica, 120)
    print(f"replicas ready: {', '.join(f'{r.name} ({r.ip})' for r in replicas)}", flush=True)
    results = []
    for name in args.scenarios.split(","):
        print(f"scenario {name} ...", flush=True)
        results.append(SCENARIOS[name](topology, args))
        print(json.dumps(results[-1].__dict__), flush=True)
    print(table(results))
    if args.json:
        report = document(args, load_before, replicas, results)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    failure = verdict(results)
    if failure:
        raise SystemExit(failure)


if __name__ == "__main__":
    main()
