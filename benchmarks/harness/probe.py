"""The /healthz prober of the hostile-input benchmark: a thread that asks ``GET /healthz`` on one
keep-alive connection every ``interval_s`` while a scenario runs, and :class:`ProbeStats`, the
latencies (send to body read) and failures it saw.

It keeps its connection between probes, as a monitoring client would, so that a server at its
connection cap still counts it as one of its own; after an error it reconnects (and a server at
its cap answers that new connection with a 503, counted as a failure).
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from harness.load import percentile

MAX_PROBE_S = 900.0  # a prober never outlives this, whatever happens to its scenario


@dataclass
class ProbeStats:
    samples: int  # 200 answers
    failures: dict[str, int]  # non-200 answers and errors, by kind
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass
class HealthProber:
    """``with HealthProber(host, port) as prober: ...`` probes during the block;
    ``prober.stats()`` afterwards."""

    host: str
    port: int
    interval_s: float = 0.02
    timeout_s: float = 5.0
    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HealthProber:
        self._thread = threading.Thread(target=self._run, name="healthz-prober", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout_s + 5)

    def _fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def _run(self) -> None:
        connection: http.client.HTTPConnection | None = None
        end = time.monotonic() + MAX_PROBE_S
        while not self._stop.is_set() and time.monotonic() < end:
            if connection is None:
                connection = http.client.HTTPConnection(self.host, self.port, self.timeout_s)
            started = time.perf_counter()
            try:
                connection.request("GET", "/healthz")
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as error:
                self._fail(type(error).__name__)
                connection.close()
                connection = None
            else:
                if response.status == 200:
                    self.latencies.append(time.perf_counter() - started)
                else:
                    self._fail(f"HTTP {response.status}")
                if response.will_close:
                    connection.close()
                    connection = None
            self._stop.wait(self.interval_s)
        if connection is not None:
            connection.close()

    def stats(self) -> ProbeStats:
        ordered = sorted(self.latencies)

        def ms(value: float | None) -> float | None:
            return None if value is None else 1000 * value

        return ProbeStats(
            samples=len(ordered),
            failures=dict(self.failures),
            p50_ms=ms(percentile(ordered, 50)),
            p99_ms=ms(percentile(ordered, 99)),
            max_ms=ms(ordered[-1] if ordered else None),
        )
