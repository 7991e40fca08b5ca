"""Property-based API tests: schemathesis drives the app through its own OpenAPI schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from app_helpers import app_settings, preserved_process_state
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from app.main import create_app
from gan.store import ModelStore

# Small configured limits keep every generated request cheap; an admin token is set so the admin
# endpoints answer as they do in production (401 to schemathesis, which does not know it).
LIMITS: dict[str, Any] = {"max_n": 8, "max_scale": 4, "admin_token": "schema-test-token"}


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
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, served_app: FastAPI) -> None:
    response = case.call_and_validate(app=served_app)
    assert response.status_code < 500
