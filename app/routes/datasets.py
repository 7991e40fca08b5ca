"""POST /datasets: a synthetic labelled data set (npz or MNIST IDX in a zip), streamed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.applications.datasets import DatasetPlan, DatasetStream
from app.deps import JsonBodyDep, ServicesDep
from app.http.disconnect import cancel_on_disconnect
from app.http.responses import BUSY, NOT_JSON, PINNED_VERSION, UNREADABLE_BODY
from app.limits import check_fields
from app.schemas.applications import DatasetRequest
from app.serving.identity import check_pinned, pick_seed, truncation_headers

router = APIRouter(tags=["applications"])


@router.post(
    "/datasets",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "a zip archive (.npz or the IDX pair) with a manifest.json, streamed "
            "as it is generated; X-Model-Version, X-Seed (and X-Truncation when not 1) say how to "
            "regenerate it",
        },
        **UNREADABLE_BODY,
        **PINNED_VERSION,
        **NOT_JSON,
        **BUSY,
    },
    summary="Generate a synthetic labelled data set",
    dependencies=[JsonBodyDep],
)
async def create_dataset(
    body: DatasetRequest, request: Request, services: ServicesDep
) -> StreamingResponse:
    settings = services.settings
    check_fields(body, settings)
    check_pinned(body.version, services.worker.version)
    seed = pick_seed(body.seed)
    plan = DatasetPlan(tuple(body.digits), body.per_digit, seed, body.format, body.truncation)
    stream = DatasetStream(
        services.worker,
        plan,
        chunk_images=min(settings.max_batch_images, settings.max_queue_images),
        timeout_s=settings.request_timeout_s,
    )
    await cancel_on_disconnect(request, stream.start())  # a busy server says 503 up front
    headers = {
        "Content-Disposition": f'attachment; filename="{plan.filename}"',
        "X-Model-Version": stream.version,
        "X-Seed": str(seed),
        **truncation_headers(body.truncation),
        "Cache-Control": "no-store",
    }
    return StreamingResponse(stream.chunks(), media_type="application/zip", headers=headers)
