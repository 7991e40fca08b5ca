"""The limits table: every configurable request limit, declared once.

A ``Limit`` names its ``Settings`` field (and so its environment variable), its default, its hard
cap (the most any configuration may set) and the places of a request it applies to. Everything
else reads this table: ``app.config`` builds the settings fields from it, routes check values with
``check``/``check_fields`` (a 422 naming the field, the limit in force and its variable), the
OpenAPI document states the configured values (``app.http.openapi``), and the schemas' field
descriptions name the variable. Pydantic models carry no upper bound of their own for these
fields, so a message never quotes a ceiling other than the one this server enforces.

Imports nothing of the app: the settings and the schemas import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from pydantic import Field

if TYPE_CHECKING:
    from app.config import Settings

ENV_PREFIX = "GAN_"


def env_name(setting: str) -> str:
    """The environment variable of a ``Settings`` field."""
    return ENV_PREFIX + setting.upper()


@dataclass(frozen=True)
class BodyField:
    """A field of a JSON body model (a component of the OpenAPI document, or inline at ``path``
    for a route that reads its body itself)."""

    model: str
    name: str
    inline_path: str | None = None


@dataclass(frozen=True)
class QueryParam:
    path: str
    name: str


@dataclass(frozen=True)
class WholeBody:
    """The request body as bytes (checked by the body-size middleware), or one upload in it."""

    part: str | None = None


@dataclass(frozen=True)
class Connection:
    """Enforced by the server (``app.http.server``) before the app sees a request."""

    what: str


Place = BodyField | QueryParam | WholeBody | Connection


@dataclass(frozen=True)
class Limit:
    setting: str
    default: int
    hard_cap: int
    description: str
    places: tuple[Place, ...]
    minimum: int = 1

    @property
    def env(self) -> str:
        return env_name(self.setting)

    def field(self) -> Any:
        """The ``Settings`` field of this limit."""
        return Field(self.default, ge=self.minimum, le=self.hard_cap, description=self.description)

    def value(self, settings: Settings) -> int:
        configured: int = getattr(settings, self.setting)
        return configured


MAX_N = Limit(
    "max_n",
    256,
    4096,
    "most images per request",
    (BodyField("GenerateRequest", "n"),),
)
MAX_SCALE = Limit(
    "max_scale",
    16,
    64,
    "largest integer upscale factor",
    (BodyField("GenerateRequest", "scale"), QueryParam("/digits/{digit}.png", "scale")),
)
MAX_BODY_BYTES = Limit(
    "max_body_bytes", 16_384, 1 << 24, "largest request body accepted", (WholeBody(),), 256
)
MAX_JOB_STEPS = Limit(
    "max_job_steps",
    100_000,
    10_000_000,
    "largest steps of a retraining job",
    (BodyField("JobParams", "steps"),),
)
DATASET_MAX_PER_DIGIT = Limit(
    "dataset_max_per_digit",
    6000,
    100_000,
    "most samples per digit in one POST /datasets",
    (BodyField("DatasetRequest", "per_digit"),),
)
RESTORE_MAX_STEPS = Limit(
    "restore_max_steps",
    400,
    10_000,
    "most steps a restoration may ask for",
    (BodyField("RestoreOptions", "steps", inline_path="/restore"),),
)
RESTORE_MAX_RESTARTS = Limit(
    "restore_max_restarts",
    16,
    256,
    "most restarts per digit a restoration may ask for",
    (BodyField("RestoreOptions", "restarts", inline_path="/restore"),),
)
RESTORE_MAX_UPLOAD_BYTES = Limit(
    "restore_max_upload_bytes",
    4096,
    1 << 20,
    "largest image or mask file accepted by POST /restore",
    (WholeBody("image"), WholeBody("mask")),
    64,
)

MAX_HEADER_BYTES = Limit(
    "max_header_bytes",
    16_384,
    1 << 20,
    "largest request head (request line and headers) accepted; 400 past it",
    (Connection("request head"),),
    1024,
)
HEADER_TIMEOUT_S = Limit(
    "header_timeout_s",
    10,
    600,
    "seconds a connection may take to send a request head before it is closed",
    (Connection("request head"),),
)
MAX_CONNECTIONS = Limit(
    "max_connections",
    1024,
    1 << 20,
    "open connections accepted; one more gets 503 and is closed (capped by the file limit)",
    (Connection("connections"),),
)

LIMITS = (
    MAX_N,
    MAX_SCALE,
    MAX_BODY_BYTES,
    MAX_JOB_STEPS,
    DATASET_MAX_PER_DIGIT,
    RESTORE_MAX_STEPS,
    RESTORE_MAX_RESTARTS,
    RESTORE_MAX_UPLOAD_BYTES,
    MAX_HEADER_BYTES,
    HEADER_TIMEOUT_S,
    MAX_CONNECTIONS,
)


def exceeded(limit: Limit, value: int, settings: Settings) -> str | None:
    """The message for ``value`` over ``limit`` as configured, or None when it is within."""
    allowed = limit.value(settings)
    if value <= allowed:
        return None
    return f"Input should be less than or equal to {allowed} (server limit {limit.env})"


def check(
    limit: Limit, location: tuple[str, ...], value: int, settings: Settings
) -> dict[str, Any] | None:
    """A pydantic-shaped error for ``value`` at ``location`` over ``limit``, or None."""
    message = exceeded(limit, value, settings)
    if message is None:
        return None
    return {
        "type": "less_than_equal",
        "loc": location,
        "msg": message,
        "input": value,
        "ctx": {"le": limit.value(settings)},
    }


def check_fields(body: object, settings: Settings) -> None:
    """422 for every field of the body model ``body`` that is over its limit."""
    models = {cls.__name__ for cls in type(body).__mro__}
    raise_if_any(
        *(
            check(limit, ("body", place.name), getattr(body, place.name), settings)
            for limit in LIMITS
            for place in limit.places
            if isinstance(place, BodyField)
            and place.model in models
            and getattr(body, place.name, None) is not None
        )
    )


def raise_if_any(*errors: dict[str, Any] | None) -> None:
    found = [error for error in errors if error is not None]
    if found:
        raise RequestValidationError(found)


def invalid(location: tuple[str, ...], message: str, value: Any) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": location, "msg": message, "input": value}]
    )
