"""POST /generate and the image URLs: what a request asks for and what it gets back."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from app.limits import MAX_N, MAX_SCALE
from app.schemas.common import (
    MAX_REQUEST_SEED,
    TRUNCATION_DESCRIPTION,
    json_integers,
    json_number,
    truncation_field,
)
from gan.store import VERSION_PATTERN

ImageFormat = Literal["png", "base64"]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"digit": 7, "n": 1, "seed": 42, "format": "png", "scale": 4},
                {"n": 16, "seed": 0, "format": "png", "grid": True},
                {"digit": 3, "n": 4, "format": "base64"},
                {"digit": 5, "n": 8, "seed": 7, "version": "mnist-cgan-v6"},
                {"digit": 2, "n": 4, "seed": 3, "truncation": 0.7, "format": "base64"},
            ],
            # The combinations the route rejects (422), so the schema admits only what it serves.
            "allOf": [
                {  # format=png with n > 1 needs grid=true
                    "not": {
                        "required": ["format", "n"],
                        "properties": {
                            "format": {"const": "png"},
                            "n": {"minimum": 2},
                            "grid": {"const": False},
                        },
                    }
                },
                {  # grid=true is a PNG
                    "not": {
                        "required": ["format", "grid"],
                        "properties": {"format": {"const": "base64"}, "grid": {"const": True}},
                    }
                },
            ],
        },
    )

    digit: int | None = Field(
        None, ge=0, le=9, description="0-9; omit for a random digit per image"
    )
    n: int = Field(1, ge=1, description=f"number of images (limit: {MAX_N.env})")
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_REQUEST_SEED,
        description="image i uses seed+i, so each image is reproducible alone; omit for random",
    )
    format: ImageFormat | None = Field(
        None,
        description="png or base64 (JSON); omitted: PNG if grid=true or Accept asks for "
        "image/png, else base64",
    )
    grid: StrictBool = Field(
        False, description="tile all n images into one PNG (format png, or format omitted)"
    )
    scale: int = Field(1, ge=1, description=f"nearest-neighbour upscale (limit: {MAX_SCALE.env})")
    version: str | None = Field(
        None,
        pattern=VERSION_PATTERN.pattern,
        description="draw only with this model version (404 when another one is active), so "
        "that seed + version name the same images forever",
    )
    truncation: float = truncation_field()

    _json_integers = field_validator("digit", "n", "seed", "scale", mode="before")(json_integers)
    _json_number = field_validator("truncation", mode="before")(json_number)


class GeneratedImage(BaseModel):
    digit: int = Field(description="the digit drawn")
    seed: int = Field(
        description="regenerates exactly this image with the same model version and truncation"
    )
    truncation: float = Field(1.0, description=TRUNCATION_DESCRIPTION)
    png_base64: str = Field(description="the PNG file, base64-encoded")


class GenerateResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    images: list[GeneratedImage]
