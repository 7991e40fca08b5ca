"""The OpenAPI ``responses`` blocks that several routes share."""

from __future__ import annotations

from typing import Any

from app.schemas.common import ErrorResponse

Responses = dict[int | str, dict[str, Any]]

# FastAPI answers a body that is not UTF-8 with 400 (bad JSON syntax is a 422).
UNREADABLE_BODY: Responses = {
    400: {"model": ErrorResponse, "description": "request body is not UTF-8 text"}
}
BUSY: Responses = {
    413: {"model": ErrorResponse, "description": "request body too large"},
    503: {"model": ErrorResponse, "description": "busy (queue full or deadline): see Retry-After"},
}
PINNED_VERSION: Responses = {
    404: {"model": ErrorResponse, "description": "the pinned version is not served here"}
}
ADMIN: Responses = {
    401: {"model": ErrorResponse, "description": "missing or wrong admin token"},
    403: {"model": ErrorResponse, "description": "admin endpoints disabled (no token configured)"},
}
NOT_JSON: Responses = {
    415: {"model": ErrorResponse, "description": "the body is not sent as application/json"}
}
