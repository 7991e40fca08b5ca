"""Reading POST /restore: a JSON body with base64 PNGs, or a multipart/form-data upload of PNG
files, turned into a damaged image, its mask of damaged pixels and the options.

Every problem is a 4xx naming the field: 422 for a field that is malformed, unknown, of the wrong
size or over its limit (with the setting), 415 for a body that is neither JSON nor a form. The
whole body is at most ``max_body_bytes`` (the middleware answers 413 past it), so it is read in
memory; each image is further limited to ``restore_max_upload_bytes`` (``app.limits``).
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from PIL import Image
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.config import Settings
from app.limits import (
    RESTORE_MAX_RESTARTS,
    RESTORE_MAX_STEPS,
    RESTORE_MAX_UPLOAD_BYTES,
    check,
    invalid,
    raise_if_any,
)
from app.schemas.applications import RestoreOptions, RestoreRequest, RestoreUpload

IMAGE_SIDE = 28
MASK_THRESHOLD = 128  # mask pixels this light or lighter mark damage
JSON_TYPES = {"application/json"}
FORM_TYPES = {"multipart/form-data"}
UPLOAD_FILES = ("image", "mask")
MAX_FORM_CONTENT_TYPE = 512  # characters: "multipart/form-data; boundary=..." needs under 100
MAX_UPLOAD_SIDE = 1024  # pixels a side of a square upload (it is scaled down to 28)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_HEADER_BYTES = 24  # signature, IHDR length and type, width, height


@dataclass(frozen=True)
class RestoreInput:
    image: np.ndarray  # (28, 28) uint8, greyscale
    missing: np.ndarray  # (28, 28) bool, True where damaged
    options: RestoreOptions
    steps: int
    restarts: int


async def read_restore_request(request: Request, settings: Settings) -> RestoreInput:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    parsed: RestoreRequest | RestoreUpload
    if media_type in JSON_TYPES:
        as_json: RestoreRequest = _validate(RestoreRequest, body, json=True)
        image_bytes = _decode_base64(as_json.image, "image")
        mask_bytes = None if as_json.mask is None else _decode_base64(as_json.mask, "mask")
        parsed = as_json
    elif media_type in FORM_TYPES:
        fields = await read_form(request)
        as_form: RestoreUpload = _validate(RestoreUpload, fields, json=False)
        image_bytes, mask_bytes = as_form.image, as_form.mask
        parsed = as_form
    else:
        raise HTTPException(
            415, "send application/json (base64 PNGs) or multipart/form-data (PNG files)"
        )
    steps = parsed.steps if parsed.steps is not None else settings.restore_steps
    restarts = parsed.restarts if parsed.restarts is not None else settings.restore_restarts
    raise_if_any(
        check(RESTORE_MAX_STEPS, ("body", "steps"), steps, settings),
        check(RESTORE_MAX_RESTARTS, ("body", "restarts"), restarts, settings),
        _size_error("image", image_bytes, settings),
        None if mask_bytes is None else _size_error("mask", mask_bytes, settings),
    )
    grey, alpha = decode_png(image_bytes, "image")
    missing = _missing(parsed, grey, alpha, mask_bytes)
    return RestoreInput(grey, missing, parsed, steps, restarts)


def _validate(model: type[Any], data: Any, *, json: bool) -> Any:
    try:
        return model.model_validate_json(data) if json else model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError([_body_error(e) for e in error.errors()]) from None


def _body_error(error: Any) -> dict[str, Any]:
    """A pydantic error located in the body (the 422 renderer makes its input JSON-safe)."""
    return {**error, "loc": ("body", *error["loc"])}


def _size_error(name: str, data: bytes, settings: Settings) -> dict[str, Any] | None:
    limit = RESTORE_MAX_UPLOAD_BYTES.value(settings)
    if len(data) <= limit:
        return None
    return {
        "type": "too_long",
        "loc": ("body", name),
        "msg": f"upload of {len(data)} bytes is larger than {limit} bytes (server limit "
        f"{RESTORE_MAX_UPLOAD_BYTES.env})",
        "input": f"<{len(data)} bytes>",
        "ctx": {"max_length": limit},
    }


def _decode_base64(text: str, name: str) -> bytes:
    """Standard base64, or a data: URL (what a browser canvas gives)."""
    payload = text.strip()
    if payload.startswith("data:"):
        header, _, payload = payload.partition(",")
        if not header.endswith(";base64"):
            raise invalid(
                ("body", name), "a data: URL must be base64 (data:image/png;base64,...)", text[:64]
            )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(("body", name), "not valid base64", text[:64]) from None


async def read_form(request: Request) -> dict[str, str | bytes]:
    """A multipart/form-data body -> {name: text, or bytes for a file}, parsed by Starlette and
    python-multipart with bounded parts (two files, one field per option). Text fields left empty
    (as HTML forms send them) count as absent."""
    content_type = request.headers.get("content-type", "")
    if len(content_type) > MAX_FORM_CONTENT_TYPE:
        # Parsing its parameters costs time on the event loop: a form needs only a boundary.
        raise HTTPException(
            431, f"Content-Type of {len(content_type)} characters: at most {MAX_FORM_CONTENT_TYPE}"
        )
    try:
        form = await request.form(
            max_files=len(UPLOAD_FILES), max_fields=len(RestoreUpload.model_fields)
        )
    except StarletteHTTPException as error:  # Starlette's word for a malformed or large form
        message = f"malformed multipart/form-data body: {error.detail}"
        raise invalid(("body",), message, None) from None
    fields: dict[str, str | bytes] = {}
    try:
        for name, value in form.multi_items():
            if name in fields:
                raise invalid(("body", name), "field given more than once", None)
            if isinstance(value, UploadFile):
                fields[name] = await value.read()
            elif value:
                fields[name] = value
    finally:
        await form.close()
    return fields


def decode_png(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """PNG bytes -> (28x28 uint8 greyscale, 28x28 uint8 alpha or None). Any square from 28 to
    ``MAX_UPLOAD_SIDE`` pixels a side is accepted (the service's own ``scale=4`` PNGs too) and
    scaled down by area averaging (Pillow's BOX filter). The size is checked from the header
    before any pixel is decompressed."""
    location = ("body", name)
    size = _png_size(data)
    if size is not None and not _acceptable(size):
        width, height = size
        raise invalid(
            location,
            f"image is {width}x{height} pixels: send a square of {IMAGE_SIDE} to "
            f"{MAX_UPLOAD_SIDE} pixels a side (it is scaled to {IMAGE_SIDE}x{IMAGE_SIDE})",
            f"<{len(data)} bytes>",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                image.load()
                grey, alpha = _grey_and_alpha(image)
    except Exception:  # Pillow raises many types on malformed input; all mean "not a PNG"
        raise invalid(location, "not a readable PNG image", f"<{len(data)} bytes>") from None
    return _to_side(grey), None if alpha is None else _to_side(alpha)


def _acceptable(size: tuple[int, int]) -> bool:
    width, height = size
    return width == height and IMAGE_SIDE <= width <= MAX_UPLOAD_SIDE


def _to_side(channel: np.ndarray) -> np.ndarray:
    """A square uint8 channel scaled down to 28x28 by area averaging (a no-op at 28x28)."""
    if channel.shape == (IMAGE_SIDE, IMAGE_SIDE):
        return channel
    small = Image.fromarray(channel).resize((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.uint8).copy()


def _png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, read before Pillow is trusted with the file
    (Pillow refuses a giant header as a decompression bomb, which would hide the size)."""
    if len(data) < PNG_HEADER_BYTES or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    if image.mode.startswith("I"):  # 16-bit greyscale
        wide = np.asarray(image).astype(np.float64)
        return np.clip(np.round(wide / 257), 0, 255).astype(np.uint8), None
    has_alpha = image.mode in {"RGBA", "LA", "PA", "La", "RGBa"} or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.uint8).copy(), None
    rgba = image.convert("RGBA")
    alpha = np.asarray(rgba, dtype=np.uint8)[..., 3].copy()
    return np.asarray(rgba.convert("L"), dtype=np.uint8).copy(), alpha


def _missing(
    parsed: RestoreOptions, grey: np.ndarray, alpha: np.ndarray | None, mask: bytes | None
) -> np.ndarray:
    """The damaged pixels, from the mask image or the rule; never all of them."""
    if mask is not None and parsed.mask_rule is not None:
        raise invalid(
            ("body", "mask_rule"), "give a mask image or a mask_rule, not both", parsed.mask_rule
        )
    # Neither: the safest rule, transparent. It flags only pixels erased on purpose (an MNIST
    # digit has no alpha), where "white" would also flag the strokes of most real digits.
    rule = parsed.mask_rule or "transparent"
    if mask is not None:
        mask_grey, mask_alpha = decode_png(mask, "mask")
        missing = mask_grey >= MASK_THRESHOLD
        if mask_alpha is not None:  # a transparent mask pixel marks nothing
            missing &= mask_alpha > 0
        field = "mask"
    elif rule == "white":
        missing, field = grey == 255, "mask_rule"
    elif rule == "black":
        missing, field = grey == 0, "mask_rule"
    elif alpha is not None:
        missing, field = alpha == 0, "mask_rule"
    elif parsed.mask_rule == "transparent":
        raise invalid(
            ("body", "mask_rule"),
            "mask_rule=transparent needs an image with an alpha channel",
            "transparent",
        )
    else:
        raise invalid(
            ("body", "mask"),
            "mark the damage: a mask image (damaged pixels light), transparent pixels in the "
            "image (the default rule), or mask_rule white or black",
            None,
        )
    if missing.all():
        raise invalid(
            ("body", field),
            f"the mask marks all {missing.size} pixels as damaged: nothing is left to match",
            parsed.mask_rule,
        )
    return np.ascontiguousarray(missing)
