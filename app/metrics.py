"""Prometheus metrics, on a registry per app instance (so tests and replicas never collide).

Conventions: the process and platform collectors, a ``gan_build_info``, every labelled counter's
series present at zero from the start (so rates and alerts work before the first event), and
gauges read at scrape time for the queues and the running job. README.md lists them all.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from app.retraining.manager import JobManager

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RESTORE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
REJECT_REASONS = ("queue_full", "queue_wait", "deadline", "primary_unavailable")
RESTORE_OUTCOMES = ("ok", "error", "queue_full", "deadline", "expired", "abandoned")


# The methods counted by name; any other token a client sends (h11 accepts every one) is
# counted as "other", so that no client can mint label values (each one a series, held forever).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else "other"


def multiprocess_dir() -> str | None:
    """Set by the supervisor of several workers (``app.http.workers``): prometheus_client then
    keeps every value in files there, and any worker's scrape adds up all of them."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


# With several workers, these of prometheus_client's process_* series, per worker (a pid label).
WORKER_PROCESS_SERIES = {
    "resident_memory_bytes": "Resident memory of this worker process, bytes",
    "cpu_seconds_total": "CPU time of this worker process, seconds",
    "open_fds": "Open file descriptors of this worker process",
    "start_time_seconds": "Start time of this worker process, seconds since the epoch",
}


class ServiceMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise for these counters
        self.registry = CollectorRegistry()  # the series this process updates
        r = self.registry
        self.multiprocess = multiprocess_dir() is not None
        if self.multiprocess:
            # A scrape reads every worker's files; the per-process collectors would describe
            # only the worker that happens to answer, so each worker writes its own process
            # series (gan_worker_*, one per live pid) at every refresh instead.
            self.exposed = CollectorRegistry()
            MultiProcessCollector(self.exposed)
            self._process = ProcessCollector(registry=None)
            self.worker_process = {
                name: Gauge(f"gan_worker_{name}", text, registry=r, multiprocess_mode="liveall")
                for name, text in WORKER_PROCESS_SERIES.items()
            }
        else:
            self.exposed = r
            ProcessCollector(registry=r)
            GCCollector(registry=r)
        PlatformCollector(registry=self.exposed)
        Info("gan_build", "Versions of the service and its runtime", registry=self.exposed).info(
            {
                "version": package_version("mnist-digit-gan"),
                "python": platform.python_version(),
                "torch": package_version("torch"),
                "fastapi": package_version("fastapi"),
            }
        )
        self._watched: list[tuple[Gauge, Callable[[], float]]] = []
        self._served: str | None = None  # the version gan_model_info says is served
        self._serving(r)
        self._applications_and_jobs(r)
        # The labelled children of the per-request series, by label values: ``labels()`` costs a
        # lock and a tuple of str() per call, on the event loop, for every request.
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._latency_children: dict[str, Any] = {}

    def _serving(self, r: CollectorRegistry) -> None:
        self.requests = Counter(
            "gan_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "gan_http_request_duration_seconds",
            "Request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "gan_queue_wait_seconds",
            "Time a request waited for its batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.compute = Histogram(
            "gan_batch_compute_seconds",
            "Forward pass time of one batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "gan_batch_images", "Images per forward pass", buckets=BATCH_BUCKETS, registry=r
        )
        self.queue_depth = Gauge(
            "gan_queue_images",
            "Images waiting in the queue",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.images = Counter("gan_images_generated", "Images generated", registry=r)
        self.rejected = Counter(
            "gan_rejected_requests", "Requests shed by backpressure", ["reason"], registry=r
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason=reason)
        self.fallback = Gauge(
            "gan_model_fallback",
            "1 when the served version is not the active one (it failed to verify or load)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.model = Gauge(
            "gan_model_info",
            "Active model version (value 1)",
            ["version"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def _applications_and_jobs(self, r: CollectorRegistry) -> None:
        self.restore_duration = Histogram(
            "gan_restore_seconds",
            "Compute time of one restoration",
            buckets=RESTORE_BUCKETS,
            registry=r,
        )
        self.restore_outcomes = Counter(
            "gan_restorations", "Restorations by outcome", ["outcome"], registry=r
        )
        for outcome in RESTORE_OUTCOMES:
            self.restore_outcomes.labels(outcome=outcome)
        self.restore_queue = Gauge(
            "gan_restore_queue",
            "Restorations waiting for the restoration thread",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.job_running = Gauge(
            "gan_job_running",
            "1 while a retraining job is queued or running",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.job_step = Gauge(
            "gan_job_step",
            "The running job's last reported step",
            registry=r,
            multiprocess_mode="livemax",
        )

    def observe_request(self, method: str, route: str, status: int, elapsed_s: float) -> None:
        """Count one answered request and its latency (``route`` is a template and ``method``
        one of a fixed set, so the label values, and this cache, stay bounded as the series
        themselves are)."""
        method = method_label(method)
        key = (method, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        latency = self._latency_children.get(route)
        if latency is None:
            latency = self._latency_children[route] = self.latency.labels(route)
        latency.observe(elapsed_s)

    def refused(self, method: str, route: str, reason: str) -> None:
        """Count a 503 that a layer in front of the app answered itself (``route`` names the
        layer: the load shedder, the relay to the primary), and why."""
        self.rejected.labels(reason=reason).inc()
        self.requests.labels(method_label(method), route, "503").inc()

    def watch(self, restore_queue: Callable[[], float], jobs: JobManager | None) -> None:
        """Read these gauges from the services at each scrape (the job gauges only where the
        jobs run: on the primary of several workers)."""
        watched = [(self.restore_queue, restore_queue)]
        if jobs is not None:
            watched += [
                (self.job_running, lambda: float(jobs.db.active() is not None)),
                (self.job_step, lambda: float(jobs.running_step())),
            ]
        if self.multiprocess:
            # Another worker may answer the scrape: the values must be in the files already.
            self._watched = watched
            self.refresh()
            return
        for gauge, read in watched:
            gauge.set_function(read)

    def refresh(self) -> None:
        """Write the watched gauges' current values (several workers: a task calls this), and
        this worker's process series."""
        for gauge, read in self._watched:
            gauge.set(read())
        if self.multiprocess:
            for family in self._process.collect():
                for sample in family.samples:
                    series = self.worker_process.get(sample.name.removeprefix("process_"))
                    if series is not None:
                        series.set(sample.value)

    def set_active_version(self, version: str) -> None:
        if not self.multiprocess:
            self.model.clear()
        elif self._served is not None:  # files cannot drop a series: the old version reads 0
            self.model.labels(version=self._served).set(0)
        self._served = version
        self.model.labels(version=version).set(1)

    def exposition(self) -> bytes:
        """The text of a scrape: this process's series, or every worker's."""
        return generate_latest(self.exposed)
