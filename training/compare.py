"""Two versions side by side: both scored on the same seed sets by each evaluator, every headline
metric, and whether the candidate is better on each set. A claim that a version is better rests
on margins that hold on every set and by both evaluators, not on one set's luck (the quality
issue's "margins checked on three seed sets"); this is that check as one command."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gan.store import ModelStore
from training.data import load_split
from training.evaluate import evaluate_samples, generate_per_digit

# The metrics compared; "worst_digit" is the lowest of the ten digits' accuracies.
HEADLINE = ("conditional_accuracy", "worst_digit", "fid", "precision", "recall", "diversity")


class OverlappingSeedSets(ValueError):
    """Two seed sets share seeds, so they are not independent draws."""


@dataclass(frozen=True)
class Comparison:
    evaluator: str
    seed: int
    metric: str
    baseline: float
    candidate: float

    @property
    def better(self) -> bool:
        """Lower FID; diversity nearer real data's 1; the rest higher. Ties are not better."""
        if self.metric == "fid":
            return self.candidate < self.baseline
        if self.metric == "diversity":
            return abs(self.candidate - 1.0) < abs(self.baseline - 1.0)
        return self.candidate > self.baseline


def check_disjoint(seeds: Sequence[int], per_digit: int) -> None:
    """Each set is the 10 * per_digit seeds from its first one on."""
    size = 10 * per_digit
    ordered = sorted(seeds)
    for first, second in itertools.pairwise(ordered):
        if second - first < size:
            raise OverlappingSeedSets(
                f"seed sets {first} and {second} overlap: each is {size} seeds "
                f"(10 x --per-digit {per_digit}), so they must lie at least that far apart"
            )


def compare(
    store: ModelStore,
    candidate: str,
    baseline: str,
    data_dir: str | Path | None,
    seeds: Sequence[int],
    evaluators: Sequence[str],
    per_digit: int,
) -> list[Comparison]:
    """One row per evaluator (each once, however often named), seed set and metric. Each
    version's samples of a set are drawn once and judged by every evaluator, as ``evaluate
    --seed S --evaluator E`` scores them."""
    check_disjoint(seeds, per_digit)
    evaluators = list(dict.fromkeys(evaluators))
    test = load_split(data_dir, "test")
    classifiers = {name: store.load_classifier(name) for name in evaluators}
    generators = {version: store.load_generator(version).model for version in (baseline, candidate)}
    rows = []
    for seed in seeds:
        scores: dict[tuple[str, str], dict[str, float]] = {}
        for version, generator in generators.items():
            fake = generate_per_digit(generator, per_digit, seed)
            for name, classifier in classifiers.items():
                scores[name, version] = headline(evaluate_samples(classifier, fake, test))
        for name in evaluators:
            before, after = scores[name, baseline], scores[name, candidate]
            rows += [Comparison(name, seed, m, before[m], after[m]) for m in HEADLINE]
    return rows


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    values = {metric: float(metrics[metric]) for metric in HEADLINE if metric in metrics}
    values["worst_digit"] = min(float(row["accuracy"]) for row in metrics["per_digit"])
    return values


def table(rows: Sequence[Comparison], candidate: str, baseline: str) -> str:
    """A Markdown table of every row, then one line per evaluator and metric: on how many of
    the sets the candidate is better."""
    lines = [
        f"| evaluator | seed | metric | {baseline} | {candidate} | change | better |",
        "| --- | ---: | --- | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {row.evaluator} | {row.seed} | {row.metric} | {row.baseline:.4f} | "
        f"{row.candidate:.4f} | {row.candidate - row.baseline:+.4f} | "
        f"{'yes' if row.better else 'no'} |"
        for row in rows
    ]
    lines.append("")
    for evaluator in dict.fromkeys(row.evaluator for row in rows):
        for metric in HEADLINE:
            of = [row for row in rows if row.evaluator == evaluator and row.metric == metric]
            wins = sum(row.better for row in of)
            lines.append(f"{evaluator} {metric}: better on {wins} of {len(of)} sets")
    return "\n".join(lines)


def as_json(rows: Sequence[Comparison]) -> list[dict[str, Any]]:
    return [{**asdict(row), "better": row.better} for row in rows]
