"""The one mapping of domain exceptions to HTTP statuses, and the handlers that apply it.

Domain code raises specific exceptions and knows nothing of HTTP; this table is the only place
that says which status each becomes. A 503 always carries ``Retry-After``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.retraining.manager import IdempotencyConflictError, JobConflictError, JobStateError
from app.retraining.promotion import GatesFailedError
from app.serving.errors import (
    DeadlineExceededError,
    ForwardProcessError,
    QueueFullError,
    ShuttingDownError,
    VersionMismatchError,
)
from gan.restoration import NothingKnownError, RestorationError
from gan.store import (
    IntegrityError,
    InvalidVersionName,
    StoreError,
    VersionActive,
    VersionExists,
    VersionNotFound,
)

log = logging.getLogger(__name__)

ERROR_STATUS: dict[type[Exception], int] = {
    QueueFullError: 503,
    DeadlineExceededError: 503,
    ShuttingDownError: 503,
    ForwardProcessError: 503,  # one batch lost; the next is drawn by a new process
    VersionMismatchError: 404,
    VersionNotFound: 404,
    InvalidVersionName: 422,
    IntegrityError: 409,
    VersionExists: 409,
    VersionActive: 409,
    JobConflictError: 409,
    IdempotencyConflictError: 409,
    JobStateError: 409,
    GatesFailedError: 409,
    RestorationError: 422,
    NothingKnownError: 422,
    StoreError: 500,  # a store this server cannot read: the operator's problem, logged
}


ECHO_LIMIT = 256  # characters of a rejected input echoed back; longer ones are cut


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON, whatever it is: a 422 must render for any input (NaN, 1e400,
    bytes, objects), so what cannot be echoed is described instead."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else f"<non-finite number {value}>"
    if isinstance(value, str):
        return value if len(value) <= ECHO_LIMIT else value[:ECHO_LIMIT] + "..."
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, BaseException):  # pydantic puts the validator's error in ctx
        return json_safe(str(value))
    return f"<{type(value).__name__}>"


async def validation_error(request: Request, error: Exception) -> JSONResponse:
    """422 with every error's location, message and (when it can be shown) its input; on the
    OpenAI-compatible routes a 400 in OpenAI's shape, naming the first bad parameter."""
    assert isinstance(error, RequestValidationError)
    errors = json_safe(list(error.errors()))
    if request.url.path.startswith(OPENAI_PREFIX) and errors:
        first = errors[0]
        param = ".".join(str(part) for part in first["loc"][1:]) or None
        return openai_error(400, f"{param or 'body'}: {first['msg']}", param)
    return JSONResponse({"detail": errors}, status_code=422)


OPENAI_PREFIX = "/v1/"  # the OpenAI-compatible routes answer errors in OpenAI's shape
OPENAI_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 409: "conflict"}


class OpenAIError(Exception):
    """A refusal of the OpenAI-compatible API, with the parameter to blame."""

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.param = status, param


def openai_error(status: int, message: str, param: str | None) -> JSONResponse:
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    code = {404: "model_not_found", 503: "overloaded"}.get(status)
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Answer every exception of ``ERROR_STATUS`` with its status and the message as detail,
    and request validation errors with a 422 that cannot fail to render."""

    async def handle(request: Request, error: Exception) -> JSONResponse:
        status = next(ERROR_STATUS[cls] for cls in type(error).__mro__ if cls in ERROR_STATUS)
        detail = str(error)
        if status >= 500 and status != 503:
            log.error("model store error: %s", error)
            detail = f"model store error: {error}"
        if request.url.path.startswith(OPENAI_PREFIX):
            response = openai_error(status, detail, None)
        else:
            # An exception may carry structured details (e.g. the failed gates) beside it.
            body = {"detail": detail, **json_safe(getattr(error, "extra", {}))}
            response = JSONResponse(body, status_code=status)
        if status == 503:
            response.headers["Retry-After"] = str(retry_after_s)
        return response

    async def handle_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if request.url.path.startswith(OPENAI_PREFIX):
            return openai_error(error.status_code, str(error.detail), None)
        return await http_exception_handler(request, error)

    async def handle_openai(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, OpenAIError)
        return openai_error(error.status, str(error), error.param)

    for error_type in ERROR_STATUS:
        app.add_exception_handler(error_type, handle)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(OpenAIError, handle_openai)
    app.add_exception_handler(StarletteHTTPException, handle_http)
