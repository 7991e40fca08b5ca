"""Sample-quality metrics from one of the store's evaluators (the project's classifier, or the
independent judge): conditional accuracy, FID, precision/recall (Kynkaanniemi et al., 2019, k=3)
and within-digit diversity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from gan.networks import NUM_CLASSES, Evaluator, Generator
from gan.sampling import from_uint8, latents_for_seeds, to_uint8
from gan.store import CLASSIFIER_DIR, ModelStore
from training.data import Split, load_split

NEIGHBOURS = 3


@torch.inference_mode()
def generate_per_digit(
    generator: Generator,
    per_digit: int,
    seed: int = 0,
    batch_size: int = 1000,
    truncation: float = 1.0,
) -> Split:
    """per_digit samples of each digit, seeds seed..seed+N-1 as the service would draw them
    (with the service's ``truncation``)."""
    digits = [d for d in range(NUM_CLASSES) for _ in range(per_digit)]
    chunks = []
    for start in range(0, len(digits), batch_size):
        part = digits[start : start + batch_size]
        seeds = list(range(seed + start, seed + start + len(part)))
        z, labels = latents_for_seeds(seeds, generator.config.latent_dim, part, truncation)
        chunks.append(to_uint8(generator(z, labels)))
    return Split(torch.cat(chunks), torch.tensor(digits))


@torch.inference_mode()
def classify(classifier: Evaluator, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 28, 28) -> (features (N, F) float64, predicted digits (N,))."""
    features, predictions = [], []
    for start in range(0, len(images), 1000):
        h = classifier.features(from_uint8(images[start : start + 1000]))
        features.append(h.double())
        predictions.append(classifier.head(h).argmax(1))
    return torch.cat(features), torch.cat(predictions)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets: |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov_a)
    sqrt_a = eigenvectors @ torch.diag(eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T
    cross = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    value = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross
    return float(value)


def _kth_neighbour_radius(features: torch.Tensor) -> torch.Tensor:
    radii = []
    for start in range(0, len(features), 2000):
        distances = torch.cdist(features[start : start + 2000], features)
        # k+1: the nearest "neighbour" of each point is itself at distance 0.
        radii.append(distances.kthvalue(NEIGHBOURS + 1, dim=1).values)
    return torch.cat(radii)


def _coverage(points: torch.Tensor, support: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of points inside at least one support point's k-NN ball."""
    inside = 0
    for start in range(0, len(points), 2000):
        distances = torch.cdist(points[start : start + 2000], support)
        inside += int((distances <= radii.unsqueeze(0)).any(dim=1).sum())
    return inside / len(points)


def precision_recall(real: torch.Tensor, fake: torch.Tensor) -> tuple[float, float]:
    precision = _coverage(fake, real, _kth_neighbour_radius(real))
    recall = _coverage(real, fake, _kth_neighbour_radius(fake))
    return precision, recall


def mean_pair_distance(images: torch.Tensor, pairs: int, rng: torch.Generator) -> float:
    """Mean pixel-space L2 distance (pixels in [0, 1]) between random distinct pairs."""
    flat = images.reshape(len(images), -1).double() / 255.0
    first = torch.randint(len(flat), (pairs,), generator=rng)
    second = (first + torch.randint(1, len(flat), (pairs,), generator=rng)) % len(flat)
    return float((flat[first] - flat[second]).norm(dim=1).mean())


def diversity_ratio(fake: Split, real: Split, pairs: int = 2000) -> float:
    """Within-digit diversity of fakes over that of real digits, averaged over the ten digits.
    A generator that ignores z scores near 0; one as varied as real data scores near 1."""
    rng = torch.Generator().manual_seed(0)
    ratios = []
    for digit in range(NUM_CLASSES):
        fake_d = fake.images[fake.labels == digit]
        real_d = real.images[real.labels == digit]
        ratios.append(
            mean_pair_distance(fake_d, pairs, rng) / mean_pair_distance(real_d, pairs, rng)
        )
    return sum(ratios) / len(ratios)


def evaluate_samples(classifier: Evaluator, fake: Split, real_test: Split) -> dict[str, Any]:
    fake_features, predictions = classify(classifier, fake.images)
    real_features, _ = classify(classifier, real_test.images)
    precision, recall = precision_recall(real_features, fake_features)
    return {
        "conditional_accuracy": float((predictions == fake.labels).double().mean()),
        "fid": frechet_distance(real_features, fake_features),
        "precision": precision,
        "recall": recall,
        "diversity": diversity_ratio(fake, real_test),
        "samples": len(fake),
        "per_digit": per_digit_metrics(
            fake.labels, predictions, fake_features, real_test.labels, real_features
        ),
    }


def per_digit_metrics(
    fake_labels: torch.Tensor,
    predictions: torch.Tensor,
    fake_features: torch.Tensor,
    real_labels: torch.Tensor,
    real_features: torch.Tensor,
) -> list[dict[str, float | int]]:
    """Each digit's conditional accuracy, and FID of its samples against the real test digits of
    that digit (about 1,000 each: compare it with the digit's own real-data floor, higher than
    the overall one since the samples are ten times fewer)."""
    rows: list[dict[str, float | int]] = []
    for digit in range(NUM_CLASSES):
        asked = fake_labels == digit
        rows.append(
            {
                "digit": digit,
                "accuracy": float((predictions[asked] == digit).double().mean()),
                "fid": frechet_distance(real_features[real_labels == digit], fake_features[asked]),
            }
        )
    return rows


def real_data_floors(
    classifier: Evaluator, real_train: Split, real_test: Split, count: int
) -> tuple[float, list[float]]:
    """FID of ``count`` real training digits against the real test digits (the best reachable),
    overall and for each digit (its training digits among them against its test digits)."""
    subset = torch.randperm(len(real_train), generator=torch.Generator().manual_seed(0))[:count]
    train_features, _ = classify(classifier, real_train.images[subset])
    train_labels = real_train.labels[subset]
    test_features, _ = classify(classifier, real_test.images)
    per_digit = [
        frechet_distance(
            test_features[real_test.labels == digit], train_features[train_labels == digit]
        )
        for digit in range(NUM_CLASSES)
    ]
    return frechet_distance(test_features, train_features), per_digit


def real_reference(
    store: ModelStore,
    data_dir: str | Path | None,
    per_digit: int,
    seed: int = 0,
    evaluator: str = CLASSIFIER_DIR,
) -> dict[str, Any]:
    """Real training digits scored as a generator's samples are: ``per_digit`` of each digit
    (all of a digit's if it has fewer), drawn by ``seed``, against the real test digits. What
    a perfect generator would reach, the reference a generator's metrics are stated beside."""
    classifier = store.load_classifier(evaluator)
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    rng = torch.Generator().manual_seed(seed)
    picks = []
    for digit in range(NUM_CLASSES):
        of_digit = (train.labels == digit).nonzero().squeeze(1)
        picks.append(of_digit[torch.randperm(len(of_digit), generator=rng)[:per_digit]])
    chosen = torch.cat(picks)
    metrics = evaluate_samples(classifier, Split(train.images[chosen], train.labels[chosen]), test)
    metrics["classifier_sha256"] = store.classifier_manifest(evaluator).weights_sha256
    return metrics


def score(
    generator: Generator,
    store: ModelStore,
    data_dir: str | Path | None,
    per_digit: int,
    seed: int = 0,
    truncation: float = 1.0,
    evaluator: str = CLASSIFIER_DIR,
) -> dict[str, Any]:
    """Every metric of a generator, judged by the store's ``evaluator`` on ``per_digit`` samples
    of each digit from ``seed`` on: what a version's manifest records (with the classifier's
    sha256) when ``seed`` is 0, ``truncation`` 1 and the evaluator the project's classifier."""
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    fake = generate_per_digit(generator, per_digit, seed, truncation=truncation)
    return judged_by(store, evaluator, fake, train, test)


def manifest_metrics(
    generator: Generator, store: ModelStore, data_dir: str | Path | None, per_digit: int
) -> dict[str, Any]:
    """A version's canonical evaluation, what its manifest records: the project classifier's
    scores at seed 0 and truncation 1, and the independent judge's beside them, under
    ``metrics["judge"]``, when the store has a judge (the quality gates read both). The data
    are read and the samples drawn once for both."""
    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    fake = generate_per_digit(generator, per_digit, seed=0)
    classifier, *others = store.scoring_evaluators()
    metrics = judged_by(store, classifier, fake, train, test)
    for evaluator in others:
        metrics[evaluator] = judged_by(store, evaluator, fake, train, test)
    return metrics


def judged_by(
    store: ModelStore, evaluator: str, fake: Split, train: Split, test: Split
) -> dict[str, Any]:
    """``fake``'s metrics by the store's ``evaluator``, with the real-data floors and the
    evaluator's sha256."""
    manifest = store.classifier_manifest(evaluator)
    classifier = store.load_classifier(evaluator)
    metrics: dict[str, Any] = evaluate_samples(classifier, fake, test)
    metrics["fid_real_floor"], digit_floors = real_data_floors(classifier, train, test, len(fake))
    for row, floor in zip(metrics["per_digit"], digit_floors, strict=True):
        row["fid_real_floor"] = floor
    metrics["classifier_sha256"] = manifest.weights_sha256
    return metrics
