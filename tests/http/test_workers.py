"""Several workers on one port (``GAN_WORKERS``), end to end: a real ``python -m app`` that
supervises two worker processes. Each serves, the primary alone runs jobs and activations (the
other relays them), an activation reaches every worker before it answers, metrics add up across
workers, a dead worker comes back, SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gan.store import ModelStore
from gan.testing import publish_random_generator
from support.jobs import AUTH, TINY_JOB, TOKEN, add_classifier, publish_tiny
from support.models import TINY_GENERATOR, TINY_VERSION
from support.process import ServerProcess, running_server, stop

pytestmark = pytest.mark.slow
OTHER_VERSION = "tiny-b"
FIXTURE_MNIST = Path(__file__).parents[1] / "fixtures" / "mnist"
TRIES = 200  # fresh connections before concluding that a worker never answers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module (starting two workers takes seconds): the tests run in file
    order, the ones that change it (an activation, a killed worker, SIGTERM) last."""
    workdir = tmp_path_factory.mktemp("workers")
    store = ModelStore(workdir / "model_store")
    publish_random_generator(store, TINY_VERSION, TINY_GENERATOR)
    publish_tiny(store, OTHER_VERSION, seed=7)
    add_classifier(store)  # so that a job can evaluate what it trains
    with running_server(
        store.root,
        workdir,
        workers="2",
        admin_token=TOKEN,
        data_dir=str(FIXTURE_MNIST),
    ) as process:
        wait_for_workers(process, {0, 1})
        yield process


def request(
    server: ServerProcess,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, dict[str, str]]:
    """One request on a new connection (so that any worker may take it)."""
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})} if data else headers
    req = urllib.request.Request(server.base + path, data=data, headers=all_headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read(), lowercase(response.headers.items())
    except urllib.error.HTTPError as error:
        return error.code, error.read(), lowercase(error.headers.items())


def lowercase(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}


def info(server: ServerProcess) -> dict[str, Any]:
    status, body, _ = request(server, "/info")
    assert status == 200, body
    result: dict[str, Any] = json.loads(body)
    return result


def wait_for_workers(server: ServerProcess, wanted: set[int]) -> None:
    """Until fresh connections have reached every worker in ``wanted`` (each one ready)."""
    seen: set[int] = set()
    for _ in range(TRIES):
        if request(server, "/readyz")[0] == 200:
            seen.add(info(server)["worker"])
        if wanted <= seen:
            return
        time.sleep(0.05)
    raise AssertionError(f"workers seen: {sorted(seen)}, wanted {sorted(wanted)}\n{server.log()}")


def worker_pids(supervisor: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[0] != "Z" and int(stat[1]) == supervisor:
                pids.append(int(entry.name))
    return pids


def test_every_worker_serves_the_same_images(server: ServerProcess) -> None:
    """Both workers answer (the fixture saw each in /info); over fresh connections, spread
    across them, one seed gives one image."""
    assert len(worker_pids(server.process.pid)) == 2
    assert info(server)["workers"] == 2
    pngs = set()
    for _ in range(40):
        status, png, headers = request(
            server, "/generate", {"digit": 3, "seed": 11, "format": "png"}
        )
        assert status == 200 and headers["x-model-version"] == TINY_VERSION
        pngs.add(png)
    assert len(pngs) == 1


def test_job_routes_answer_alike_on_every_connection(server: ServerProcess) -> None:
    answers = {request(server, "/jobs")[:2] for _ in range(20)}
    assert answers == {(200, b"[]")}
    status, body, _ = request(server, "/jobs/" + "0" * 32)
    assert status == 404 and b"not found" in body
    # The relay passes the refusal through: no credential, no activation, on any worker.
    refusals = {request(server, f"/models/{OTHER_VERSION}/activate", {})[0] for _ in range(10)}
    assert refusals == {401}


def test_a_job_runs_once_and_its_events_stream_through_any_worker(server: ServerProcess) -> None:
    status, body, _ = request(server, "/jobs", TINY_JOB, AUTH)
    assert status == 202, body
    job_id = json.loads(body)["id"]
    with ThreadPoolExecutor(4) as pool:  # four live streams at once, each ending with the job
        streams = list(pool.map(lambda _: read_events(server, job_id), range(4)))
    for events in streams:  # every connection, whichever worker took it, saw the whole job
        assert [e["state"] for e in events if e["event"] == "state"][-1] == "succeeded"
        assert any(e["event"] == "progress" for e in events)
    jobs = json.loads(request(server, "/jobs")[1])
    assert [job["id"] for job in jobs] == [job_id]  # one job, in the one database


def read_events(server: ServerProcess, job_id: str) -> list[dict[str, Any]]:
    req = urllib.request.Request(f"{server.base}/jobs/{job_id}/events")
    with urllib.request.urlopen(req, timeout=120) as response:
        text = response.read().decode()
    return [
        json.loads(line.removeprefix("data: "))
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def test_metrics_count_the_requests_of_every_worker(server: ServerProcess) -> None:
    before = generated(server)
    for seed in range(40):
        assert request(server, "/generate", {"digit": 1, "seed": seed, "format": "png"})[0] == 200
    time.sleep(0.2)
    assert {generated(server) - before for _ in range(10)} == {40}


def test_metrics_describe_each_worker_process(server: ServerProcess) -> None:
    """The process series of every live worker, by pid, whichever worker answers the scrape."""
    time.sleep(1.2)  # each worker writes its series once a second
    for _ in range(4):
        memory, text = worker_memory(server)
        assert len(memory) == 2, text[:2000]
        assert all(value > 50e6 for value in memory.values())  # a worker holds torch and a model
        assert "\nprocess_resident_memory_bytes " not in text


def worker_memory(server: ServerProcess) -> tuple[dict[int, float], str]:
    """gan_worker_resident_memory_bytes by pid, and the whole scrape."""
    status, body, _ = request(server, "/metrics")
    assert status == 200
    text = body.decode()
    memory = {
        int(line.split('pid="')[1].split('"')[0]): float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("gan_worker_resident_memory_bytes{")
    }
    return memory, text


def generated(server: ServerProcess) -> float:
    status, body, _ = request(server, "/metrics")
    assert status == 200
    wanted = 'gan_http_requests_total{method="POST",route="/generate",status="200"}'
    lines = [line for line in body.decode().splitlines() if line.startswith(wanted)]
    return float(lines[0].split()[-1]) if lines else 0.0


def test_an_activation_answers_once_every_worker_serves_it(server: ServerProcess) -> None:
    status, body, _ = request(server, f"/models/{OTHER_VERSION}/activate", {"force": True}, AUTH)
    assert status == 200, body
    assert json.loads(body)["version"] == OTHER_VERSION
    served = {request(server, "/generate", {"seed": 1})[2]["x-model-version"] for _ in range(30)}
    assert served == {OTHER_VERSION}


def test_a_worker_that_dies_is_started_again(server: ServerProcess) -> None:
    victim = worker_pids(server.process.pid)[-1]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = worker_pids(server.process.pid)
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no replacement for worker {victim}:\n{server.log()}")
    wait_for_workers(server, {0, 1})
    assert request(server, "/generate", {"seed": 2})[0] == 200


def test_a_dead_workers_process_series_are_gone(server: ServerProcess) -> None:
    """After the restart above: the series of the live workers only (the supervisor marks the
    dead one's files dead), so the README's "each live worker" holds."""
    time.sleep(1.2)  # the replacement writes its series within a second
    live = set(worker_pids(server.process.pid))
    assert set(worker_memory(server)[0]) == live


def test_sigterm_stops_every_worker(server: ServerProcess) -> None:
    workers = worker_pids(server.process.pid)
    assert stop(server.process) == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and not zombie(pid)]


def zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_workers_end_with_a_killed_supervisor(tmp_path: Path) -> None:
    """README: a worker whose supervisor is SIGKILLed gets SIGTERM from the kernel, so none is
    left serving the port."""
    store = ModelStore(tmp_path / "model_store")
    publish_random_generator(store, TINY_VERSION, TINY_GENERATOR)
    with running_server(store.root, tmp_path, workers="2") as process:
        workers = worker_pids(process.process.pid)
        assert len(workers) == 2
        process.process.kill()
        process.process.wait()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.1)
