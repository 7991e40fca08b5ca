"""Bodies and validators shared by every area of the API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from pydantic_core import PydanticCustomError

from app.limits import MAX_N
from gan.sampling import MAX_SEED

# Seeds travel as JSON numbers, so they stay JSON-safe integers (exact as IEEE doubles, e.g. in
# JavaScript and JSON Schema validators); seed + n - 1 must stay valid too, hence the room left
# for the largest batch.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_REQUEST_SEED = min(MAX_SEED, MAX_SAFE_INTEGER) - MAX_N.hard_cap


# Truncation's range is the sampling's own domain (gan.sampling.latents_for_seeds), not a server
# setting: a plain bound, the same on every route.
TRUNCATION_DESCRIPTION = (
    "0 < t <= 1: scales the latent vector towards the mean, so lower values draw more typical "
    "digits with less variety; part of the image's identity (seed + version + truncation name "
    "it); 1 = the untruncated image"
)


# The manifest's metrics pass through as they are (a version evaluated before a metric existed
# simply lacks it); this says what the evaluation writes.
METRICS_DESCRIPTION = (
    "evaluation metrics from the manifest (conditional_accuracy, fid, precision, recall, "
    "diversity...); per_digit, where the evaluation wrote it: a list of ten "
    '{"digit": d, "accuracy": float, "fid": float}'
)


def truncation_field() -> Any:
    """The ``truncation`` field of a JSON body (a query parameter declares the same bounds)."""
    return Field(1.0, gt=0, le=1, allow_inf_nan=False, description=TRUNCATION_DESCRIPTION)


def json_integers(value: object) -> object:
    """Integers as JSON Schema means them: 3 and 3.0 pass, "3" and true do not (pydantic's lax
    mode would coerce those, its strict mode would refuse 3.0). Lists are checked item by item."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, str | bool) for item in items):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


def json_number(value: object) -> object:
    """Numbers as JSON Schema means them: "2" and true are refused, not coerced."""
    if isinstance(value, str | bool):
        raise PydanticCustomError("number_type", "Input should be a valid number")
    return value


class Status(BaseModel):
    status: str
    detail: str | None = None


class ErrorResponse(BaseModel):
    detail: str
