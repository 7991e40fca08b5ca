"""GET /digits/{digit}.png: an image URL for <img src>, cacheable when seeded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from app.deps import ServicesDep
from app.http.disconnect import cancel_on_disconnect
from app.http.responses import BUSY, PINNED_VERSION
from app.limits import MAX_SCALE, check, raise_if_any
from app.schemas.common import MAX_REQUEST_SEED, TRUNCATION_DESCRIPTION
from app.serving import rendering
from app.serving.identity import check_pinned, pick_seed, truncation_headers
from gan.store import VERSION_PATTERN

router = APIRouter(tags=["generate"])
IMMUTABLE = "public, max-age=31536000, immutable"


@router.get(
    "/digits/{digit}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "the digit as a PNG"},
        304: {"description": "not modified (If-None-Match matched the ETag)"},
        **PINNED_VERSION,
        **BUSY,
    },
    summary="A digit image URL for web pages",
)
async def digit_png(
    request: Request,
    services: ServicesDep,
    digit: Annotated[int, Path(ge=0, le=9, description="the digit to draw")],
    seed: Annotated[
        int | None, Query(ge=0, le=MAX_REQUEST_SEED, description="fixes the image; omit for random")
    ] = None,
    scale: Annotated[int, Query(ge=1, description=f"upscale factor (limit: {MAX_SCALE.env})")] = 1,
    version: Annotated[
        str | None,
        Query(
            pattern=VERSION_PATTERN.pattern,
            description="pin a model version: the URL then never changes meaning",
        ),
    ] = None,
    truncation: Annotated[
        float, Query(gt=0, le=1, allow_inf_nan=False, description=TRUNCATION_DESCRIPTION)
    ] = 1.0,
) -> Response:
    settings = services.settings
    raise_if_any(check(MAX_SCALE, ("query", "scale"), scale, settings))
    active = services.worker.version
    check_pinned(version, active)
    if seed is None:
        cache_control = "no-store"
    elif version is not None:
        cache_control = IMMUTABLE
    else:
        cache_control = f"public, max-age={settings.cache_max_age_s}"
    if seed is not None:
        tag = rendering.etag(active, digit, seed, scale, truncation)
        if rendering.etag_matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": cache_control})
    chosen_seed = pick_seed(seed)
    result = await cancel_on_disconnect(
        request,
        services.worker.generate(
            [chosen_seed], [digit], settings.request_timeout_s, truncation=truncation
        ),
    )
    check_pinned(version, result.version)
    png = await rendering.single_png(services.encoder, result, 0, scale)
    headers = {
        "Cache-Control": cache_control,
        "X-Model-Version": result.version,
        "X-Seed": str(chosen_seed),
        **truncation_headers(truncation),
    }
    if seed is not None:
        headers["ETag"] = rendering.etag(result.version, digit, seed, scale, truncation)
    return Response(png, media_type="image/png", headers=headers)


# Caches and link checkers ask with HEAD: the same headers (ETag, Cache-Control), no body.
router.add_api_route("/digits/{digit}.png", digit_png, methods=["HEAD"], include_in_schema=False)
