"""Application factory: ``uvicorn --factory app.main:create_app`` (or ``python -m app``).

Start-up builds every service once (``start_services``), shutdown closes them in reverse
(``stop_services``); nothing heavy happens at import.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from app.applications.restorer import RestorationWorker
from app.config import Settings
from app.deps import Services, get_jobs, require_admin
from app.http.errors import install_error_handlers
from app.http.forwarding import PrimaryForwardingMiddleware, PrimaryRelay, primary_only
from app.http.middleware import install_middleware
from app.http.openapi import document_limits
from app.http.workers import FOLLOW_INTERVAL_S, WorkerRole, default_torch_threads
from app.logs import configure_logging
from app.metrics import ServiceMetrics
from app.retraining.database import JobDatabase
from app.retraining.manager import JobManager
from app.routes import ROUTERS, web
from app.serving.forward_process import ForwardProcess
from app.serving.registry import ModelRegistry
from app.serving.rendering import EncoderPool
from app.serving.startup import ModelLoader, load_for_serving
from app.serving.worker import InferenceWorker
from gan.device import pick_device
from gan.store import LoadedGenerator, ModelStore

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def load_active(store: ModelStore, device: torch.device) -> LoadedGenerator:
    return store.load_generator(store.active_version(), device)


async def start_services(
    settings: Settings,
    metrics: ServiceMetrics,
    model_loader: ModelLoader,
    admin_token: str | None,
    draining: threading.Event,
    role: WorkerRole | None,
) -> Services:
    """Load the active model once and start the workers around it."""
    # Measured on 2 cores: leaving one core to the event loop and PNG encoding more than
    # doubles batched throughput (benchmarks/README.md).
    threads = settings.torch_threads or default_torch_threads(1)
    torch.set_num_threads(threads)
    device = pick_device(settings.device)
    store = ModelStore(settings.model_store)
    generator, degraded = await run_in_threadpool(load_for_serving, store, device, model_loader)
    worker = InferenceWorker(
        generator,
        device,
        metrics,
        max_batch_images=settings.max_batch_images,
        max_wait_ms=settings.max_wait_ms,
        max_queue_images=settings.max_queue_images,
        max_queue_wait_s=settings.max_queue_wait_s,
        admission_wait_s=settings.admission_wait_s,
        warmup_batches=settings.warmup_batches,
        dtype=DTYPES[settings.dtype],
        inline_max_images=settings.inline_max_images,
        forward_process=ForwardProcess(device, threads, DTYPES[settings.dtype])
        if settings.draws_in_child(role.count if role is not None else 1)
        else None,
    )
    worker.start()  # warms up in its own thread; /readyz turns 200 when done
    registry = ModelRegistry(store, worker, device, metrics, role)
    if degraded is not None:
        registry.serve_fallback(degraded)
    jobs = None
    if role is None or role.primary:  # the one place jobs run
        jobs = JobManager(JobDatabase(settings.state_dir / "jobs.sqlite3"), settings, registry)
        jobs.recover()
    restorer = RestorationWorker(
        worker,
        metrics,
        queue_depth=settings.restore_queue_depth,
        timeout_s=settings.restore_timeout_s,
    )
    restorer.start()
    registry.start_following(follow_interval_s(settings, role))
    metrics.watch(restore_queue=lambda: restorer.waiting, jobs=jobs)
    log.info("serving", extra={"model_version": generator.version, "device": str(device)})
    return Services(
        settings=settings,
        store=store,
        worker=worker,
        metrics=metrics,
        registry=registry,
        jobs=jobs,
        admin_token=admin_token,
        draining=draining,
        encoder=EncoderPool(settings.encode_threads),
        restorer=restorer,
        role=role,
    )


async def stop_services(services: Services) -> None:
    """Finish queued work within the grace period, then release everything."""
    grace_s = services.settings.graceful_shutdown_s
    services.registry.stop_following()
    if services.jobs is not None:
        await services.jobs.shutdown()
    await run_in_threadpool(services.worker.stop, grace_s)
    await run_in_threadpool(services.restorer.stop, grace_s)
    services.encoder.close()
    if services.jobs is not None:
        services.jobs.db.close()


def follow_interval_s(settings: Settings, role: WorkerRole | None) -> float:
    """Workers of one supervisor follow each other's activations promptly; a lone server
    follows the pointer (moved by a replica or the CLI) as configured."""
    if role is not None and role.count > 1:
        return min(settings.reload_interval_s or FOLLOW_INTERVAL_S, FOLLOW_INTERVAL_S)
    return settings.reload_interval_s


async def refresh_metrics(metrics: ServiceMetrics) -> None:
    """Several workers: write the gauges read from the services once a second."""
    while True:
        await asyncio.sleep(1.0)
        metrics.refresh()


def create_app(
    settings: Settings | None = None,
    model_loader: ModelLoader = load_active,
    role: WorkerRole | None = None,
) -> FastAPI:
    """Build the app. ``model_loader`` is the seam tests use to control start-up; ``role`` is
    a worker's place among several (``app.http.workers``), None for a lone server."""
    settings = settings or Settings()
    admin_token = settings.resolved_admin_token()  # a missing token file fails here, not later
    metrics = ServiceMetrics()
    draining = threading.Event()  # set by the server at SIGTERM: /readyz answers 503

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_json, settings.log_level)
        app.state.services = await start_services(
            settings, metrics, model_loader, admin_token, draining, role
        )
        refresher = asyncio.create_task(refresh_metrics(metrics)) if metrics.multiprocess else None
        try:
            yield
        finally:
            if refresher is not None:
                refresher.cancel()
            if relay is not None:
                await relay.close()
            await stop_services(app.state.services)

    # fastapi-offline serves /docs and /redoc from the Swagger UI and ReDoc bundles it ships, so
    # the documentation works without internet (FastAPI's own pages load them from a CDN).
    app = FastAPIOffline(
        title="MNIST digit GAN",
        version="0.1.0",
        summary="Handwritten digits drawn by a class-conditional GAN, as PNG or base64.",
        lifespan=lifespan,
    )
    app.state.draining = draining
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", web.PAGE_FILES, name="static")
    install_error_handlers(app, settings.retry_after_s)
    install_middleware(app, settings, metrics)
    relay = None
    if role is not None and not role.primary:
        relay = PrimaryRelay(role.primary_socket, settings.retry_after_s, metrics)
        paths = primary_only(ROUTERS, {require_admin, get_jobs})
        app.add_middleware(PrimaryForwardingMiddleware, relay=relay, paths=paths)
    default_openapi = app.openapi

    def openapi_with_limits() -> dict[str, Any]:
        return document_limits(default_openapi(), settings)

    app.openapi = openapi_with_limits  # type: ignore[method-assign]
    return app
