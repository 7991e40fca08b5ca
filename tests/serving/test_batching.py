"""Admission control: the queue refuses work it could not finish in time, and the middleware
refuses it before a body is read."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2

from app.metrics import ServiceMetrics
from app.serving.batching import BatchQueue, PendingGeneration, Throughput
from gan.store import ModelStore
from support.app import gated_loader, serve, wait_until


def pending(images: int) -> PendingGeneration:
    loop = asyncio.new_event_loop()
    try:
        return PendingGeneration(
            list(range(images)), [None] * images, loop.create_future(), loop, 1e9
        )
    finally:
        loop.close()


def test_throughput_is_a_smoothed_rate() -> None:
    rate = Throughput()
    assert rate.seconds_for(100) == 0.0  # unknown: no wait is predicted
    rate.record(100, 0.1)
    assert rate.images_per_s == 1000
    rate.record(100, 0.05)
    assert 1000 < rate.images_per_s < 2000
    assert rate.seconds_for(int(rate.images_per_s)) == 1.0


def test_the_queue_refuses_what_would_wait_too_long() -> None:
    queue = BatchQueue(
        ServiceMetrics(),
        max_batch_images=8,
        max_wait_s=0,
        max_queue_images=1000,
        max_queue_wait_s=0.5,
    )
    queue.throughput.record(100, 1.0)  # 100 images/s: 50 queued images are a 0.5 s wait
    queue.admit(pending(50))
    assert queue.refusal(1) is None
    queue.admit(pending(10))
    refused = queue.refusal(1)
    assert refused is not None and refused[0] == "queue_wait"
    assert "0.60s (limit 0.5s)" in refused[1]
    assert queue.refusal(2000) is not None and queue.refusal(2000)[0] == "queue_full"  # type: ignore[index]


def test_a_full_queue_sheds_before_the_body_is_read(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with (
        serve(tiny_store, loader, max_queue_images=1, max_wait_ms=0) as client,
        ThreadPoolExecutor(2) as pool,
    ):
        worker = client.app.state.services.worker  # type: ignore[attr-defined]
        try:

            def post(seed: int) -> httpx2.Response:
                return client.post("/generate", json={"digit": 1, "seed": seed, "format": "png"})

            busy = pool.submit(post, 0)
            assert model().entered.wait(10)
            queued = pool.submit(post, 1)
            wait_until(lambda: worker.queued_images == 1)
            # Not even JSON: were it parsed, this would be a 422.
            shed = client.post(
                "/generate", content=b"{not json", headers={"Content-Type": "application/json"}
            )
            url = client.get("/digits/3.png", params={"seed": 1, "scale": 999})
        finally:
            model().gate.set()
        assert busy.result(10).status_code == 200 and queued.result(10).status_code == 200
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert "queue full" in shed.json()["detail"]
    assert url.status_code == 503  # shed before the query is validated too


def test_a_request_waits_at_the_door_and_is_served_when_room_frees(tiny_store: ModelStore) -> None:
    loader, model = gated_loader(open_gate=False)
    with (
        serve(tiny_store, loader, max_queue_images=1, max_wait_ms=0, admission_wait_s=5) as client,
        ThreadPoolExecutor(3) as pool,
    ):
        worker = client.app.state.services.worker  # type: ignore[attr-defined]

        def post(seed: int) -> httpx2.Response:
            return client.post("/generate", json={"digit": 1, "seed": seed, "format": "png"})

        busy = pool.submit(post, 0)
        assert model().entered.wait(10)
        queued = pool.submit(post, 1)
        wait_until(lambda: worker.queued_images == 1)
        waiting = pool.submit(post, 2)  # no room: it waits, asleep, instead of a 503
        time.sleep(0.3)
        assert not waiting.done()
        model().gate.set()
        answers = [future.result(10) for future in (busy, queued, waiting)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
