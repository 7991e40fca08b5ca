"""How a job reaches the training CLI: its options (a preset passes none, so the CLI trains the
shipped recipe), the time estimate before it starts, and a store with broken entries."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.retraining.commands import recipe_options
from app.schemas.jobs import JobParams
from gan.store import MANIFEST_FILE, ModelStore
from gan.testing import publish_random_generator
from support.jobs import AUTH, make_settings, wait_for_state
from support.models import TINY_GENERATOR
from training import cli
from training.config import TrainConfig
from training.train import learning_rate_scale

RECORD = "import json, sys; open({path!r}, 'w').write(json.dumps(sys.argv[1:]))"
SPEED_LINE = {"images_per_s": 500.0, "steps": 26000, "estimated_training_s": 3328.0,
              "timed_steps": 24, "device": "cpu"}  # fmt: skip


def test_options_skip_unset_values_and_one_weight_replaces_the_schedule() -> None:
    params: dict[str, Any] = {
        "steps": 10, "aux_classifier": None, "aux_classifier_schedule": "0:0.1,5:0.05",
        "conditional_norm": False, "loss": "hinge",
    }  # fmt: skip
    assert recipe_options(params) == [
        "--steps", "10", "--aux-classifier-schedule", "0:0.1,5:0.05", "--no-conditional-norm",
        "--loss", "hinge",
    ]  # fmt: skip
    params["aux_classifier"] = 0.2
    assert "--aux-classifier-schedule" not in recipe_options(params)
    assert recipe_options(params)[2:4] == ["--aux-classifier", "0.2"]


def test_a_null_decay_start_is_the_recipes_26000_and_a_short_job_keeps_constant_rates() -> None:
    """The jobs schema's promise for ``lr_decay_start: null``: the option is not passed, so the
    CLI's default, the shipped recipe's 26,000, applies; a job shorter than that never decays."""
    params = JobParams.model_validate({"steps": 2000, "lr_decay_start": None}).model_dump()
    options = recipe_options(params)
    assert "--lr-decay-start" not in options
    config = cli.train_config(cli.build_parser().parse_args(["train", *options]))
    assert config.lr_decay_start == 26_000 == JobParams().lr_decay_start
    assert {learning_rate_scale(config, step) for step in range(0, 2000, 100)} == {1.0}


def recording_client(
    store: ModelStore, tmp_path: Path, mnist_dir: Path, factory: Callable[..., TestClient]
) -> tuple[TestClient, Path]:
    record = tmp_path / "argv.json"
    command = [sys.executable, "-c", RECORD.format(path=str(record))]
    settings = make_settings(store, tmp_path, mnist_dir, training_command=command)
    return factory(settings), record


@pytest.fixture
def recorded(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> tuple[TestClient, Path]:
    """A client whose jobs run a stand-in that records its argv."""
    return recording_client(job_store, tmp_path, mnist_dir, client_factory)


def test_the_shipped_preset_passes_no_recipe_option(recorded: tuple[TestClient, Path]) -> None:
    client, record = recorded
    job = client.post("/jobs", json={"preset": "shipped"}, headers=AUTH)
    assert job.status_code == 202, job.text
    wait_for_state(client, job.json()["id"], {"failed"})  # the stand-in trains nothing
    argv = json.loads(record.read_text())
    assert argv[0] == "train" and "--evaluate" in argv and "--data-dir" in argv
    options = {arg for arg in argv if arg.startswith("--")}
    assert options == {
        "--store", "--run-dir", "--version", "--parent", "--progress", "--evaluate", "--data-dir"
    }  # fmt: skip
    assert job.json()["params"] == {"preset": "shipped"}


def test_a_preset_takes_no_other_parameter(client_factory: Callable[..., TestClient],
                                           job_store: ModelStore, tmp_path: Path,
                                           mnist_dir: Path) -> None:  # fmt: skip
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    response = client.post("/jobs", json={"preset": "shipped", "steps": 5}, headers=AUTH)
    assert response.status_code == 422
    assert "steps" in response.text and "preset" in response.text


def test_the_estimate_is_the_speed_commands_measurement(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    script = f"import json, sys; print('warming up'); print(json.dumps({SPEED_LINE!r}))"
    command = [sys.executable, "-c", script]
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir, training_command=command))
    estimate = client.post("/jobs/estimate", json={"preset": "shipped"}, headers=AUTH).json()
    assert estimate["seconds"] == 3328.0 and estimate["images_per_s"] == 500.0
    assert estimate["steps"] == 26000 and "24 real training steps" in estimate["basis"]
    assert client.post("/jobs/estimate", json={}).status_code == 401  # admin only: it costs CPU


@pytest.mark.slow
def test_the_real_speed_command_gives_an_estimate(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    estimate = client.post(
        "/jobs/estimate", json={"steps": 2000, "batch_size": 64}, headers=AUTH
    ).json()
    assert estimate["images_per_s"] > 0 and estimate["steps"] == 2000
    assert estimate["seconds"] == pytest.approx(2000 * 64 / estimate["images_per_s"], rel=0.01)


def test_a_broken_entry_is_listed_with_its_problem_and_refused(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_random_generator(job_store, "mangled", TINY_GENERATOR, seed=3, activate=False)
    (job_store.version_dir("mangled") / MANIFEST_FILE).write_text("{not json")
    publish_random_generator(job_store, "foreign", TINY_GENERATOR, seed=4, activate=False)
    manifest = job_store.version_dir("foreign") / MANIFEST_FILE
    manifest.write_text(manifest.read_text().replace('"generator.safetensors"', '"../../x"'))
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    listing = client.get("/models")
    assert listing.status_code == 200
    problems = {item["version"]: item["problem"] for item in listing.json()}
    assert problems["tiny"] is None
    assert problems["mangled"] and problems["foreign"]
    for version in ("mangled", "foreign"):
        refused = client.post(f"/models/{version}/activate", headers=AUTH, json={"force": True})
        assert refused.status_code == 409, refused.text
    assert client.get("/generate").status_code == 405  # the service is unaffected
    assert client.post("/generate", json={"digit": 1}).status_code == 200


def test_the_training_levers_reach_the_cli_and_bad_ones_are_refused(
    recorded: tuple[TestClient, Path],
) -> None:
    client, record = recorded
    levers = {
        "augment": "translation", "r1_gamma": 0.5, "r1_every": 8, "lr_decay_start": 3,
        "twin_classifier_from": 4,
    }  # fmt: skip
    job = client.post("/jobs", json={"steps": 6, **levers}, headers=AUTH)
    assert job.status_code == 202, job.text
    wait_for_state(client, job.json()["id"], {"failed"})  # the stand-in trains nothing
    argv = json.loads(record.read_text())
    pairs = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    assert pairs["--augment"] == "translation" and pairs["--r1-gamma"] == "0.5"
    assert pairs["--r1-every"] == "8" and pairs["--lr-decay-start"] == "3"
    assert pairs["--twin-classifier-from"] == "4"
    for field, value in (("augment", "rotation"), ("r1_gamma", -1), ("r1_every", 0)):
        refused = client.post("/jobs", json={field: value}, headers=AUTH)
        assert refused.status_code == 422 and field in refused.text, refused.text


@pytest.mark.parametrize("aux", [{"aux_classifier": 0}, {"aux_classifier_schedule": "0:0,100:0.0"}])
def test_a_twin_without_the_ac_gan_term_is_refused(
    recorded: tuple[TestClient, Path], aux: dict[str, object]
) -> None:
    """TAC-GAN's twin head lives beside the AC-GAN head: with the AC-GAN weight 0 throughout
    there is none, and the job is refused up front instead of failing in the CLI."""
    client, record = recorded
    refused = client.post("/jobs", json={"twin_classifier_from": 0, **aux}, headers=AUTH)
    assert refused.status_code == 422, refused.text
    assert "twin_classifier_from needs the AC-GAN term" in refused.text
    assert not record.exists()  # no training command ran
    allowed = client.post(
        "/jobs", json={"twin_classifier_from": 0, "aux_classifier": 0.1}, headers=AUTH
    )
    assert allowed.status_code == 202, allowed.text
    wait_for_state(client, allowed.json()["id"], {"failed"})  # the stand-in trains nothing


def test_the_recipes_twin_goes_with_the_ac_gan_term_and_null_is_none() -> None:
    """The recipe's twin (from 36,000) is not asked for, so a job without the AC-GAN term is
    accepted and the CLI leaves the twin out; a null twin reaches the CLI as its "none"."""
    parser = cli.build_parser()

    def config_of(body: dict[str, object]) -> TrainConfig:
        options = recipe_options(JobParams.model_validate(body).model_dump())
        return cli.train_config(parser.parse_args(["train", *options]))

    assert config_of({}).twin_classifier_from == 36_000 == JobParams().twin_classifier_from
    assert config_of({"aux_classifier": 0}).twin_classifier_from is None
    options = recipe_options(JobParams.model_validate({"twin_classifier_from": None}).model_dump())
    assert options[options.index("--twin-classifier-from") + 1] == "none"
    assert config_of({"twin_classifier_from": None}).twin_classifier_from is None


@pytest.mark.parametrize(
    ("restarts", "error"),
    [
        ({"lr_restarts": "20000"}, "must come after lr_decay_start (26000)"),
        ({"lr_restarts": "40000,38000"}, "increasing order"),
        ({"lr_restarts": "0"}, "increasing order"),
        ({"lr_restarts": "soon"}, "lr_restarts"),
    ],
)
def test_restarts_before_the_decay_or_out_of_order_are_refused(
    recorded: tuple[TestClient, Path], restarts: dict[str, object], error: str
) -> None:
    client, record = recorded
    refused = client.post("/jobs", json=restarts, headers=AUTH)
    assert refused.status_code == 422 and error in refused.text, refused.text
    assert not record.exists()


def test_restarts_reach_the_cli(recorded: tuple[TestClient, Path]) -> None:
    client, record = recorded
    job = client.post("/jobs", json={"steps": 6, "lr_restarts": "none"}, headers=AUTH)
    assert job.status_code == 202, job.text
    wait_for_state(client, job.json()["id"], {"failed"})  # the stand-in trains nothing
    argv = json.loads(record.read_text())
    assert argv[argv.index("--lr-restarts") + 1] == "none"
