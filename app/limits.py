"""Checks of request fields against the configurable limits, reported exactly like pydantic's own
validation errors (422, the field's location, the limit and the setting that sets it)."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError


def check_max(
    location: tuple[str, ...], value: int, limit: int, setting: str
) -> dict[str, Any] | None:
    if value <= limit:
        return None
    return {
        "type": "less_than_equal",
        "loc": location,
        "msg": f"Input should be less than or equal to {limit} (server limit {setting})",
        "input": value,
        "ctx": {"le": limit},
    }


def raise_if_any(*errors: dict[str, Any] | None) -> None:
    found = [error for error in errors if error is not None]
    if found:
        raise RequestValidationError(found)


def invalid(location: tuple[str, ...], message: str, value: Any) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": location, "msg": message, "input": value}]
    )
