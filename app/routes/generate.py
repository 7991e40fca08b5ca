"""POST /generate: digits for scripts and curl, as PNG or base64 JSON."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.deps import JsonBodyDep, ServicesDep
from app.http.disconnect import cancel_on_disconnect
from app.http.negotiation import negotiate
from app.http.responses import BUSY, NOT_JSON, PINNED_VERSION, UNREADABLE_BODY
from app.limits import check_fields, invalid
from app.schemas.images import GenerateRequest, GenerateResponse
from app.serving import rendering
from app.serving.identity import check_pinned, pick_seed, truncation_headers

router = APIRouter(tags=["generate"])


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses={
        200: {
            "content": {"image/png": {}},
            "description": "base64 JSON, or image/png when format=png, grid=true or "
            "Accept: image/png",
        },
        **UNREADABLE_BODY,
        **NOT_JSON,
        **PINNED_VERSION,
        **BUSY,
    },
    summary="Generate digit images",
    dependencies=[JsonBodyDep],
)
async def generate(body: GenerateRequest, request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    check_fields(body, settings)
    # A grid is only ever a PNG, so it needs no Accept header to say so.
    image_format = body.format or ("png" if body.grid else negotiate(request.headers.get("accept")))
    if body.grid and image_format != "png":
        raise invalid(("body", "grid"), "grid=true makes one PNG: use format=png", body.grid)
    if image_format == "png" and body.n > 1 and not body.grid:
        raise invalid(
            ("body", "n"),
            "format=png returns one image: use n=1, grid=true or format=base64",
            body.n,
        )
    check_pinned(body.version, services.worker.version)
    first_seed = pick_seed(body.seed)
    seeds = list(range(first_seed, first_seed + body.n))
    result = await cancel_on_disconnect(
        request,
        services.worker.generate(
            seeds, [body.digit] * body.n, settings.request_timeout_s, truncation=body.truncation
        ),
    )
    check_pinned(body.version, result.version)
    headers = {
        "X-Model-Version": result.version,
        "X-Seed": str(first_seed),
        **truncation_headers(body.truncation),
        "Cache-Control": "no-store",
    }
    if image_format == "png":
        if body.grid:
            png = await services.encoder.run(rendering.grid_png, result, body.scale)
        else:
            png = await rendering.single_png(services.encoder, result, 0, body.scale)
        return Response(png, media_type="image/png", headers=headers)
    payload = await services.encoder.run(rendering.base64_response, result, body.scale)
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
