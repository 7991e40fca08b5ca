"""The one mapping of domain exceptions to HTTP statuses, and the handlers that apply it.

Domain code raises specific exceptions and knows nothing of HTTP; this table is the only place
that says which status each becomes. A 503 always carries ``Retry-After``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.retraining.manager import IdempotencyConflictError, JobConflictError, JobStateError
from app.serving.errors import (
    DeadlineExceededError,
    QueueFullError,
    ShuttingDownError,
    VersionMismatchError,
)
from gan.restoration import NothingKnownError, RestorationError
from gan.store import IntegrityError, InvalidVersionName, StoreError, VersionExists, VersionNotFound

log = logging.getLogger(__name__)

ERROR_STATUS: dict[type[Exception], int] = {
    QueueFullError: 503,
    DeadlineExceededError: 503,
    ShuttingDownError: 503,
    VersionMismatchError: 404,
    VersionNotFound: 404,
    InvalidVersionName: 422,
    IntegrityError: 409,
    VersionExists: 409,
    JobConflictError: 409,
    IdempotencyConflictError: 409,
    JobStateError: 409,
    RestorationError: 422,
    NothingKnownError: 422,
    StoreError: 500,  # a store this server cannot read: the operator's problem, logged
}


def install_error_handlers(app: FastAPI, retry_after_s: int) -> None:
    """Answer every exception of ``ERROR_STATUS`` with its status and the message as detail."""

    async def handle(_: Request, error: Exception) -> JSONResponse:
        status = next(ERROR_STATUS[cls] for cls in type(error).__mro__ if cls in ERROR_STATUS)
        detail = str(error)
        headers = None
        if status == 503:
            headers = {"Retry-After": str(retry_after_s)}
        elif status >= 500:
            log.error("model store error: %s", error)
            detail = f"model store error: {error}"
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    for error_type in ERROR_STATUS:
        app.add_exception_handler(error_type, handle)
