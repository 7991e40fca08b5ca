"""Operations: liveness, readiness, service info and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from app.deps import ServicesDep
from app.schemas.common import Status
from app.schemas.ops import InfoResponse

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    response_model=Status,
    responses={503: {"model": Status, "description": "a worker thread died: restart me"}},
    summary="Liveness: the process and its worker threads are alive",
)
async def healthz(services: ServicesDep) -> Response:
    dead = [
        name
        for name, alive in (
            ("inference", services.worker.alive),
            ("restoration", services.restorer.alive),
        )
        if not alive
    ]
    if dead:
        detail = f"the {' and '.join(dead)} thread died"
        return JSONResponse(Status(status="dead", detail=detail).model_dump(), status_code=503)
    return JSONResponse(Status(status="ok").model_dump())


@router.get(
    "/readyz",
    response_model=Status,
    responses={503: {"model": Status, "description": "warming up, or shutting down"}},
    summary="Readiness: the model is loaded and warmed up, and no shutdown has begun",
)
async def readyz(services: ServicesDep) -> Response:
    if services.draining.is_set():
        status = Status(status="draining", detail="shutting down: send no new requests")
    elif not services.worker.ready.is_set():
        status = Status(status="warming up", detail="the model is still warming up")
    else:
        return JSONResponse(Status(status="ready", detail=services.registry.degraded).model_dump())
    return JSONResponse(
        status.model_dump(),
        status_code=503,
        headers={"Retry-After": str(services.settings.retry_after_s)},
    )


# Probes and load balancers may ask with HEAD: the same answer without a body.
router.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)


@router.get("/info", response_model=InfoResponse, summary="Active model version and settings")
async def info(services: ServicesDep) -> InfoResponse:
    settings, worker = services.settings, services.worker
    return InfoResponse(
        model_version=worker.version,
        device=str(worker.device),
        dtype=str(worker.dtype).removeprefix("torch."),
        max_batch_images=worker.max_batch_images,
        max_wait_ms=worker.max_wait_s * 1000,
        max_queue_images=worker.max_queue_images,
        max_n=settings.max_n,
        max_scale=settings.max_scale,
        metrics=worker.manifest_metrics,
        admin_enabled=services.admin_token is not None,
        degraded=services.registry.degraded,
        worker=services.role.index if services.role else 0,
        workers=services.role.count if services.role else 1,
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
    summary="Prometheus metrics",
)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
