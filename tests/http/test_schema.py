"""Property-based API tests: schemathesis drives the app through its own OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from app.main import create_app
from gan.store import ModelStore
from support.app import app_settings, preserved_process_state

# Small configured limits keep every generated request cheap; an admin token is set so the admin
# endpoints answer as they do in production (401 to schemathesis, which does not know it).
LIMITS: dict[str, Any] = {
    "max_n": 8,
    "max_scale": 4,
    "admin_token": "schema-test-token",
    "dataset_max_per_digit": 8,
    "restore_max_steps": 3,
    "restore_max_restarts": 2,
}


# POST /restore needs a readable PNG and the OpenAI route a prompt that names exactly one digit,
# which JSON Schema cannot say: a schema-valid request can rightly be refused there. Every other
# check (no 5xx, documented statuses and bodies) still runs.
UNSAYABLE: dict[tuple[str, str], list[Any]] = {
    ("POST", "/restore"): [positive_data_acceptance],
    ("POST", "/v1/images/generations"): [positive_data_acceptance],
}


def make_app(store_root: Path) -> FastAPI:
    return create_app(app_settings(store_root, **LIMITS))


# The schema depends on the settings but not on the store, so it is read from an app that is
# never started; each test then talks to a fresh app (same settings) serving the tiny model.
schema = schemathesis.openapi.from_dict(make_app(Path("unused")).openapi())


@pytest.fixture
def served_app(tiny_store: ModelStore) -> Iterator[FastAPI]:
    with preserved_process_state():
        yield make_app(tiny_store.root)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, served_app: FastAPI) -> None:
    excluded = UNSAYABLE.get((case.method.upper(), case.path), [])
    response = case.call_and_validate(app=served_app, excluded_checks=excluded)
    assert response.status_code < 500
