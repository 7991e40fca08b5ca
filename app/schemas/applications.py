"""Synthetic data sets (POST /datasets) and restoration of damaged digits (POST /restore)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from app.limits import (
    DATASET_MAX_PER_DIGIT,
    RESTORE_MAX_RESTARTS,
    RESTORE_MAX_STEPS,
    env_name,
)
from app.schemas.common import MAX_SAFE_INTEGER, json_integers, json_number, truncation_field
from app.schemas.images import ImageFormat
from gan.sampling import MAX_SEED
from gan.store import VERSION_PATTERN

DIGIT_COUNT = 10
# Image i of a data set uses seed + i, so the whole range must stay a JSON-safe seed.
MAX_DATASET_SEED = min(MAX_SEED, MAX_SAFE_INTEGER) - DIGIT_COUNT * DATASET_MAX_PER_DIGIT.hard_cap
MAX_RESTORE_SEED = 2**31 - 1
# A generated 7 (seed 1, mnist-cgan-v2) with a band erased to transparency: the example restores.
EXAMPLE_DAMAGED_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABwAAAAcCAQAAADYBBcfAAABbUlEQVR42u2Uu0oDQRSG/9ldoxBRFEUR"
    "0oiWCoKVoI2dL6BgZWMt4msIdr6Cb2Bj4wUJ2FjGIloJWnhDMdlNdj4LE5O9KoKds80Mc745Z898jBH6"
    "1XCkf/BHoCtHrgrq146m1aeiRuW29kwCpf0d0aCBT42QJm/cU+cFnxoWi+WBOTrRXeAUARZLe3Rmn6uQ"
    "Ku5XdFepVZ1HbOgU5+tOkqOhyH5Xeo/jHI9C9tJLFcLJAd+ZzAbzzD3G/A4sReJMItRkkuSbgzAYDC4T"
    "lLGApUpvLIEXT9evTW2prku5WtKwjKQ3rcjPNkeIDSo0CQlaxoDlldloW+ICSI6W5SvQrU50o4KM0LO2"
    "VUntWeSccaaZZ4RVngAI2KUnkS3lOjyGKDLDIwAhZcbSsThocClx2vq7e9a6tP4GHOQAH4vlhUMGsrCk"
    "OUUuCIEm1yymdDO1q5JU05UCWQU60Fnuo5s4q8AC+6zjZZeZ6upfv3IfHdOzZ4NFO0gAAAAASUVORK5C"
    "YII="
)

DatasetFormat = Literal["npz", "idx"]
MaskRule = Literal["white", "black", "transparent"]


class DatasetRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {"per_digit": 100, "seed": 0, "format": "npz"},
                {"digits": [3, 8], "per_digit": 500, "seed": 7, "format": "idx"},
            ]
        },
    )

    digits: list[Annotated[int, Field(ge=0, le=9)]] = Field(
        default_factory=lambda: list(range(DIGIT_COUNT)),
        min_length=1,
        max_length=DIGIT_COUNT,
        json_schema_extra={"uniqueItems": True},
        description="the digits wanted, each once; default all ten. Images come digit by digit "
        "in this order",
    )
    per_digit: int = Field(
        ge=1, description=f"samples of each digit (limit: {DATASET_MAX_PER_DIGIT.env})"
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_DATASET_SEED,
        description="image i uses seed+i, as in POST /generate; omit for random (see X-Seed)",
    )
    version: str | None = Field(
        None,
        pattern=VERSION_PATTERN.pattern,
        description="draw only with this model version (404 when another one is active), so "
        "that the request regenerates the same data set forever",
    )
    format: DatasetFormat = Field(
        "npz",
        description="npz: images.npy (N, 28, 28) uint8, labels.npy, seeds.npy; idx: the MNIST "
        "IDX pair; both zip archives with a manifest.json",
    )
    truncation: float = truncation_field()

    @field_validator("digits", "per_digit", "seed", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        return json_integers(value)

    _json_number = field_validator("truncation", mode="before")(json_number)

    @field_validator("digits")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("unique_items", "List items should be unique")
        return value


class RestoreOptions(BaseModel):
    """The fields of POST /restore besides its images, shared by its JSON and form bodies."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mask_rule: MaskRule | None = Field(
        None,
        description="instead of a mask image: white = pure white (255) pixels are damaged, "
        "black = pure black (0) ones, transparent = fully transparent ones (alpha 0)",
    )
    digit: int | None = Field(None, ge=0, le=9, description="the digit, if known; omit to infer")
    format: ImageFormat | None = Field(
        None, description="png or base64 (JSON); omitted: PNG if Accept asks for it, else JSON"
    )
    steps: int | None = Field(
        None,
        ge=1,
        description=f"optimisation steps (default {env_name('restore_steps')}, limit "
        f"{RESTORE_MAX_STEPS.env})",
    )
    restarts: int | None = Field(
        None,
        ge=1,
        description=f"latent codes optimised per digit (default {env_name('restore_restarts')}, "
        f"limit {RESTORE_MAX_RESTARTS.env})",
    )
    seed: int = Field(
        0,
        ge=0,
        le=MAX_RESTORE_SEED,
        description="seeds the initial latent codes: the same input and seed restore the same",
    )


class RestoreRequest(RestoreOptions):
    """POST /restore as JSON: the images as base64 PNG (or data: URLs)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"image": EXAMPLE_DAMAGED_PNG, "format": "base64"}]}
    )

    image: str = Field(description="the damaged digit: a 28x28 PNG, base64 or a data: URL")
    mask: str | None = Field(
        None, description="a 28x28 PNG, base64 or a data: URL: light pixels (>= 128) are damaged"
    )

    @field_validator("digit", "steps", "restarts", "seed", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        return json_integers(value)


class RestoreUpload(RestoreOptions):
    """POST /restore as multipart/form-data: the images as PNG files."""

    image: bytes = Field(description="the damaged digit: a 28x28 PNG file")
    mask: bytes | None = Field(
        None, description="a 28x28 PNG file: light pixels (>= 128) are damaged"
    )


class RestoreResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    model_version: str
    digit: int = Field(description="the digit given, or the one inferred")
    digit_given: bool
    score: float = Field(description="the digit's share of the posterior over the digits tried")
    scores: dict[str, float] = Field(description="every digit tried and its share")
    reconstruction_error: float = Field(
        description="RMS difference of the generated and the input image on the undamaged "
        "pixels, in [0, 1] intensity units"
    )
    damaged_pixels: int
    steps: int
    restarts: int
    seed: int
    png_base64: str = Field(
        description="the restored PNG: undamaged pixels as sent, damaged ones generated"
    )
