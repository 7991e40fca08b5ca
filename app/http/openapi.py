"""The OpenAPI document as this server serves it: every limit of ``app.limits`` stated with its
configured value, so schema-driven clients and tests never send a schema-valid 422."""

from __future__ import annotations

from typing import Any

from app.config import Settings
from app.limits import LIMITS, BodyField, QueryParam


def document_limits(openapi: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Set each limited property's ``maximum`` to the configured limit (in place; idempotent)."""
    components = openapi.get("components", {}).get("schemas", {})
    paths = openapi.get("paths", {})
    for limit in LIMITS:
        value = limit.value(settings)
        for place in limit.places:
            if isinstance(place, BodyField) and place.inline_path is not None:
                operation = paths.get(place.inline_path, {}).get("post", {})
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    _set_maximum(
                        media.get("schema", {}).get("properties", {}).get(place.name), value
                    )
            elif isinstance(place, BodyField):
                properties = components.get(place.model, {}).get("properties", {})
                _set_maximum(properties.get(place.name), value)
            elif isinstance(place, QueryParam):
                for parameter in paths.get(place.path, {}).get("get", {}).get("parameters", []):
                    if parameter.get("in") == "query" and parameter.get("name") == place.name:
                        _set_maximum(parameter.get("schema"), value)
    return openapi


def _set_maximum(schema: dict[str, Any] | None, limit: int) -> None:
    if schema is None:
        return
    # FastAPI writes an optional value as anyOf [{...}, {"type": "null"}]: bound every integer.
    for branch in [schema, *schema.get("anyOf", [])]:
        if branch.get("type") == "integer":
            branch["maximum"] = limit


def form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A form has no null: an optional field is one left out, so drop the null branches."""
    for name, prop in schema.get("properties", {}).items():
        branches = [b for b in prop.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in prop and len(branches) == 1:
            rest = {k: v for k, v in prop.items() if k not in {"anyOf", "default"}}
            schema["properties"][name] = {**branches[0], **rest}
    return schema
