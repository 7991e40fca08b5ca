"""POST /v1/images/generations: the OpenAI Images API, so that the official ``openai`` client
(``base_url`` pointed here, any API key) draws digits. Errors come in OpenAI's shape."""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request

from app.deps import JsonBodyDep, ServicesDep
from app.http.disconnect import cancel_on_disconnect
from app.http.errors import OpenAIError
from app.http.responses import BUSY, NOT_JSON
from app.limits import MAX_N, exceeded
from app.schemas.openai import (
    GeneratedImageData,
    ImageGenerationRequest,
    ImagesResponse,
    OpenAIErrorResponse,
    PromptError,
    SizeError,
    digit_of,
    scale_of,
)
from app.serving import rendering
from app.serving.identity import check_pinned, pick_seed, truncation_text

router = APIRouter(prefix="/v1", tags=["openai"])


@router.post(
    "/images/generations",
    response_model=ImagesResponse,
    responses={
        400: {"model": OpenAIErrorResponse, "description": "a parameter OpenAI would refuse"},
        404: {"model": OpenAIErrorResponse, "description": "the model is not the one served"},
        **NOT_JSON,
        **BUSY,
    },
    summary="Generate digits (OpenAI Images API)",
    dependencies=[JsonBodyDep],
)
async def generate_images(
    body: ImageGenerationRequest, request: Request, services: ServicesDep
) -> ImagesResponse:
    settings = services.settings
    try:
        digit = digit_of(body.prompt)
        scale = scale_of(body.size, settings.max_scale)
    except (PromptError, SizeError) as error:
        param = "prompt" if isinstance(error, PromptError) else "size"
        raise OpenAIError(400, str(error), param=param) from None
    too_many = exceeded(MAX_N, body.n, settings)
    if too_many is not None:
        raise OpenAIError(400, f"n: {too_many}", param="n")
    check_pinned(body.model, services.worker.version)
    first_seed = pick_seed(None)
    seeds = list(range(first_seed, first_seed + body.n))
    result = await cancel_on_disconnect(
        request,
        services.worker.generate(
            seeds, [digit] * body.n, settings.request_timeout_s, truncation=body.truncation
        ),
    )
    check_pinned(body.model, result.version)
    truncation = body.truncation
    if body.response_format == "url":
        data = [
            GeneratedImageData(
                url=image_url(request, digit, seed, scale, result.version, truncation),
                revised_prompt=revised_prompt(digit, seed, result.version, truncation),
            )
            for seed in seeds
        ]
    else:
        pngs = await services.encoder.run(rendering.image_pngs, result, scale)
        data = [
            GeneratedImageData(
                b64_json=base64.b64encode(png).decode("ascii"),
                revised_prompt=revised_prompt(digit, seed, result.version, truncation),
            )
            for png, seed in zip(pngs, seeds, strict=True)
        ]
    return ImagesResponse(created=int(time.time()), data=data)


def image_url(
    request: Request, digit: int, seed: int, scale: int, version: str, truncation: float = 1.0
) -> str:
    """The seeded GET URL of one image: pinned to its version, so cacheable for good."""
    params: dict[str, str | int] = {"seed": seed, "scale": scale, "version": version}
    text = truncation_text(truncation)
    if text is not None:
        params["truncation"] = text
    return f"{request.base_url}digits/{digit}.png?{urlencode(params)}"


def revised_prompt(digit: int, seed: int, version: str, truncation: float = 1.0) -> str:
    text = truncation_text(truncation)
    shown = "" if text is None else f", truncation {text}"
    return f"a handwritten {digit} (seed {seed}{shown}, model {version})"
