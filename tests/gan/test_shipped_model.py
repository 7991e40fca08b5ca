"""The model shipped in the repository's model_store: it loads, verifies, and draws the digits it
is asked for (judged by each shipped evaluator: the project's classifier and the independent
judge)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gan.networks import NUM_CLASSES, Evaluator
from gan.sampling import from_uint8, latents_for_seeds, to_uint8
from gan.store import (
    CLASSIFIER_DIR,
    EVALUATOR_ARCHITECTURES,
    JUDGE_DIR,
    LoadedGenerator,
    ModelStore,
)
from training.data import DECOMPRESSED_MD5

STORE = Path(__file__).parents[2] / "model_store"
SAMPLES_PER_DIGIT = 20
MIN_ACCURACY = 0.9


@pytest.fixture(scope="module")
def shipped_store() -> ModelStore:
    return ModelStore(STORE)


@pytest.fixture(scope="module", params=list(EVALUATOR_ARCHITECTURES))
def shipped(
    shipped_store: ModelStore, request: pytest.FixtureRequest
) -> tuple[LoadedGenerator, Evaluator]:
    version = shipped_store.active_version()
    return shipped_store.load_generator(version), shipped_store.load_classifier(request.param)


def test_shipped_model_loads(
    shipped_store: ModelStore, shipped: tuple[LoadedGenerator, Evaluator]
) -> None:
    loaded, classifier = shipped
    assert loaded.version == shipped_store.active_version()
    assert loaded.version in [m.version for m in shipped_store.versions()]
    assert loaded.manifest.kind == "generator"
    assert not loaded.model.training and not classifier.training
    # Both were trained on the full, genuine MNIST (md5 of the decompressed IDX files).
    assert loaded.manifest.data.get("mnist_md5") == DECOMPRESSED_MD5
    for evaluator, architecture in EVALUATOR_ARCHITECTURES.items():
        manifest = shipped_store.classifier_manifest(evaluator)
        assert manifest.data.get("mnist_md5") == DECOMPRESSED_MD5
        assert manifest.architecture["name"] == architecture
        assert manifest.metrics["test_accuracy"] >= 0.98
    # The judge is independent: another architecture, trained from another seed.
    seeds = {
        e: shipped_store.classifier_manifest(e).training["seed"] for e in EVALUATOR_ARCHITECTURES
    }
    assert len(set(seeds.values())) == len(seeds)


@torch.inference_mode()
def test_shipped_model_draws_the_asked_digit(shipped: tuple[LoadedGenerator, Evaluator]) -> None:
    loaded, classifier = shipped
    seeds = list(range(SAMPLES_PER_DIGIT))
    accuracy = {}
    for digit in range(NUM_CLASSES):
        z, labels = latents_for_seeds(seeds, loaded.model.config.latent_dim, [digit] * len(seeds))
        # Judge the images as served: quantised to uint8 first.
        images = to_uint8(loaded.model(z, labels))
        assert images.shape == (SAMPLES_PER_DIGIT, 28, 28)
        predicted = classifier(from_uint8(images)).argmax(1)
        accuracy[digit] = float((predicted == digit).double().mean())
    failing = {digit: value for digit, value in accuracy.items() if value < MIN_ACCURACY}
    assert not failing, f"digits drawn as asked in < {MIN_ACCURACY:.0%} of cases: {accuracy}"


def test_every_shipped_version_is_scored_by_both_shipped_evaluators(
    shipped_store: ModelStore,
) -> None:
    """The gates compare both evaluators' scores, so each shipped version's manifest holds the
    canonical evaluation (10,000 samples) by the project classifier and, under
    ``metrics["judge"]``, by the independent judge: each by the weights committed beside it."""
    shas = {e: shipped_store.classifier_manifest(e).weights_sha256 for e in EVALUATOR_ARCHITECTURES}
    for manifest in shipped_store.versions():
        by_judge = manifest.metrics[JUDGE_DIR]
        for scores, evaluator in ((manifest.metrics, CLASSIFIER_DIR), (by_judge, JUDGE_DIR)):
            assert scores["samples"] == 10_000, (manifest.version, evaluator)
            assert scores["classifier_sha256"] == shas[evaluator], (manifest.version, evaluator)
            assert scores["fid"] > scores["fid_real_floor"] > 0, (manifest.version, evaluator)
            assert len(scores["per_digit"]) == NUM_CLASSES
