"""The hostile-input scenarios, each against a running server, each a :class:`Scenario` row:
what was sent, the answer, the time to it, /healthz latency from a prober running meanwhile
(:func:`watched`) and the server's RSS and peak RSS over it.
"""

from __future__ import annotations

import http.client
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from harness.load import percentile
from harness.probe import HealthProber, ProbeStats
from harness.raw import Exchange, exchange, idle_flood
from harness.server import Server, mib, proc_status_kib

PARAMS = 50_000
HUGE_HEADER_BYTES = 128 << 20
CHUNK = 64 << 10


@dataclass
class Watch:
    """The server around one scenario; ``peak_rss_mib`` is VmHWM since the scenario began, or
    over the process's life where it could not be reset (``peak_since_start`` False)."""

    rss_before_mib: float | None = None
    rss_after_mib: float | None = None
    peak_rss_mib: float | None = None
    peak_since_start: bool = False
    healthz: ProbeStats | None = None


@dataclass
class Scenario:
    name: str
    sent: str
    answer: str
    time_to_answer: str
    watch: Watch
    details: dict[str, Any] = field(default_factory=dict)


@contextmanager
def watched(server: Server, host: str) -> Iterator[Watch]:
    """RSS before and after the block, VmHWM reset at its start, /healthz probed during it."""
    watch = Watch(rss_before_mib=mib(server.rss_kib()))
    watch.peak_since_start = server.reset_peak_rss()
    prober = HealthProber(host, server.port)
    try:
        with prober:
            yield watch
    finally:
        watch.healthz = prober.stats()
        watch.rss_after_mib = mib(server.rss_kib())
        watch.peak_rss_mib = mib(proc_status_kib(server.pid, "VmHWM"))


def _s(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{1000 * value:.1f} ms" if value < 1 else f"{value:.2f} s"


def baseline(server: Server, host: str, seconds: float) -> Scenario:
    with watched(server, host) as watch:
        time.sleep(seconds)
    return Scenario(
        "baseline", f"nothing ({seconds:g} s of /healthz probes alone)", "-", "-", watch
    )


def parameter_head() -> bytes:
    params = "; a=b" * PARAMS
    return (
        "POST /restore HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n"
        f"Content-Type: multipart/form-data; boundary=x{params}\r\n\r\n--x--\r\n"
    ).encode()


def many_parameters(server: Server, host: str, name: str, repeat: int, max_s: float) -> Scenario:
    """The 50,000-parameter Content-Type on POST /restore, ``repeat`` times in a row (or for
    ``max_s``), so that the prober runs during them."""
    head = parameter_head()
    exchanges: list[Exchange] = []
    with watched(server, host) as watch:
        end = time.monotonic() + max_s
        while len(exchanges) < repeat and time.monotonic() < end:
            exchanges.append(
                exchange(host, server.port, [head], timeout_s=30, max_s=60, read_to_close=False)
            )
    statuses = Counter(str(e.status) for e in exchanges)
    times = [e.answer_s for e in exchanges if e.answer_s is not None]
    limit = server.env.get("GAN_MAX_HEADER_BYTES", "16384 (default)")
    return Scenario(
        name,
        f"POST /restore, Content-Type `multipart/form-data; boundary=x` + `; a=b` x {PARAMS:,} "
        f"({len(head):,}-byte request incl. 7-byte body), {len(exchanges)} times; "
        f"GAN_MAX_HEADER_BYTES={limit}",
        ", ".join(f"{status} x{n}" for status, n in statuses.items())
        + f" ({exchanges[0].answer_head})",
        f"p50 {_s(statistics.median(times) if times else None)}, "
        f"max {_s(max(times) if times else None)}",
        watch,
        exchanges_summary([vars(e) for e in exchanges]),
    )


def exchanges_summary(exchanges: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON details of repeated exchanges: counts and answer times, the first few whole."""
    times = sorted(e["answer_s"] for e in exchanges if e["answer_s"] is not None)
    return {
        "count": len(exchanges),
        "statuses": dict(Counter(str(e["status"]) for e in exchanges)),
        "send_errors": dict(Counter(str(e["send_error"]) for e in exchanges)),
        "answer_s": {
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "max": times[-1] if times else None,
        },
        "first_exchanges": exchanges[:5],
    }


def huge_header(server: Server, host: str) -> Scenario:
    """A 128 MiB header, sent in 64 KiB chunks until the server answers or stops reading."""
    prefix = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: "
    chunks = itertools.chain([prefix], itertools.repeat(b"a" * CHUNK, HUGE_HEADER_BYTES // CHUNK))
    with watched(server, host) as watch:
        result = exchange(host, server.port, chunks, timeout_s=10, max_s=120)
    return Scenario(
        "128 MiB header",
        f"GET /healthz with a {HUGE_HEADER_BYTES >> 20} MiB X-Huge header, 64 KiB chunks, "
        "stopping when the server answers or closes",
        f"{result.status} ({result.answer_head}); server took {result.bytes_sent:,} bytes"
        + (f"; send stopped: {result.send_error}" if result.send_error else ""),
        f"answer {_s(result.answer_s)}, closed {_s(result.closed_s)}",
        watch,
        {"exchange": vars(result)},
    )


def idle_connections(server: Server, host: str, cap: int, header_timeout_s: float) -> Scenario:
    count = 3 * cap
    with watched(server, host) as watch:
        flood = idle_flood(host, server.port, count, wait_s=header_timeout_s + 10)
    after = server_get(host, server.port, "/healthz")
    emfile = "Too many open files" in server.log_path.read_text(errors="replace")
    closed = sorted(flood.closed_s)
    refused = sorted(flood.refused_s)
    answer = (
        f"{flood.refused_503} got 503 (within {max(refused, default=0):.3f} s of connecting); "
        f"{flood.closed} closed unanswered; {flood.still_open} still open; other answers "
        f"{flood.other_answers or 0}; connect errors {flood.connect_errors}; /healthz "
        f"afterwards {after}; 'Too many open files' in log: {'YES' if emfile else 'no'}"
    )
    closed_text = (
        f"closed after {closed[0]:.2f}-{closed[-1]:.2f} s (median "
        f"{statistics.median(closed):.2f} s)"
        if closed
        else "none closed"
    )
    return Scenario(
        "idle connections",
        f"{count} connections (3 x GAN_MAX_CONNECTIONS={cap}, GAN_HEADER_TIMEOUT_S="
        f"{header_timeout_s:g}) opened in {flood.open_s:.2f} s, nothing sent",
        answer,
        closed_text,
        watch,
        {"flood": vars(flood), "healthz_after": after, "too_many_open_files": emfile},
    )


def slowloris(server: Server, host: str, header_timeout_s: float) -> Scenario:
    head = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-Slow: " + b"a" * 1000
    with watched(server, host) as watch:
        result = exchange(
            host,
            server.port,
            (bytes([byte]) for byte in head),
            pause_s=0.5,
            timeout_s=header_timeout_s + 10,
            max_s=3 * header_timeout_s + 15,
        )
    return Scenario(
        "slowloris",
        "GET /healthz head, one byte every 0.5 s",
        f"{result.status or 'no answer'}; {result.bytes_sent} bytes sent before the close"
        + (f" ({result.send_error})" if result.send_error else ""),
        f"closed after {_s(result.closed_s)}",
        watch,
        {"exchange": vars(result)},
    )


def server_get(host: str, port: int, path: str) -> int | str:
    return request(host, port, "GET", path, b"")[0]


def request(host: str, port: int, method: str, path: str, body: bytes) -> tuple[int | str, str]:
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()[:300].decode(errors="replace")
    except (OSError, http.client.HTTPException) as error:
        return type(error).__name__, ""
    finally:
        connection.close()


def non_finite(server: Server, host: str) -> Scenario:
    answers: dict[str, Any] = {}
    times: list[float] = []
    with watched(server, host) as watch:
        for number in ("NaN", "Infinity", "-Infinity", "1e400"):
            started = time.perf_counter()
            status, body = request(
                host, server.port, "POST", "/generate", f'{{"digit": {number}}}'.encode()
            )
            times.append(time.perf_counter() - started)
            answers[number] = {"status": status, "body": body}
    return Scenario(
        "non-finite JSON",
        'POST /generate `{"digit": NaN}` (and Infinity, -Infinity, 1e400)',
        ", ".join(f"{number} {answer['status']}" for number, answer in answers.items()),
        f"max {_s(max(times))}",
        watch,
        {"answers": answers},
    )
