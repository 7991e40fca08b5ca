"""Retraining jobs, the registry and hot swap, end to end on a tiny model and the MNIST fixture."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.retraining.commands import process_started
from app.retraining.database import JobDatabase
from app.retraining.promotion import decide
from app.schemas.jobs import JobParams
from gan.store import WEIGHTS_FILE, ModelStore
from support.jobs import (
    AUTH,
    TINY_JOB,
    TOKEN,
    make_settings,
    publish_tiny,
    sse_events,
    wait_for,
    wait_for_state,
)
from training import cli


def test_job_lifecycle_events_idempotency_and_conflict(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    response = client.post("/jobs", json=TINY_JOB, headers={**AUTH, "Idempotency-Key": "retry-1"})
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/jobs/{job['id']}"

    retry = client.post("/jobs", json=TINY_JOB, headers={**AUTH, "Idempotency-Key": "retry-1"})
    assert retry.status_code == 202 and retry.json()["id"] == job["id"]
    reused = client.post(
        "/jobs", json={**TINY_JOB, "seed": 5}, headers={**AUTH, "Idempotency-Key": "retry-1"}
    )
    assert reused.status_code == 409 and "different parameters" in reused.json()["detail"]
    second = client.post("/jobs", json=TINY_JOB, headers=AUTH)
    if job_is_active(client, job["id"]):
        assert second.status_code == 409 and job["id"] in second.json()["detail"]

    events = sse_events(client, job["id"])  # ends when the job does
    ids = [event_id for event_id, _ in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    states = [event["state"] for _, event in events if event["event"] == "state"]
    assert states == ["queued", "running", "succeeded"]
    steps = [event["step"] for _, event in events if event["event"] == "progress"]
    assert steps == sorted(steps) and steps[-1] == TINY_JOB["steps"]

    finished = client.get(f"/jobs/{job['id']}").json()
    assert finished["state"] == "succeeded", finished["log_tail"]
    version = finished["version"]
    assert finished["decision"]["promote"] is False and finished["decision"]["policy"] == "manual"
    for key in ("conditional_accuracy", "fid", "precision", "recall", "diversity"):
        assert key in finished["metrics"]
    models = {m["version"]: m for m in client.get("/models").json()}
    assert models[version]["active"] is False and models["tiny"]["active"] is True
    assert models[version]["parent"] == "tiny"
    assert "fid" in models[version]["metrics"]
    assert client.get(f"/jobs/{job['id']}/samples.png").headers["content-type"] == "image/png"
    assert client.get("/jobs").json()[0]["id"] == job["id"]


def job_is_active(client: TestClient, job_id: str) -> bool:
    return bool(client.get(f"/jobs/{job_id}").json()["state"] in {"queued", "running"})


def test_cancel_stops_the_process_and_leaves_no_version(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    settings = make_settings(job_store, tmp_path, mnist_dir)
    client = client_factory(settings)
    job = client.post("/jobs", json={**TINY_JOB, "steps": 100_000}, headers=AUTH).json()
    wait_for_state(client, job["id"], {"running"})
    time.sleep(1.0)  # let it get into the training loop
    cancelled = client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert [m.version for m in job_store.versions()] == ["tiny"]
    assert not (settings.state_dir / "runs" / job["id"]).exists()
    again = client.post(f"/jobs/{job['id']}/cancel", headers=AUTH)
    assert again.status_code == 409


def test_restart_marks_running_job_interrupted_and_ends_its_process(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    settings = make_settings(job_store, tmp_path, mnist_dir)
    orphan = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    db = JobDatabase(settings.state_dir / "jobs.sqlite3")
    job = db.create({"steps": 10}, None, parent="tiny")
    db.update(job.id, state="running", pid=orphan.pid, pid_started=process_started(orphan.pid))
    db.close()
    try:
        client = client_factory(settings)
        record = client.get(f"/jobs/{job.id}").json()
        assert record["state"] == "interrupted"
        assert orphan.wait(timeout=10) == -signal.SIGKILL
    finally:
        if orphan.poll() is None:
            os.kill(orphan.pid, signal.SIGKILL)


def test_restart_spares_a_process_that_reused_the_jobs_pid(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    settings = make_settings(job_store, tmp_path, mnist_dir)
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    db = JobDatabase(settings.state_dir / "jobs.sqlite3")
    job = db.create({"steps": 10}, None, parent="tiny")
    # The job's process started at another time: this PID now belongs to someone else.
    db.update(job.id, state="running", pid=stranger.pid, pid_started="1", version="g-never")
    db.close()
    try:
        client = client_factory(settings)
        record = client.get(f"/jobs/{job.id}").json()
        assert record["state"] == "interrupted" and record["phase"] is None
        assert record["version"] is None  # never published: not advertised
        assert record["log_tail"] is None  # the log is the admin's
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


@pytest.mark.parametrize(
    ("token", "headers", "status"),
    [
        (None, AUTH, 403),
        (TOKEN, {}, 401),
        (TOKEN, {"Authorization": "Bearer wrong"}, 401),
        (TOKEN, {"Authorization": "Basic abc"}, 401),
    ],
)
def test_admin_auth(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
    token: str | None,
    headers: dict[str, str],
    status: int,
) -> None:
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir, admin_token=token))
    for method, url in [("POST", "/jobs"), ("POST", "/models/tiny/activate")]:
        response = client.request(method, url, json=TINY_JOB, headers=headers)
        assert response.status_code == status, response.text
        if status == 403:
            assert "GAN_ADMIN_TOKEN" in response.json()["detail"]


def test_admin_token_from_file_and_right_token_accepted(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    settings = make_settings(
        job_store, tmp_path, mnist_dir, admin_token=None, admin_token_file=secret
    )
    client = client_factory(settings)
    assert client.post("/models/tiny/activate", headers=AUTH).status_code == 200


def test_auto_promotion_activates_a_version_that_passes_the_gates(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    lax = {
        "promotion": "auto",
        "gate_min_conditional_accuracy": 0.0,
        "gate_min_recall": 0.0,
        "gate_max_fid_ratio": 1e9,
        "gate_tolerance": 1.0,
    }
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir, **lax))
    # Switches and choices reach the training command too, not only numbers.
    architecture = {"conditional_norm": False, "upsampling": "nearest"}
    job = client.post("/jobs", json={**TINY_JOB, **architecture}, headers=AUTH).json()
    done = wait_for_state(client, job["id"], {"succeeded", "failed"})
    assert done["state"] == "succeeded", done["log_tail"]
    assert done["decision"]["promote"] is True
    assert client.get("/info").json()["model_version"] == done["version"]
    assert job_store.active_version() == done["version"]
    manifest = job_store.manifest(done["version"])
    assert {key: manifest.architecture[key] for key in architecture} == architecture


def test_job_defaults_are_the_training_clis() -> None:
    """One recipe: a job with default parameters trains what `python -m training train` does
    (only the job's length differs, so that a default job ends in minutes)."""
    cli_defaults = vars(cli.build_parser().parse_args(["train"]))
    for name, field in JobParams.model_fields.items():
        if name != "steps":
            assert field.default == cli_defaults[name], name


def test_promotion_gates_give_reasons() -> None:
    settings = Settings(promotion="auto", gate_min_conditional_accuracy=0.9, gate_min_recall=0.5)
    active = {"conditional_accuracy": 0.99, "recall": 0.8, "diversity": 0.95, "fid": 2.0}
    better = {"conditional_accuracy": 0.995, "recall": 0.85, "diversity": 0.96, "fid": 1.5}
    worse = {"conditional_accuracy": 0.93, "recall": 0.85, "diversity": 0.96, "fid": 5.0}
    assert decide(settings, better, active).promote
    rejected = decide(settings, worse, active)
    assert not rejected.promote
    failures = [reason for reason in rejected.reasons if reason.startswith("fail")]
    assert any("conditional_accuracy" in r for r in failures) and any("FID" in r for r in failures)
    assert not decide(settings, {"fid": 1.0}, active).promote
    assert not decide(Settings(promotion="manual"), better, active).promote


def test_tampered_version_is_refused_and_old_keeps_serving(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_tiny(job_store, "tampered", seed=1)
    weights = job_store.version_dir("tampered") / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    # Forced past the quality gates (the version has no metrics): the sha256 check still refuses.
    response = client.post("/models/tampered/activate", headers=AUTH, json={"force": True})
    assert response.status_code == 409 and "sha256" in response.json()["detail"]
    assert client.post("/models/missing/activate", headers=AUTH).status_code == 404
    assert client.post("/models/..%2Fetc/activate", headers=AUTH).status_code in {404, 422}
    assert client.get("/info").json()["model_version"] == "tiny"
    assert job_store.active_version() == "tiny"
    assert client.post("/generate", json={"digit": 1, "seed": 1}).status_code == 200


def test_hot_swap_under_load_has_zero_failures(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_tiny(job_store, "other", seed=1)
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    stop = threading.Event()
    statuses: list[int] = []
    versions: set[str] = set()

    def load() -> None:
        while not stop.is_set():
            response = client.post("/generate", json={"n": 4, "seed": 3, "format": "base64"})
            statuses.append(response.status_code)
            if response.status_code == 200:
                versions.add(response.json()["model_version"])

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for version in ["other", "tiny", "other", "tiny"]:
            time.sleep(0.15)
            forced = client.post(f"/models/{version}/activate", headers=AUTH, json={"force": True})
            assert forced.status_code == 200
        time.sleep(0.15)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert len(statuses) > 20
    assert set(statuses) == {200}
    assert versions == {"tiny", "other"}


def test_second_instance_follows_an_activation_in_the_shared_store(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_tiny(job_store, "other", seed=1)
    first = client_factory(make_settings(job_store, tmp_path / "a", mnist_dir))
    second = client_factory(
        make_settings(job_store, tmp_path / "b", mnist_dir, reload_interval_s=0.05)
    )
    forced = first.post("/models/other/activate", headers=AUTH, json={"force": True})
    assert forced.status_code == 200
    wait_for(lambda: second.get("/info").json()["model_version"] == "other", timeout=10)
    image = second.post("/generate", json={"seed": 2, "digit": 2, "format": "base64"}).json()
    assert image["model_version"] == "other"


@pytest.mark.parametrize("field", ["steps", "lr_g", "seed"])
@pytest.mark.parametrize("value", ["2", True])
def test_job_parameters_are_not_coerced(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
    field: str,
    value: object,
) -> None:
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    response = client.post("/jobs", json={**TINY_JOB, field: value}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
