"""Prometheus metrics, on a registry per app instance (so tests and replicas never collide)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RESTORE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServiceMetrics:
    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only add noise for these counters
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.queue_depth = Gauge("gan_queue_images", "Images waiting in the queue", registry=r)
        self.images = Counter("gan_images_generated", "Images generated", registry=r)
        self.rejected = Counter(
            "gan_rejected_requests", "Requests shed by backpressure", ["reason"], registry=r
        )
        self.restore_duration = Histogram(
            "gan_restore_seconds",
            "Compute time of one restoration",
            buckets=RESTORE_BUCKETS,
            registry=r,
        )
        self.restore_outcomes = Counter(
            "gan_restorations", "Restorations by outcome", ["outcome"], registry=r
        )
        self.fallback = Gauge(
            "gan_model_fallback",
            "1 when the served version is not the active one (it failed to verify or load)",
            registry=r,
        )
        self.model = Gauge(
            "gan_model_info", "Active model version (value 1)", ["version"], registry=r
        )

    def set_active_version(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version=version).set(1)
