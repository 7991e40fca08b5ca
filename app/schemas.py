"""Request and response bodies of the public API.

Static bounds here are hard ceilings that keep the OpenAPI schema honest; the configurable limits
(``GAN_MAX_N``, ``GAN_MAX_SCALE``) are checked against settings by ``app.limits``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError

from gan.networks import Upsampling
from gan.sampling import MAX_SEED
from gan.store import VERSION_PATTERN

HARD_MAX_N = 4096
HARD_MAX_SCALE = 64
# Seeds travel as JSON numbers, so they stay JSON-safe integers (exact as IEEE doubles, e.g. in
# JavaScript and JSON Schema validators); seed + n - 1 must stay valid too, hence the room left
# for the largest batch.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_REQUEST_SEED = min(MAX_SEED, MAX_SAFE_INTEGER) - HARD_MAX_N

ImageFormat = Literal["png", "base64"]


class GenerateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"digit": 7, "n": 1, "seed": 42, "format": "png", "scale": 4},
                {"n": 16, "seed": 0, "format": "png", "grid": True},
                {"digit": 3, "n": 4, "format": "base64"},
                {"digit": 5, "n": 8, "seed": 7, "version": "mnist-cgan-v1"},
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
    n: int = Field(1, ge=1, le=HARD_MAX_N, description="number of images (limit: GAN_MAX_N)")
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
    scale: int = Field(
        1, ge=1, le=HARD_MAX_SCALE, description="nearest-neighbour upscale (limit: GAN_MAX_SCALE)"
    )
    version: str | None = Field(
        None,
        pattern=VERSION_PATTERN.pattern,
        description="draw only with this model version (404 when another one is active), so "
        "that seed + version name the same images forever",
    )

    @field_validator("digit", "n", "seed", "scale", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        """Integers as JSON Schema means them: 3 and 3.0 pass, "3" and true do not (pydantic's
        lax mode would coerce those, its strict mode would refuse 3.0)."""
        if isinstance(value, str | bool):
            raise PydanticCustomError("int_type", "Input should be a valid integer")
        return value


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


class JobParams(BaseModel):
    """Parameters of a retraining job. The data directory comes from settings, never a request.
    The defaults are the training CLI's (a test holds them equal), except for the job's length."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"steps": 2000, "batch_size": 64, "loss": "hinge"}]},
    )

    steps: int = Field(
        2000, ge=1, le=10_000_000, description="optimizer steps (limit: GAN_MAX_JOB_STEPS)"
    )
    batch_size: int = Field(64, ge=2, le=1024)
    loss: Literal["bce", "hinge"] = Field(
        "bce", description="non-saturating minimax (bce) or hinge"
    )
    lr_g: float = Field(2e-4, gt=0, le=0.1)
    lr_d: float = Field(2e-4, gt=0, le=0.1)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    ema_decay: float = Field(0.999, ge=0, lt=1)
    mode_seeking: float = Field(0.25, ge=0, le=100, description="mode-seeking regulariser weight")
    aux_classifier: float = Field(0.1, ge=0, le=100, description="AC-GAN classification weight")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    latent_dim: int = Field(64, ge=1, le=512)
    embed_dim: int = Field(32, ge=1, le=512)
    g_channels: int = Field(128, ge=2, le=1024)
    upsampling: Upsampling = Field(
        "transpose", description="generator upsampling: transposed conv, or nearest + conv"
    )
    conditional_norm: StrictBool = Field(
        True, description="the digit scales and shifts every batch norm of the generator"
    )
    d_channels: int = Field(128, ge=2, le=1024)
    eval_per_digit: int = Field(1000, ge=10, le=5000, description="samples per digit to evaluate")

    @field_validator(
        "steps", "batch_size", "lr_g", "lr_d", "beta1", "beta2", "ema_decay", "mode_seeking",
        "aux_classifier", "seed", "latent_dim", "embed_dim", "g_channels", "d_channels",
        "eval_per_digit", mode="before",
    )  # fmt: skip
    @classmethod
    def _json_number(cls, value: object) -> object:
        """Numbers as JSON Schema means them: "2" and true are refused, not coerced."""
        if isinstance(value, str | bool):
            raise PydanticCustomError("number_type", "Input should be a valid number")
        return value


class JobResponse(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    id: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    params: dict[str, object]
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: dict[str, object] = Field(description="step, epoch, losses, images/s, ETA")
    version: str | None = Field(description="the version this job produces")
    parent: str | None = Field(description="the version active when the job started")
    metrics: dict[str, object] | None
    decision: dict[str, object] | None = Field(description="promotion decision and its reasons")
    error: str | None
    log_tail: str
    links: dict[str, str]


class ModelVersion(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    version: str
    active: bool
    created_at: str
    parent: str | None
    architecture: dict[str, object]
    metrics: dict[str, object]
    weights_sha256: str
    training: dict[str, object]
    samples_url: str


# ----- synthetic data sets (POST /datasets) and restoration (POST /restore) ----------------------
HARD_MAX_PER_DIGIT = 100_000
HARD_MAX_RESTORE_STEPS = 10_000
HARD_MAX_RESTARTS = 256
DIGIT_COUNT = 10
# Image i of a data set uses seed + i, so the whole range must stay a JSON-safe seed.
MAX_DATASET_SEED = min(MAX_SEED, MAX_SAFE_INTEGER) - DIGIT_COUNT * HARD_MAX_PER_DIGIT
MAX_RESTORE_SEED = 2**31 - 1

DatasetFormat = Literal["npz", "idx"]
MaskRule = Literal["white", "black", "transparent"]


def _reject_text_and_bools(value: object) -> object:
    """JSON integers only: 3 and 3.0 pass, "3" and true do not (see GenerateRequest)."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, str | bool) for item in items):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class DatasetRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
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
        ge=1,
        le=HARD_MAX_PER_DIGIT,
        description="samples of each digit (limit: GAN_DATASET_MAX_PER_DIGIT)",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=MAX_DATASET_SEED,
        description="image i uses seed+i, as in POST /generate; omit for random (see X-Seed)",
    )
    format: DatasetFormat = Field(
        "npz",
        description="npz: images.npy (N, 28, 28) uint8, labels.npy, seeds.npy; idx: the MNIST "
        "IDX pair; both zip archives with a manifest.json",
    )

    @field_validator("digits", "per_digit", "seed", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        return _reject_text_and_bools(value)

    @field_validator("digits")
    @classmethod
    def _unique(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise PydanticCustomError("unique_items", "List items should be unique")
        return value


class RestoreOptions(BaseModel):
    """The fields of POST /restore besides its images, shared by its JSON and form bodies."""

    model_config = ConfigDict(extra="forbid")

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
        le=HARD_MAX_RESTORE_STEPS,
        description="optimisation steps (default GAN_RESTORE_STEPS, limit GAN_RESTORE_MAX_STEPS)",
    )
    restarts: int | None = Field(
        None,
        ge=1,
        le=HARD_MAX_RESTARTS,
        description="latent codes optimised per digit (default GAN_RESTORE_RESTARTS, limit "
        "GAN_RESTORE_MAX_RESTARTS)",
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
        json_schema_extra={
            "examples": [{"image": "iVBORw0KGgo...", "mask_rule": "white", "format": "base64"}]
        }
    )

    image: str = Field(description="the damaged digit: a 28x28 PNG, base64 or a data: URL")
    mask: str | None = Field(
        None, description="a 28x28 PNG, base64 or a data: URL: light pixels (>= 128) are damaged"
    )

    @field_validator("digit", "steps", "restarts", "seed", mode="before")
    @classmethod
    def _json_integer(cls, value: object) -> object:
        return _reject_text_and_bools(value)


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
