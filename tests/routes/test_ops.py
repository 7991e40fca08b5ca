"""Operations: liveness, readiness, info and metrics."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from gan.store import ModelStore
from support.app import (
    gated_loader,
    generate,
    serve,
    wait_ready,
)
from support.models import TINY_VERSION as VERSION


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "detail": None}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


def test_info(tiny_store: ModelStore) -> None:
    with serve(tiny_store, max_n=8, max_scale=4, max_queue_images=100) as client:
        info = client.get("/info").json()
    assert info["model_version"] == VERSION
    assert info["device"] == "cpu"
    assert info["dtype"] == "float32"
    assert (info["max_n"], info["max_scale"], info["max_queue_images"]) == (8, 4, 100)
    assert info["max_batch_images"] == 32
    assert isinstance(info["metrics"], dict)


def test_metrics(client: TestClient) -> None:
    generate(client, digit=0, n=3, seed=0, format="base64")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in (
        "gan_http_requests_total",
        "gan_batch_images",
        "gan_queue_wait_seconds",
        "gan_images_generated_total",
        "gan_model_info",
    ):
        assert f"\n{name}" in text, name
    assert re.search(r'^gan_model_info\{version="tiny"\} 1\.0$', text, re.M)
    assert re.search(
        r'^gan_http_requests_total\{method="POST",route="/generate",status="200"\} 1\.0$',
        text,
        re.M,
    )
    generated = re.search(r"^gan_images_generated_total (\S+)$", text, re.M)
    assert generated is not None and float(generated.group(1)) == 3.0


def test_metrics_count_unknown_methods_under_one_label(client: TestClient) -> None:
    # h11 accepts any token as a method: a client must not mint a series per token.
    for index in range(5):
        assert client.request(f"MADEUP{index}", "/generate").status_code == 405
    client.request("DELETE", "/generate")
    text = client.get("/metrics").text
    assert "MADEUP" not in text
    assert re.search(
        r'^gan_http_requests_total\{method="other",route="/generate",status="405"\} 5\.0$',
        text,
        re.M,
    )
    assert re.search(
        r'^gan_http_requests_total\{method="DELETE",route="/generate",status="405"\} 1\.0$',
        text,
        re.M,
    )


def test_not_ready_until_warm_up_finishes(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with serve(tiny_store, loader, ready=False, warmup_batches=1) as client:
        try:
            assert model().entered.wait(10), "warm-up never started"
            response = client.get("/readyz")
            assert response.status_code == 503
            assert response.headers["retry-after"] == "1"
            assert response.json()["status"] == "warming up"
            assert client.get("/healthz").status_code == 200  # alive while not ready
        finally:
            model().gate.set()
        wait_ready(client)
        assert model().batch_sizes[0] == 32  # warm-up runs the largest batch
        assert client.get("/digits/0.png", params={"seed": 1}).status_code == 200


def test_metrics_follow_prometheus_conventions(client: TestClient) -> None:
    text = client.get("/metrics").text
    for series in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_info",
        'gan_build_info{fastapi="',
        'gan_rejected_requests_total{reason="queue_wait"} 0.0',
        'gan_rejected_requests_total{reason="deadline"} 0.0',
        'gan_restorations_total{outcome="ok"} 0.0',
        "gan_restore_queue 0.0",
        "gan_job_running 0.0",
        "gan_job_step 0.0",
        "gan_model_fallback 0.0",
    ):
        assert series in text, series
