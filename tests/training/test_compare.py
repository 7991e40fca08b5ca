"""``python -m training compare``: two versions scored as ``evaluate --seed`` scores them, on every
seed set by every evaluator, and on how many sets the candidate is better."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from gan.networks import Judge
from gan.store import JUDGE_DIR, ModelStore
from support.jobs import add_classifier, publish_tiny
from support.models import TINY_VERSION, evaluator_manifest
from training import cli
from training.compare import HEADLINE, Comparison

OTHER = "other"


@pytest.fixture
def store(tiny_store: ModelStore) -> ModelStore:
    """Two tiny random generators, the classifier and the judge."""
    publish_tiny(tiny_store, OTHER, seed=1)
    add_classifier(tiny_store)
    torch.manual_seed(1)
    tiny_store.publish(evaluator_manifest(JUDGE_DIR), Judge().state_dict())
    return tiny_store


def run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    capsys.readouterr()
    cli.main([*argv, "--json"])
    return json.loads(capsys.readouterr().out)


def test_each_row_is_what_evaluate_scores_for_that_seed_and_evaluator(
    store: ModelStore, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--store", str(store.root), "--data-dir", str(mnist_dir), "--per-digit", "10"]
    before = {m.version: m.metrics for m in store.versions()}
    rows = run_json(capsys, ["compare", OTHER, TINY_VERSION, *where, "--seeds", "0,100"])
    assert {m.version: m.metrics for m in store.versions()} == before  # it writes nothing
    assert len(rows) == 2 * 2 * len(HEADLINE)  # evaluators x seed sets x metrics
    assert {(row["evaluator"], row["seed"]) for row in rows} == {
        (evaluator, seed) for evaluator in ("classifier", JUDGE_DIR) for seed in (0, 100)
    }
    for evaluator in ("classifier", JUDGE_DIR):
        for seed in (0, 100):
            scoring = [*where, "--seed", str(seed), "--evaluator", evaluator]
            of_set = {
                row["metric"]: row
                for row in rows
                if row["evaluator"] == evaluator and row["seed"] == seed
            }
            for side, version in (("candidate", OTHER), ("baseline", TINY_VERSION)):
                scored = run_json(capsys, ["evaluate", version, *scoring])
                worst = min(digit["accuracy"] for digit in scored["per_digit"])
                expected = {**{m: scored[m] for m in HEADLINE if m in scored}, "worst_digit": worst}
                assert {m: row[side] for m, row in of_set.items()} == expected
            for metric, row in of_set.items():
                change = row["candidate"] - row["baseline"]
                if metric == "diversity":
                    change = abs(row["baseline"] - 1) - abs(row["candidate"] - 1)
                assert row["better"] is ((-change if metric == "fid" else change) > 0), row


def test_a_version_against_itself_is_better_nowhere(
    store: ModelStore, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.main(
        ["compare", OTHER, OTHER, "--store", str(store.root), "--data-dir", str(mnist_dir),
         "--per-digit", "10", "--seeds", "0,100", "--evaluator", "judge"]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("|")[1:-1] == [
        " evaluator ", " seed ", " metric ", f" {OTHER} ", f" {OTHER} ", " change ", " better ",
    ]  # fmt: skip
    body = [line.split("|")[1:-1] for line in lines[2:] if line.startswith("|")]
    assert len(body) == 2 * len(HEADLINE) and {cells[0].strip() for cells in body} == {"judge"}
    assert all(cells[5].strip() == "+0.0000" and cells[6].strip() == "no" for cells in body)
    summary = [line for line in lines if line.startswith("judge ")]
    assert summary == [f"judge {metric}: better on 0 of 2 sets" for metric in HEADLINE]


def test_better_means_lower_fid_diversity_nearer_one_and_higher_else() -> None:
    def better(metric: str, baseline: float, candidate: float) -> bool:
        return Comparison("classifier", 0, metric, baseline, candidate).better

    assert better("fid", 8.0, 7.0) and not better("fid", 7.0, 8.0)
    assert better("diversity", 1.10, 0.95) and not better("diversity", 0.98, 1.05)
    assert better("recall", 0.80, 0.82) and not better("precision", 0.78, 0.77)
    assert not better("conditional_accuracy", 0.99, 0.99)  # a tie is not better


def test_the_judge_is_compared_only_where_the_store_has_one(
    tiny_store: ModelStore, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["compare", TINY_VERSION, TINY_VERSION, "--store", str(tiny_store.root),
            "--data-dir", str(mnist_dir), "--per-digit", "10", "--seeds", "0"]  # fmt: skip
    with pytest.raises(SystemExit, match="error: no classifier"):  # never an empty comparison
        cli.main(argv)
    add_classifier(tiny_store)
    rows = run_json(capsys, argv)
    assert {row["evaluator"] for row in rows} == {"classifier"} and len(rows) == len(HEADLINE)
    with pytest.raises(SystemExit, match="error: no judge"):
        cli.main([*argv, "--evaluator", "judge"])
    twice = run_json(capsys, [*argv, "--evaluator", "classifier", "--evaluator", "classifier"])
    assert twice == rows  # each evaluator once, however often it is named


@pytest.mark.parametrize(
    ("seeds", "message"),
    [("0,50", "seed sets 0 and 50 overlap: each is 100 seeds"), ("200,100,150", "100 and 150")],
)
def test_overlapping_seed_sets_are_refused(
    store: ModelStore, mnist_dir: Path, seeds: str, message: str
) -> None:
    with pytest.raises(SystemExit, match=message):
        cli.main(
            ["compare", OTHER, TINY_VERSION, "--store", str(store.root), "--data-dir",
             str(mnist_dir), "--per-digit", "10", "--seeds", seeds]
        )  # fmt: skip


@pytest.mark.parametrize(
    ("seeds", "message"),
    [
        ("0,x", "invalid seed_list value: '0,x'"),
        ("0,0", "distinct, not '0,0'"),
        ("-1", "must be at least 0, not -1"),
    ],
)
def test_seed_lists_are_checked_as_they_are_parsed(
    store: ModelStore, seeds: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["compare", OTHER, TINY_VERSION, "--store", str(store.root), "--seeds", seeds])
    assert usage.value.code == 2 and message in capsys.readouterr().err


def test_an_unknown_version_lists_the_known_ones(store: ModelStore) -> None:
    with pytest.raises(SystemExit, match=f"known: .*{OTHER}"):
        cli.main(["compare", "nope", TINY_VERSION, "--store", str(store.root)])
