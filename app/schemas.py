"""Request and response bodies of the public API.

Static bounds here are hard ceilings that keep the OpenAPI schema honest; the configurable limits
(``GAN_MAX_N``, ``GAN_MAX_SCALE``) are checked against settings by ``app.limits``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from gan.sampling import MAX_SEED

HARD_MAX_N = 4096
HARD_MAX_SCALE = 64
# seed + n - 1 must stay a valid seed, so seeds leave room for the largest batch.
MAX_REQUEST_SEED = MAX_SEED - HARD_MAX_N

ImageFormat = Literal["png", "base64"]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"digit": 7, "n": 1, "seed": 42, "format": "png", "scale": 4},
                {"n": 16, "seed": 0, "format": "png", "grid": True},
                {"digit": 3, "n": 4, "format": "base64"},
            ]
        },
    )

    digit: int | None = Field(
        None, ge=0, le=9, description="0-9; omit for a random digit per image"
    )
    n: int = Field(1, ge=1, le=HARD_MAX_N, description="number of images (limit: GAN_MAX_N)")
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_REQUEST_SEED,
        description="image i uses seed+i, so each image is reproducible alone; omit for random",
    )
    format: ImageFormat | None = Field(
        None, description="png or base64 (JSON); omitted: PNG if Accept asks for image/png"
    )
    grid: bool = Field(False, description="png only: tile all n images into one PNG")
    scale: int = Field(
        1, ge=1, le=HARD_MAX_SCALE, description="nearest-neighbour upscale (limit: GAN_MAX_SCALE)"
    )


class GeneratedImage(BaseModel):
    digit: int = Field(description="the digit drawn")
    seed: int = Field(description="regenerates exactly this image with the same model version")
    png_base64: str = Field(description="the PNG file, base64-encoded")


class GenerateResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    images: list[GeneratedImage]


class InfoResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    device: str
    dtype: str
    max_batch_images: int
    max_wait_ms: float
    max_queue_images: int
    max_n: int
    max_scale: int
    metrics: dict[str, object] = Field(description="evaluation metrics from the manifest")


class Status(BaseModel):
    status: str
    detail: str | None = None


class ErrorResponse(BaseModel):
    detail: str
