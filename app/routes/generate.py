"""POST /generate: digits for scripts and curl, as PNG or base64 JSON."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from app import rendering
from app.disconnect import cancel_on_disconnect
from app.errors import VersionMismatchError
from app.limits import check_max, invalid, raise_if_any
from app.schemas import ErrorResponse, GenerateRequest, GenerateResponse, ImageFormat
from app.services import ServicesDep

router = APIRouter(tags=["generate"])

RANDOM_SEED_BOUND = 2**31
# FastAPI answers a body that is not UTF-8 with 400 (bad JSON syntax is a 422).
UNREADABLE_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "request body is not UTF-8 text"}
}
ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "request body too large"},
    503: {"model": ErrorResponse, "description": "busy (queue full or deadline): see Retry-After"},
}


PINNED_VERSION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "the pinned version is not served here"}
}


def check_pinned(pinned: str | None, served: str) -> None:
    """A request that names a version gets that version's images or a 404, never another's.
    Checked before queueing (the usual case) and again on the result: a swap may land between."""
    if pinned is not None and pinned != served:
        raise VersionMismatchError(
            f"model version {pinned!r} is not served here (active: {served!r})"
        )


PNG_RANGES = ("image/png", "image/*", "*/*")
JSON_RANGES = ("application/json", "application/*", "*/*")


def negotiate(accept: str | None) -> ImageFormat:
    """PNG when the client prefers image/png over JSON (by q-value), else base64 JSON."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (piece.strip().lower() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        weights[media] = max(weights.get(media, 0.0), quality)

    def preference(ranges: tuple[str, ...]) -> float:
        # The most specific range present decides (RFC 9110, 12.5.1).
        return next((weights[r] for r in ranges if r in weights), 0.0)

    return "png" if preference(PNG_RANGES) > preference(JSON_RANGES) else "base64"


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
        **PINNED_VERSION_ERRORS,
        **ERRORS,
    },
    summary="Generate digit images",
)
async def generate(body: GenerateRequest, request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    raise_if_any(
        check_max(("body", "n"), body.n, settings.max_n, "GAN_MAX_N"),
        check_max(("body", "scale"), body.scale, settings.max_scale, "GAN_MAX_SCALE"),
    )
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
    first_seed = body.seed if body.seed is not None else secrets.randbelow(RANDOM_SEED_BOUND)
    seeds = list(range(first_seed, first_seed + body.n))
    result = await cancel_on_disconnect(
        request,
        services.worker.generate(seeds, [body.digit] * body.n, settings.request_timeout_s),
    )
    check_pinned(body.version, result.version)
    headers = {
        "X-Model-Version": result.version,
        "X-Seed": str(first_seed),
        "Cache-Control": "no-store",
    }
    if image_format == "png":
        if body.grid:
            png = await services.encoder.run(rendering.grid_png, result, body.scale)
        else:
            png = await services.encoder.run(rendering.image_png, result, 0, body.scale)
        return Response(png, media_type="image/png", headers=headers)
    payload = await services.encoder.run(rendering.base64_response, result, body.scale)
    return Response(payload.model_dump_json(), media_type="application/json", headers=headers)
