"""Checks of request fields against the configurable limits, reported exactly like pydantic's own
validation errors (422, the field's location, the limit and the setting that sets it)."""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError

from app.config import Settings


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


# Configurable limits as (component schema, property) and (path, method, query parameter), with
# the setting that sets each one.
_BODY_LIMITS = {
    ("GenerateRequest", "n"): "max_n",
    ("GenerateRequest", "scale"): "max_scale",
    ("JobParams", "steps"): "max_job_steps",
    ("DatasetRequest", "per_digit"): "dataset_max_per_digit",
}
_QUERY_LIMITS = {("/digits/{digit}.png", "get", "scale"): "max_scale"}
# Request bodies given inline (a route that reads JSON or a form itself), every content type.
_INLINE_BODY_LIMITS = {
    ("/restore", "post", "steps"): "restore_max_steps",
    ("/restore", "post", "restarts"): "restore_max_restarts",
}


def document_limits(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Lower each ``maximum`` in an OpenAPI document to the configured limit (in place;
    idempotent), so the schema promises what this server accepts instead of the hard ceilings
    of ``app.schemas``. Schema-driven clients and tests then never send a schema-valid 422."""
    components = openapi.get("components", {}).get("schemas", {})
    for (model, name), setting in _BODY_LIMITS.items():
        prop = components.get(model, {}).get("properties", {}).get(name)
        _lower_maximum(prop, getattr(settings, setting))
    for (path, method, name), setting in _QUERY_LIMITS.items():
        operation = openapi.get("paths", {}).get(path, {}).get(method, {})
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query" and parameter.get("name") == name:
                _lower_maximum(parameter.get("schema"), getattr(settings, setting))
    for (path, method, name), setting in _INLINE_BODY_LIMITS.items():
        operation = openapi.get("paths", {}).get(path, {}).get(method, {})
        for media in operation.get("requestBody", {}).get("content", {}).values():
            prop = media.get("schema", {}).get("properties", {}).get(name)
            _lower_maximum(prop, getattr(settings, setting))
    return openapi


def _lower_maximum(schema: dict[str, Any] | None, limit: int) -> None:
    if schema is None:
        return
    # FastAPI writes an optional value as anyOf [{...}, {"type": "null"}]: lower every branch.
    for branch in [schema, *schema.get("anyOf", [])]:
        if "maximum" in branch:
            branch["maximum"] = min(branch["maximum"], limit)
