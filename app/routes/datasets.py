"""POST /datasets: a synthetic labelled data set (npz or MNIST IDX in a zip), streamed."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.datasets import DatasetPlan, DatasetStream
from app.disconnect import cancel_on_disconnect
from app.limits import check_max, raise_if_any
from app.routes.generate import ERRORS, RANDOM_SEED_BOUND, UNREADABLE_BODY
from app.schemas import DatasetRequest
from app.services import ServicesDep

router = APIRouter(tags=["applications"])


@router.post(
    "/datasets",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "a zip archive (.npz or the IDX pair) with a manifest.json, streamed "
            "as it is generated; X-Model-Version and X-Seed say how to regenerate it",
        },
        **UNREADABLE_BODY,
        **ERRORS,
    },
    summary="Generate a synthetic labelled data set",
)
async def create_dataset(
    body: DatasetRequest, request: Request, services: ServicesDep
) -> StreamingResponse:
    settings = services.settings
    raise_if_any(
        check_max(
            ("body", "per_digit"),
            body.per_digit,
            settings.dataset_max_per_digit,
            "GAN_DATASET_MAX_PER_DIGIT",
        )
    )
    seed = body.seed if body.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
    plan = DatasetPlan(tuple(body.digits), body.per_digit, seed, body.format)
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
        "Cache-Control": "no-store",
    }
    return StreamingResponse(stream.chunks(), media_type="application/zip", headers=headers)
