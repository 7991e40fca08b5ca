"""The load of ``benchmarks/replicas.py``: wrk in the background (its Lua scripts: the mix of
``GET /digits/{d}.png?seed=N`` and ``POST /generate``, and the largest request the defaults
allow), its report parsed, nginx's access log over the same time counted (failures, retries on a
second replica, requests cut off when wrk stopped), and one scenario's ``Result``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.replicas_topology import Topology, search

# The largest request the defaults allow (GAN_MAX_N 256 as one grid at GAN_MAX_SCALE 16): the
# memory a replica needs at worst, for the Kubernetes limits.
WRK_HEAVY_SCRIPT = """
request = function()
  return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"},
    '{"n": 256, "format": "png", "grid": true, "scale": 16}')
end
"""

WRK_SCRIPT = """
local counter = 0
request = function()
  counter = counter + 1
  if counter % 2 == 0 then
    return wrk.format("GET", "/digits/" .. (counter % 10) .. ".png?seed=" .. counter)
  end
  return wrk.format("POST", "/generate", {["Content-Type"] = "application/json"},
    '{"seed": ' .. counter .. ', "format": "png"}')
end
"""


@dataclass
class Result:
    scenario: str
    requests: int
    failures: int
    failure_kinds: dict[str, int]
    requests_per_s: float
    p99_ms: float | None
    nginx_requests: int
    nginx_failures: int
    nginx_retried: dict[str, int]  # method -> requests nginx sent to a second replica
    nginx_aborted_at_stop: int  # 499: in flight when wrk was stopped, not failures
    details: dict[str, Any] = field(default_factory=dict)


class Wrk:
    """wrk in the background for as long as a scenario lasts, stopped with SIGINT (it then prints
    its report as usual)."""

    def __init__(
        self, url: str, connections: int, threads: int = 2, script: str = WRK_SCRIPT
    ) -> None:
        self.script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115
        self.script.write(script)
        self.script.close()
        command = [
            "wrk", f"-t{threads}", f"-c{connections}", "-d600s", "--latency", "--timeout", "10s",
            "-s", self.script.name, url,
        ]  # fmt: skip
        self.started = time.time()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)

    def stop(self) -> tuple[dict[str, Any], float]:
        self.process.send_signal(signal.SIGINT)
        output, _ = self.process.communicate(timeout=30)
        ended = time.time()
        Path(self.script.name).unlink()
        return parse_wrk(output), ended


def parse_wrk(output: str) -> dict[str, Any]:
    total = int(search(r"(\d+) requests in", output).group(1))
    kinds: dict[str, int] = {}
    if non_2xx := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        kinds["non-2xx"] = int(non_2xx.group(1))
    if socket := re.search(r"Socket errors: (.*)", output):
        for kind, count in re.findall(r"(\w+) (\d+)", socket.group(1)):
            if int(count):
                kinds[kind] = int(count)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\b", output, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return {
        "requests": total,
        "failures": sum(kinds.values()),
        "kinds": kinds,
        "rps": float(rate.group(1)) if rate else 0.0,
        "p99_ms": round(float(p99.group(1)) * scale[p99.group(2)], 1) if p99 else None,
    }


def nginx_summary(lines: list[list[str]]) -> dict[str, Any]:
    """nginx's side of a scenario, from its access lines: requests, failures, retries."""
    retried: dict[str, int] = {}
    for parts in lines:
        if "," in " ".join(parts[4:]):  # several upstreams tried for this request
            retried[parts[2]] = retried.get(parts[2], 0) + 1
    return {
        "requests": len(lines),
        # 499: wrk closed the connection itself, when it was stopped at the end.
        "failures": sum(1 for parts in lines if not parts[1].startswith(("2", "499"))),
        "aborted_by_client_at_stop": sum(1 for parts in lines if parts[1] == "499"),
        "retried": retried,
    }


@contextmanager
def load(topology: Topology, connections: int) -> Iterator[dict[str, Any]]:
    """wrk on nginx for the duration of the block; fills the dict with its report and nginx's."""
    report: dict[str, Any] = {}
    wrk = Wrk(topology.proxy_url, connections)
    time.sleep(2.0)  # steady load before the fault
    try:
        yield report
        time.sleep(2.0)  # and after the recovery
    finally:
        summary, ended = wrk.stop()
        report.update(summary)
        time.sleep(1.0)  # let nginx flush its log
        report["nginx"] = nginx_summary(topology.proxy_log(wrk.started, ended + 0.5))


def result(scenario: str, report: dict[str, Any], details: dict[str, Any]) -> Result:
    return Result(
        scenario=scenario,
        requests=report["requests"],
        failures=report["failures"],
        failure_kinds=report["kinds"],
        requests_per_s=report["rps"],
        p99_ms=report["p99_ms"],
        nginx_requests=report["nginx"]["requests"],
        nginx_failures=report["nginx"]["failures"],
        nginx_retried=report["nginx"]["retried"],
        nginx_aborted_at_stop=report["nginx"]["aborted_by_client_at_stop"],
        details=details,
    )
