"""The replica topology's control for ``benchmarks/replicas.py``: its containers found by compose
labels (through ``podman`` or ``docker``), each replica's own endpoints on its container address
(``/info``, ``/readyz``, ``/metrics``), nginx's access log, and a replica's CPU and memory from
``podman stats`` and ``/proc``. Standard library only: ``make replicas-test`` runs it with the
host's ``python3``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Replica:
    name: str
    service: str
    ip: str

    @property
    def url(self) -> str:
        return f"http://{self.ip}:8000"


def run(command: list[str], check: bool = True) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=check).stdout


def search(pattern: str, text: str, flags: int = 0) -> re.Match[str]:
    """``re.search`` that must match: a ValueError naming the pattern where it does not."""
    found = re.search(pattern, text, flags)
    if found is None:
        raise ValueError(f"no {pattern!r} in {text[:200]!r}")
    return found


def http(
    method: str,
    url: str,
    token: str | None = None,
    timeout: float = 3.0,
    body: dict[str, Any] | None = None,
) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


class Topology:
    def __init__(self, engine: str, project: str, proxy_port: int) -> None:
        self.engine, self.project, self.proxy_port = engine, project, proxy_port
        self.proxy_url = f"http://127.0.0.1:{proxy_port}"

    def replicas(self) -> list[Replica]:
        """Running API and admin replicas, by compose labels, with their container addresses."""
        names = run(
            [
                self.engine, "ps", "--format", "{{.Names}}",
                "--filter", f"label=com.docker.compose.project={self.project}",
            ]
        ).split()  # fmt: skip
        found = []
        for name in sorted(names):
            service, ip = run(
                [
                    self.engine, "inspect", "--format",
                    '{{index .Config.Labels "com.docker.compose.service"}} '
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                    name,
                ]
            ).split()  # fmt: skip
            if service in ("api", "admin"):
                found.append(Replica(name, service, ip))
        return found

    def proxy_name(self) -> str:
        return run(
            [
                self.engine, "ps", "--format", "{{.Names}}",
                "--filter", f"label=com.docker.compose.project={self.project}",
                "--filter", "label=com.docker.compose.service=proxy",
            ]
        ).split()[0]  # fmt: skip

    def pid(self, replica: Replica) -> int:
        return int(run([self.engine, "inspect", "--format", "{{.State.Pid}}", replica.name]))

    def address(self, name: str) -> str:
        return run(
            [
                self.engine, "inspect", "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name,
            ]
        ).strip()  # fmt: skip

    def proxy_log(self, since: float, until: float) -> list[list[str]]:
        """nginx access lines (gan format) whose $msec lies in [since, until]."""
        out = subprocess.run(
            [self.engine, "logs", self.proxy_name()], capture_output=True, text=True, check=True
        )
        lines = []
        for line in (out.stdout + out.stderr).splitlines():
            parts = line.split()
            if len(parts) >= 6 and parts[4].startswith("upstream="):
                try:
                    stamp = float(parts[0])
                except ValueError:
                    continue
                if since <= stamp <= until:
                    lines.append(parts)
        return lines


def version_of(replica: Replica) -> str | None:
    status, body = http("GET", f"{replica.url}/info", timeout=1.0)
    if status != 200:
        return None
    version: str = json.loads(body)["model_version"]
    return version


def ready(replica: Replica) -> bool:
    return http("GET", f"{replica.url}/readyz", timeout=1.0)[0] == 200


def served_requests(replica: Replica) -> float:
    """The replica's own count of image requests (gan_http_requests_total, /generate + /digits)."""
    status, body = http("GET", f"{replica.url}/metrics", timeout=2.0)
    if status != 200:
        return -1.0
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("gan_http_requests_total{") and (
            'route="/generate"' in line or 'route="/digits/{digit}.png"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_until(predicate: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> float:
    """Seconds until ``predicate()`` held; raises TimeoutError past ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if predicate():
            return time.monotonic() - started
        time.sleep(every_s)
    raise TimeoutError(f"not within {timeout_s:g} s")


def wait_ready(replica: Replica, timeout_s: float) -> float:
    """Seconds until the replica's ``/readyz`` answered 200; TimeoutError past ``timeout_s``."""
    return wait_until(lambda: ready(replica), timeout_s)


def container_cpu_seconds(engine: str, name: str) -> tuple[float, float]:
    """(cpu seconds, memory MiB) of a container, from ``podman stats``."""
    stats = json.loads(run([engine, "stats", "--no-stream", "--format", "json", name]))[0]
    cpu = stats["cpu_time"]
    seconds = float(re.sub(r"[a-zµ]+$", "", cpu)) * {"s": 1, "ms": 1e-3, "µs": 1e-6}.get(
        search(r"[a-zµ]+$", cpu).group(0),
        1,
    )
    mem = stats["mem_usage"].split("/")[0].strip()
    memory = re.fullmatch(r"([\d.]+)\s*([kMG]?B)", mem)
    if memory is None:
        raise ValueError(f"podman stats mem_usage {mem!r}: not a size")
    number, unit = memory.groups()
    mib = (
        float(number)
        * {"B": 1 / 2**20, "kB": 1e3 / 2**20, "MB": 1e6 / 2**20, "GB": 1e9 / 2**20}[unit]
    )
    return seconds, mib


def proc_rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    hwm = int(search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024
    return rss, hwm
