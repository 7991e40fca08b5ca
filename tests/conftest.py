"""Shared fixtures: the committed MNIST subset, a tiny published generator and apps serving it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from gan.store import ModelStore
from gan.testing import publish_random_generator
from support.app import preserved_process_state, serve
from support.jobs import add_classifier
from support.models import TINY_GENERATOR, TINY_VERSION

# The browser tests' fixtures (a real uvicorn server, a store with versions, Chromium).
pytest_plugins = ["support.browser"]
FIXTURE_MNIST = Path(__file__).parent / "fixtures" / "mnist"


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The committed MNIST subset: 200 train (20 per digit) and 100 test (10 per digit) digits."""
    assert (FIXTURE_MNIST / "train-images-idx3-ubyte.gz").is_file(), (
        "run tests/fixtures/make_mnist_fixture.py"
    )
    return FIXTURE_MNIST


@pytest.fixture
def tiny_store(tmp_path: Path) -> ModelStore:
    """A model store in tmp_path holding one tiny random generator, version "tiny", active."""
    store = ModelStore(tmp_path / "model_store")
    publish_random_generator(store, TINY_VERSION, TINY_GENERATOR)
    return store


@pytest.fixture(autouse=True)
def _restore_process_state() -> Iterator[None]:
    with preserved_process_state():
        yield


@pytest.fixture
def client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store) as client:
        yield client


@pytest.fixture
def strict_client(tiny_store: ModelStore) -> Iterator[TestClient]:
    with serve(tiny_store, max_n=8, max_scale=4, max_body_bytes=256) as client:
        yield client


@pytest.fixture
def job_store(tiny_store: ModelStore) -> ModelStore:
    """The tiny store plus a (random) classifier, so that jobs can evaluate what they train."""
    return add_classifier(tiny_store)


@pytest.fixture
def client_factory() -> Iterator[Callable[[Settings], TestClient]]:
    clients: list[TestClient] = []

    def make(settings: Settings) -> TestClient:
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)
