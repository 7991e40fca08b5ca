"""Application factory: ``uvicorn --factory app.main:create_app`` (or ``python -m app``)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from app.config import Settings
from app.errors import ServiceError
from app.jobdb import JobDatabase
from app.jobs import IdempotencyConflictError, JobConflictError, JobManager, JobStateError
from app.limits import document_limits
from app.logs import configure_logging
from app.metrics import ServiceMetrics
from app.middleware import (
    AllowHeaderMiddleware,
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
)
from app.registry import ModelRegistry
from app.rendering import EncoderPool
from app.restorer import RestorationWorker
from app.routes import datasets, digits, generate, jobs, models, ops, restore, web
from app.services import Services
from app.worker import InferenceWorker
from gan.device import pick_device
from gan.restoration import NothingKnownError, RestorationError
from gan.store import (
    IntegrityError,
    InvalidVersionName,
    LoadedGenerator,
    ModelStore,
    StoreError,
    VersionExists,
    VersionNotFound,
)

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
# Domain exceptions that are the client's business, and the status each becomes.
CLIENT_ERRORS: dict[type[Exception], int] = {
    VersionNotFound: 404,
    InvalidVersionName: 422,
    IntegrityError: 409,
    VersionExists: 409,
    JobConflictError: 409,
    IdempotencyConflictError: 409,
    JobStateError: 409,
    RestorationError: 422,
    NothingKnownError: 422,
}


def load_active(store: ModelStore, device: torch.device) -> LoadedGenerator:
    return store.load_generator(store.active_version(), device)


def create_app(
    settings: Settings | None = None,
    model_loader: Callable[[ModelStore, torch.device], LoadedGenerator] = load_active,
) -> FastAPI:
    """Build the app. ``model_loader`` is the seam tests use to control start-up."""
    settings = settings or Settings()
    metrics = ServiceMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_json, settings.log_level)
        # Measured on 2 cores: leaving one core to the event loop and PNG encoding more than
        # doubles batched throughput (benchmarks/README.md).
        torch.set_num_threads(settings.torch_threads or max(1, (os.cpu_count() or 2) - 1))
        device = pick_device(settings.device)
        store = ModelStore(settings.model_store)
        generator = await run_in_threadpool(model_loader, store, device)
        worker = InferenceWorker(
            generator,
            device,
            metrics,
            max_batch_images=settings.max_batch_images,
            max_wait_ms=settings.max_wait_ms,
            max_queue_images=settings.max_queue_images,
            warmup_batches=settings.warmup_batches,
            dtype=DTYPES[settings.dtype],
        )
        worker.start()  # warms up in its own thread; /readyz turns 200 when done
        registry = ModelRegistry(store, worker, device)
        job_db = JobDatabase(settings.state_dir / "jobs.sqlite3")
        job_manager = JobManager(job_db, settings, registry)
        job_manager.recover()
        restorer = RestorationWorker(
            worker,
            metrics,
            queue_depth=settings.restore_queue_depth,
            timeout_s=settings.restore_timeout_s,
        )
        restorer.start()
        encoder = EncoderPool(settings.encode_threads)
        app.state.services = Services(
            settings=settings,
            store=store,
            worker=worker,
            metrics=metrics,
            registry=registry,
            jobs=job_manager,
            admin_token=settings.resolved_admin_token(),
            encoder=encoder,
            restorer=restorer,
        )
        follower = (
            asyncio.create_task(registry.follow_active_pointer(settings.reload_interval_s))
            if settings.reload_interval_s > 0
            else None
        )
        log.info("serving", extra={"model_version": generator.version, "device": str(device)})
        try:
            yield
        finally:
            if follower is not None:
                follower.cancel()
            await job_manager.shutdown()
            await run_in_threadpool(worker.stop, settings.graceful_shutdown_s)
            await run_in_threadpool(restorer.stop, settings.graceful_shutdown_s)
            encoder.close()
            job_db.close()

    app = FastAPI(
        title="MNIST digit GAN",
        version="0.1.0",
        summary="Handwritten digits drawn by a class-conditional GAN, as PNG or base64.",
        lifespan=lifespan,
    )
    app.include_router(generate.router)
    app.include_router(digits.router)
    app.include_router(jobs.router)
    app.include_router(models.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    app.include_router(datasets.router)
    app.include_router(restore.router)
    app.mount("/static", web.PAGE_FILES, name="static")

    @app.exception_handler(ServiceError)
    async def service_error(_: Request, error: ServiceError) -> JSONResponse:
        headers = {"Retry-After": str(settings.retry_after_s)} if error.status_code == 503 else None
        return JSONResponse({"detail": str(error)}, status_code=error.status_code, headers=headers)

    async def client_error(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=CLIENT_ERRORS[type(error)])

    for error_type in CLIENT_ERRORS:
        app.add_exception_handler(error_type, client_error)

    @app.exception_handler(StoreError)
    async def store_error(_: Request, error: StoreError) -> JSONResponse:
        log.error("model store error: %s", error)
        return JSONResponse({"detail": f"model store error: {error}"}, status_code=500)

    default_openapi = app.openapi

    def openapi_with_limits() -> dict[str, Any]:
        # The schema promises this server's configured limits, not the hard ceilings.
        return document_limits(default_openapi(), settings)

    app.openapi = openapi_with_limits  # type: ignore[method-assign]

    app.add_middleware(AllowHeaderMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "Authorization", "X-Request-ID", "Idempotency-Key"],
        expose_headers=[
            "X-Request-ID",
            "X-Model-Version",
            "X-Seed",
            "ETag",
            "Retry-After",
            "X-Digit",
            "X-Digit-Score",
            "X-Reconstruction-Error",
        ],
    )
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    return app
