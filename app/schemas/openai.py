"""POST /v1/images/generations, shaped like the OpenAI Images API so that the official ``openai``
client works unchanged: ``prompt`` names the digit, ``size`` is a supported square."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from app.schemas.common import json_number, truncation_field
from gan.store import VERSION_PATTERN

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DIGIT = re.compile(r"(?<![0-9])[0-9](?![0-9])|\b(" + "|".join(NUMBER_WORDS) + r")\b", re.I)
IMAGE_SIDE = 28


class PromptError(ValueError):
    """The prompt names no digit, or more than one."""


class SizeError(ValueError):
    """The size is not one of the supported squares."""


def digit_of(prompt: str) -> int:
    """The one digit a prompt names: "7", "seven", "a handwritten 7", "Draw a SEVEN"."""
    found = {
        int(match.group(0))
        if match.group(0).isdigit()
        else NUMBER_WORDS.index(match.group(0).lower())
        for match in _DIGIT.finditer(prompt)
    }
    if len(found) != 1:
        named = "no digit" if not found else f"several digits {sorted(found)}"
        raise PromptError(
            f"the prompt names {named}: name one digit 0-9, e.g. '7', 'seven' or 'a handwritten 7'"
        )
    return found.pop()


def supported_sizes(max_scale: int) -> list[str]:
    return [f"{IMAGE_SIDE * k}x{IMAGE_SIDE * k}" for k in range(1, max_scale + 1)]


def scale_of(size: str | None, max_scale: int) -> int:
    """The upscale factor of a size such as "56x56"; None or "auto" is the native 28x28."""
    if size in (None, "auto"):
        return 1
    sizes = supported_sizes(max_scale)
    if size not in sizes:
        shown = ", ".join(sizes[:4]) + (f" ... {sizes[-1]}" if len(sizes) > 4 else "")
        raise SizeError(f"size {size!r} is not supported: use a square of 28 x k pixels ({shown})")
    return int(size.split("x")[0]) // IMAGE_SIDE


class ImageGenerationRequest(BaseModel):
    # Other OpenAI parameters (quality, style, background, moderation, user...) have no meaning
    # for this model and are ignored, as OpenAI-compatible servers do.
    model_config = ConfigDict(
        extra="ignore",
        protected_namespaces=(),
        json_schema_extra={
            "examples": [{"prompt": "a handwritten 7", "n": 2, "size": "56x56"}],
        },
    )

    prompt: str = Field(min_length=1, max_length=1000, description="names the digit: '7', 'seven'")
    n: StrictInt = Field(1, ge=1, description="number of images (limit: GAN_MAX_N)")
    size: str | None = Field(None, description="'28x28', '56x56', '112x112'... or 'auto'")
    response_format: Literal["b64_json", "url"] | None = Field(
        None, description="b64_json (default) or url: the service's own seeded, cacheable GET URL"
    )
    model: str | None = Field(
        None,
        pattern=VERSION_PATTERN.pattern,
        description="a model version; it must be the one served (omit: the active version)",
    )
    output_format: Literal["png"] | None = None
    stream: Literal[False] | None = None
    # Not an OpenAI parameter: the official client sends it with extra_body={"truncation": 0.7}.
    truncation: float = truncation_field()

    _json_number = field_validator("truncation", mode="before")(json_number)


class GeneratedImageData(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str


class ImagesResponse(BaseModel):
    created: int
    data: list[GeneratedImageData]


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorResponse(BaseModel):
    error: OpenAIErrorBody
