"""Quality gates on every activation: a worse or unevaluated version is refused with each failed
gate and its numbers unless forced; the comparison the page shows beside the active version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from fastapi.testclient import TestClient

from app.config import Settings
from app.retraining.promotion import evaluate_gates
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import ModelStore
from gan.testing import publish_random_generator
from support.app import serve
from support.jobs import AUTH, TINY_JOB, make_settings, wait_for_state
from support.models import TINY_GENERATOR, tiny_generator

GOOD = {"conditional_accuracy": 0.99, "recall": 0.8, "diversity": 1.0, "fid": 10.0}
WORSE = {"conditional_accuracy": 0.99, "recall": 0.7, "diversity": 1.0, "fid": 14.0}


def test_a_worse_version_is_refused_with_its_gates_unless_forced(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_random_generator(job_store, "good", TINY_GENERATOR, seed=1, metrics=GOOD)
    publish_random_generator(
        job_store, "worse", TINY_GENERATOR, seed=2, activate=False, metrics=WORSE
    )
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    comparison = client.get("/models/worse/compare").json()
    refused = client.post("/models/worse/activate", headers=AUTH)
    assert client.get("/info").json()["model_version"] == "good"
    forced = client.post("/models/worse/activate", headers=AUTH, json={"force": True})
    assert forced.status_code == 200 and forced.json()["active"] is True
    back = client.post("/models/good/activate", headers=AUTH)  # better again: no force needed

    assert (
        comparison["candidate"]["version"] == "worse" and comparison["active"]["version"] == "good"
    )
    assert comparison["passes"] is False
    failed = {gate["name"]: gate["text"] for gate in comparison["gates"] if not gate["passed"]}
    assert set(failed) == {"recall", "fid"}
    assert refused.status_code == 409
    body = refused.json()
    assert {gate["name"] for gate in body["gates"]} == {"recall", "fid"}
    assert "recall 0.7000 >= active 0.8000 - 0.005" in body["detail"]
    assert "FID 14.000 <= 1.1 x active 10.000" in body["detail"]
    assert '"force": true' in body["detail"]
    assert back.status_code == 200


JUDGE_SCORES: dict[str, Any] = {**GOOD, "fid": 0.1, "classifier_sha256": "a" * 64}
JUDGED = {**GOOD, "judge": JUDGE_SCORES}
# Better than JUDGED by the project classifier, worse by the independent judge: tuned to one.
TUNED = {**GOOD, "fid": 9.0, "judge": {**JUDGE_SCORES, "recall": 0.7, "fid": 0.2}}


def failed_gates(new: dict[str, Any], active: dict[str, Any]) -> dict[str, str]:
    return {
        gate.name: gate.text for gate in evaluate_gates(Settings(), new, active) if not gate.passed
    }


def test_the_independent_judge_gates_a_version_the_classifier_passes(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    publish_random_generator(job_store, "judged", TINY_GENERATOR, seed=1, metrics=JUDGED)
    publish_random_generator(
        job_store, "tuned", TINY_GENERATOR, seed=2, activate=False, metrics=TUNED
    )
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    comparison = client.get("/models/tuned/compare").json()
    refused = client.post("/models/tuned/activate", headers=AUTH)

    names = [gate["name"] for gate in comparison["gates"]]
    assert {"fid", "judge_conditional_accuracy", "judge_recall", "judge_fid"} <= set(names)
    assert refused.status_code == 409
    assert {gate["name"] for gate in refused.json()["gates"]} == {"judge_recall", "judge_fid"}
    assert "judge recall 0.7000 >= active 0.8000 - 0.005" in refused.json()["detail"]
    assert "judge FID 0.200 <= 1.1 x active 0.100" in refused.json()["detail"]
    assert client.get("/info").json()["model_version"] == "judged"


def test_a_version_the_judge_has_not_scored_fails_against_one_it_has() -> None:
    failed = failed_gates(GOOD, JUDGED)
    assert list(failed) == ["judge_evaluated"]
    assert "--evaluator judge" in failed["judge_evaluated"]
    # An active version the judge never scored (older manifests) leaves the judge out.
    assert failed_gates(JUDGED, GOOD) == {}
    assert not any(
        gate.name.startswith("judge") for gate in evaluate_gates(Settings(), JUDGED, GOOD)
    )


def test_scores_from_another_evaluator_do_not_compare() -> None:
    """A judge retrained since the active version was scored: its numbers are on another scale."""
    rejudged = {**JUDGED, "judge": {**JUDGE_SCORES, "classifier_sha256": "b" * 64}}
    failed = failed_gates(rejudged, JUDGED)
    assert list(failed) == ["judge_same_evaluator"]
    assert (
        "bbbbbbbbbbbb" in failed["judge_same_evaluator"]
        and "aaaaaaaaaaaa" in failed["judge_same_evaluator"]
    )
    reclassified = {**GOOD, "classifier_sha256": "c" * 64}
    assert list(failed_gates(reclassified, {**GOOD, "classifier_sha256": "d" * 64})) == [
        "same_evaluator"
    ]


PER_DIGIT = [{"digit": d, "accuracy": 0.9 + d / 100, "fid": 10.0 + d} for d in range(10)]


def test_per_digit_metrics_pass_through_the_listing_the_comparison_and_info(
    tiny_store: ModelStore,
) -> None:
    """A version the evaluation scored digit by digit shows it wherever its metrics are shown;
    an older one (here the unevaluated "tiny") simply lacks it, and the gates ignore it."""
    publish_random_generator(
        tiny_store, "scored", TINY_GENERATOR, seed=1, metrics={**GOOD, "per_digit": PER_DIGIT}
    )
    with serve(tiny_store) as client:
        listed = {model["version"]: model for model in client.get("/models").json()}
        comparison = client.get("/models/tiny/compare").json()
        info = client.get("/info").json()
    assert listed["scored"]["metrics"]["per_digit"] == PER_DIGIT
    assert "per_digit" not in listed["tiny"]["metrics"]
    assert comparison["active"]["metrics"]["per_digit"] == PER_DIGIT
    assert "per_digit" not in comparison["candidate"]["metrics"]
    assert [gate["name"] for gate in comparison["gates"]] == ["evaluated"]
    assert info["model_version"] == "scored" and info["metrics"]["per_digit"] == PER_DIGIT


def sample(model: torch.nn.Module, seeds: list[int]) -> torch.Tensor:
    z, labels = latents_for_seeds(seeds, TINY_GENERATOR.latent_dim, [None] * len(seeds))
    with torch.inference_mode():
        return to_uint8(model(z, labels)).to(torch.int16)


@pytest.mark.slow
def test_a_200_step_job_exports_what_it_trained_and_its_activation_is_gated(
    job_store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    client_factory: Callable[..., TestClient],
) -> None:
    client = client_factory(make_settings(job_store, tmp_path, mnist_dir))
    job = client.post("/jobs", json={**TINY_JOB, "steps": 200}, headers=AUTH).json()
    done = wait_for_state(client, job["id"], {"succeeded", "failed"}, timeout=180)
    assert done["state"] == "succeeded", done
    version = done["version"]
    trained = job_store.load_generator(version).model
    seeds = list(range(32))
    moved = (sample(trained, seeds) - sample(tiny_generator(0), seeds)).abs().float().mean()
    assert moved > 10  # grey levels: the export is the trained generator, not its init

    refused = client.post(f"/models/{version}/activate", headers=AUTH)
    assert refused.status_code == 409, refused.text
    gates = refused.json()["gates"]
    assert gates and all(not gate["passed"] for gate in gates)
    assert any("conditional accuracy" in gate["text"] for gate in gates)  # a random judge
    assert client.get("/info").json()["model_version"] == "tiny"


def test_the_shipped_version_passes_the_gates_against_its_parent() -> None:
    """training/README.md says mnist-cgan-v6 was activated over v5 without force: with the
    service's default gates, every one of them passes on the two shipped manifests."""
    store = ModelStore(Path(__file__).parents[2] / "model_store")
    shipped = store.manifest(store.active_version())
    assert shipped.parent is not None
    parent = store.manifest(shipped.parent)
    gates = evaluate_gates(Settings(), dict(shipped.metrics), dict(parent.metrics))
    assert gates and all(gate.passed for gate in gates), [gate.text for gate in gates]
