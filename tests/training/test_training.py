"""The training loop, checkpoint/resume, the evaluation metrics and the command line, all on the
committed MNIST subset with networks small enough to train in milliseconds per step."""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gan.networks import NUM_CLASSES, DiscriminatorConfig, twin_head
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import (
    ACTIVE_POINTER,
    CLASSIFIER_DIR,
    CLASSIFIER_WEIGHTS_FILE,
    JUDGE_DIR,
    MANIFEST_FILE,
    SAMPLES_FILE,
    WEIGHTS_FILE,
    ModelStore,
    sha256_bytes,
)
from support.models import TINY_GENERATOR, TINY_VERSION, tiny_generator
from training import cli
from training.checkpoint import CHECKPOINT_FILE, CheckpointMismatch
from training.config import (
    Loss,
    TrainConfig,
    discriminator_config,
    recipe_record,
    uses_bfloat16,
)
from training.data import Split, checksums, load_split
from training.distributed import Distributed
from training.ema import WARMUP_RULE, warmup_decay
from training.evaluate import diversity_ratio, frechet_distance, precision_recall
from training.schedule import StepSchedule
from training.train import (
    Step,
    build_networks,
    discriminator_loss,
    discriminator_step,
    generator_loss,
    generator_step,
    learning_rate_scale,
    r1_penalty,
    train,
)

TINY_DISCRIMINATOR = DiscriminatorConfig(channels=8)
LOSSES: tuple[Loss, ...] = ("bce", "hinge")


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """These networks are far too small to gain from intra-op threads, and on a busy machine
    (say, with a real training run beside the tests) extra threads make them many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def config(tmp_path: Path, mnist_dir: Path) -> TrainConfig:
    """Three steps of a tiny GAN on the fixture, everything written under tmp_path."""
    return TrainConfig(
        data_dir=str(mnist_dir),
        store=str(tmp_path / "store"),
        run_dir=str(tmp_path / "run"),
        version="v",
        steps=3,
        batch_size=16,
        generator=TINY_GENERATOR,
        discriminator=TINY_DISCRIMINATOR,
        seed=0,
        device="cpu",
        checkpoint_every=1000,
        sample_every=1000,
        log_every=1,
    )


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def weights_of(config: TrainConfig, version: str) -> dict[str, torch.Tensor]:
    return ModelStore(config.store).load_generator(version).model.state_dict()


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def differs(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(a[key], b[key]) for key in a)


# ----- the training loop -----------------------------------------------------------------------


def test_training_run_publishes_a_version(
    config: TrainConfig, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    version = train(config, progress_mode="jsonl")
    assert version == "v"
    log = events(capsys.readouterr().out)
    progress = [e for e in log if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [1, 2, 3]
    for event in progress:
        assert math.isfinite(event["loss_d"]) and math.isfinite(event["loss_g"])
        assert event["loss_d"] > 0 and event["total_steps"] == 3
    assert log[0] == {"event": "phase", "phase": "training"}
    assert log[-2:] == [
        {"event": "phase", "phase": "publishing"},  # no "evaluating": not asked for
        {"event": "exported", "step": 3, "version": "v"},
    ]

    store = ModelStore(config.store)
    manifest = store.manifest("v")
    directory = store.version_dir("v")
    assert manifest.kind == "generator"
    assert manifest.weights_sha256 == sha256_bytes((directory / WEIGHTS_FILE).read_bytes())
    assert manifest.data == {"mnist_md5": checksums(mnist_dir)}
    assert len(manifest.data["mnist_md5"]) == 4
    assert manifest.architecture == TINY_GENERATOR.to_dict()
    assert manifest.training["steps"] == 3 and manifest.training["seed"] == 0
    assert manifest.training["loss"] == "hinge"  # the recipe's (v3's)
    # The recipe's AC-GAN term is on by default, so the critic has its digit head, and its twin
    # (which trains from step 36,000 on) from the first step.
    assert manifest.training["aux_classifier_schedule"] == str(TrainConfig.aux_classifier_schedule)
    assert (
        manifest.training["discriminator_architecture"]
        == replace(TINY_DISCRIMINATOR, classifier_head=True, twin_head=True).to_dict()
    )
    assert manifest.training["twin_classifier_from"] == 36_000
    assert manifest.parent is None
    with Image.open(directory / SAMPLES_FILE) as grid:
        assert grid.size == (10 * 30 + 2, 10 * 30 + 2)
    assert (Path(config.run_dir) / CHECKPOINT_FILE).is_file()
    assert (Path(config.run_dir) / SAMPLES_FILE).is_file()
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # no staging left

    # The exported EMA generator loads and has moved away from its initialisation.
    loaded = store.load_generator("v").model
    assert differs(loaded.state_dict(), tiny_generator(config.seed).state_dict())
    z, labels = latents_for_seeds(list(range(10)), TINY_GENERATOR.latent_dim, list(range(10)))
    with torch.inference_mode():
        images = loaded(z, labels)
    assert images.shape == (10, 1, 28, 28) and bool(images.isfinite().all())


def test_a_short_run_exports_the_trained_generator_not_its_init(config: TrainConfig) -> None:
    """The EMA's decay warms up, so a few dozen steps in the export sits by the trained weights.
    With a fixed decay of 0.999 it would still be about 96% the first step's weights (0.999^39)."""
    train(replace(config, steps=40))
    checkpoint = torch.load(Path(config.run_dir) / CHECKPOINT_FILE, weights_only=True)
    trained, initial = checkpoint["generator"], tiny_generator(config.seed).state_dict()
    exported = weights_of(config, "v")
    names = [name for name, _ in tiny_generator().named_parameters()]

    def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return math.sqrt(sum(float((a[name] - b[name]).square().sum()) for name in names))

    moved = distance(trained, initial)
    assert moved > 0
    assert distance(exported, trained) < 0.25 * moved
    assert distance(exported, initial) > 0.75 * moved
    # The update count is checkpointed (a resumed run continues the schedule), and the manifest
    # records the rule.
    assert int(checkpoint["ema"]["n_averaged"]) == 40
    assert ModelStore(config.store).manifest("v").training["ema_warmup"] == WARMUP_RULE
    assert warmup_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmup_decay(0.999, 100) == pytest.approx(101 / 110)
    assert warmup_decay(0.999, 100_000) == 0.999
    assert warmup_decay(0.5, 100) == 0.5


def test_same_seed_same_weights_other_seed_other_weights(config: TrainConfig) -> None:
    root = Path(config.run_dir)
    train(replace(config, version="a", run_dir=str(root / "a")))
    train(replace(config, version="b", run_dir=str(root / "b")))
    train(replace(config, version="c", run_dir=str(root / "c"), seed=1))
    store = ModelStore(config.store)
    assert store.manifest("a").weights_sha256 == store.manifest("b").weights_sha256
    assert_same_weights(weights_of(config, "a"), weights_of(config, "b"))
    assert store.manifest("a").weights_sha256 != store.manifest("c").weights_sha256
    assert differs(weights_of(config, "a"), weights_of(config, "c"))


def test_resume_from_checkpoint_matches_a_straight_run(
    config: TrainConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(config.run_dir)
    base = replace(config, steps=4, checkpoint_every=2)
    train(replace(base, version="straight", run_dir=str(root / "straight")))

    split_dir = root / "split"
    train(replace(base, version="half", run_dir=str(split_dir), steps=2))
    assert torch.load(split_dir / CHECKPOINT_FILE, weights_only=True)["step"] == 2
    capsys.readouterr()
    train(replace(base, version="resumed", run_dir=str(split_dir), resume=True), "jsonl")
    steps = [e["step"] for e in events(capsys.readouterr().out) if e["event"] == "progress"]
    assert steps == [3, 4]  # it really continued rather than starting over
    assert torch.load(split_dir / CHECKPOINT_FILE, weights_only=True)["step"] == 4

    store = ModelStore(config.store)
    assert store.manifest("straight").weights_sha256 == store.manifest("resumed").weights_sha256
    assert_same_weights(weights_of(config, "straight"), weights_of(config, "resumed"))
    assert differs(weights_of(config, "straight"), weights_of(config, "half"))


def test_each_piece_of_a_resumed_run_is_recorded(config: TrainConfig) -> None:
    """A start or a resume is a piece of the run: the manifest lists each one's steps, what it
    ran on, and the options in which it differed from the run's recorded ones (the last
    piece's); the checkpoint carries them from one piece to the next."""
    base = replace(config, steps=4, checkpoint_every=2)
    train(replace(base, version="half", steps=2, lr_g=1e-3))
    train(replace(base, version="whole", resume=True))
    store = ModelStore(config.store)
    training = store.manifest("whole").training
    pieces = training["pieces"]
    assert [(piece["from_step"], piece["to_step"]) for piece in pieces] == [(0, 2), (2, 4)]
    assert pieces[0]["differs"] == {"steps": 2, "lr_g": 1e-3} and pieces[1]["differs"] == {}
    assert training["resumed_at_step"] == 2
    for piece in pieces:
        assert piece["recorded"] is True
        assert piece["threads"] == torch.get_num_threads() and piece["processes"] == 1
        assert piece["arithmetic"] == training["arithmetic"] and piece["torch"] == torch.__version__
        assert isinstance(piece["hardware"], str) and piece["hardware"]
    (alone,) = store.manifest("half").training["pieces"]
    assert alone == {**pieces[0], "differs": {}}  # that run's own options, as it recorded them
    state = torch.load(Path(config.run_dir) / CHECKPOINT_FILE, weights_only=True)
    assert [piece["to_step"] for piece in state["pieces"]] == [2, 4]


def test_a_checkpoint_from_before_pieces_were_recorded_says_so(config: TrainConfig) -> None:
    train(replace(config, steps=2, checkpoint_every=2))
    path = Path(config.run_dir) / CHECKPOINT_FILE
    state = torch.load(path, weights_only=True)
    del state["pieces"]
    torch.save(state, path)
    train(replace(config, version="resumed", steps=3, resume=True))
    first, last = ModelStore(config.store).manifest("resumed").training["pieces"]
    assert first == {"from_step": 0, "to_step": 2, "recorded": False}
    assert (last["from_step"], last["to_step"], last["differs"]) == (2, 3, {})


def test_resume_without_checkpoint_starts_from_scratch(config: TrainConfig) -> None:
    root = Path(config.run_dir)
    train(replace(config, version="fresh", run_dir=str(root / "fresh")))
    train(replace(config, version="resume", run_dir=str(root / "empty"), resume=True))
    store = ModelStore(config.store)
    assert store.manifest("fresh").weights_sha256 == store.manifest("resume").weights_sha256


def test_resume_refuses_a_checkpoint_of_other_networks(
    config: TrainConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    train(replace(config, version="first"))
    state = torch.load(Path(config.run_dir) / CHECKPOINT_FILE, weights_only=True)
    assert state["architectures"]["generator"] == TINY_GENERATOR.to_dict()
    other = replace(TINY_GENERATOR, conditional_norm=not TINY_GENERATOR.conditional_norm)
    with pytest.raises(CheckpointMismatch, match="conditional_norm"):
        train(replace(config, version="second", generator=other, steps=6, resume=True))
    assert [m.version for m in ModelStore(config.store).versions()] == ["first"]


@pytest.mark.parametrize("loss", LOSSES)
def test_both_losses_train(
    config: TrainConfig, loss: Loss, capsys: pytest.CaptureFixture[str]
) -> None:
    off = StepSchedule.constant(0.0)
    train(replace(config, loss=loss, steps=2, aux_classifier_schedule=off), "jsonl")  # the game
    progress = [e for e in events(capsys.readouterr().out) if e["event"] == "progress"]
    assert len(progress) == 2
    assert all(math.isfinite(e["loss_d"]) and math.isfinite(e["loss_g"]) for e in progress)
    # At initialisation the critic's scores are near 0: D loss is 2 log 2 (bce) or 2 (hinge).
    assert progress[0]["loss_d"] == pytest.approx(
        2 * math.log(2) if loss == "bce" else 2.0, abs=0.2
    )
    assert ModelStore(config.store).manifest("v").training["loss"] == loss


def test_loss_functions() -> None:
    real, fake = torch.tensor([2.0, -0.5, 0.3]), torch.tensor([-1.5, 0.7, 3.0])
    bce = F.binary_cross_entropy_with_logits
    expected_d = bce(real, torch.ones(3)) + bce(fake, torch.zeros(3))
    assert torch.allclose(discriminator_loss("bce", real, fake), expected_d)
    assert torch.allclose(generator_loss("bce", fake), bce(fake, torch.ones(3)))
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)); G maximises the critic's score.
    assert float(discriminator_loss("hinge", real, fake)) == pytest.approx(
        (0 + 1.5 + 0.7) / 3 + (0 + 1.7 + 4.0) / 3
    )
    assert float(generator_loss("hinge", fake)) == pytest.approx(-(-1.5 + 0.7 + 3.0) / 3)


# ----- evaluation metrics ----------------------------------------------------------------------


def features(count: int = 400, dim: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(
        count, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def test_frechet_distance() -> None:
    a = features()
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # A pure mean shift by s in every one of d dimensions adds exactly d * s^2.
    assert frechet_distance(a, a + 0.5) == pytest.approx(8 * 0.25, rel=1e-6)
    assert frechet_distance(a, a + 1.0) == pytest.approx(8 * 1.0, rel=1e-6)
    # Symmetric, and a scaled covariance counts too: (1 - 2)^2 per unit of variance.
    b = features(seed=1)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-6)
    centred = a - a.mean(0)
    assert frechet_distance(centred, 2 * centred) == pytest.approx(
        float(torch.cov(a.T).trace()), rel=1e-6
    )


def test_precision_recall() -> None:
    a = features()
    assert precision_recall(a, a) == (1.0, 1.0)
    far = features(seed=1) + 100
    assert precision_recall(a, far) == (0.0, 0.0)
    # Fakes collapsed into a small region of the real support: precise but with low recall.
    collapsed = a[:50] * 0.05
    precision, recall = precision_recall(a, collapsed)
    assert precision == 1.0
    assert recall < 0.1


def test_diversity_ratio(mnist_dir: Path) -> None:
    real = load_split(mnist_dir, "train")
    assert diversity_ratio(real, real) == pytest.approx(1.0, abs=0.1)
    # One fixed image per digit: no within-digit diversity at all.
    constant = Split(
        real.images[real.labels.argsort()][::20].repeat_interleave(20, 0), real.labels.sort().values
    )
    assert torch.equal(constant.labels, torch.arange(10).repeat_interleave(20))
    assert diversity_ratio(constant, real) == 0.0
    dimmed = Split((real.images // 2).to(torch.uint8), real.labels)  # half the contrast
    assert diversity_ratio(dimmed, real) == pytest.approx(0.5, abs=0.06)


# ----- command line ----------------------------------------------------------------------------


def test_cli_sample_png(tiny_store: ModelStore, tmp_path: Path) -> None:
    out = tmp_path / "out" / "grid.png"
    cli.main(
        ["sample", "--store", str(tiny_store.root), "--n", "12", "--seed", "5", "--out", str(out)]
    )
    with Image.open(out) as png:
        assert png.size == (10 * 30 + 2, 2 * 30 + 2)
        text = dict(png.text)  # type: ignore[attr-defined]
    assert text["model_version"] == TINY_VERSION and text["seed"] == "5"
    assert text["Software"] == "mnist-digit-gan"


def test_cli_sample_npz(tiny_store: ModelStore, tmp_path: Path) -> None:
    out = tmp_path / "digits.npz"
    root = str(tiny_store.root)
    cli.main(
        ["sample", "--store", root, "--version", "tiny", "--digit", "7", "--n", "6",
         "--out", str(out)]
    )  # fmt: skip
    with np.load(out) as archive:
        images, labels, seeds = archive["images"], archive["labels"], archive["seeds"]
        assert str(archive["version"]) == TINY_VERSION
    assert images.shape == (6, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [7] * 6 and seeds.tolist() == list(range(6))
    # The archive holds exactly what the stored generator makes from those seeds.
    z, want = latents_for_seeds(list(range(6)), TINY_GENERATOR.latent_dim, [7] * 6)
    with torch.inference_mode():
        expected = to_uint8(tiny_store.load_generator(TINY_VERSION).model(z, want)).numpy()
    assert np.array_equal(images, expected)

    # No --digit: each seed picks its own digit, as latents_for_seeds does.
    cli.main(["sample", "--store", root, "--n", "30", "--seed", "100", "--out", str(out)])
    with np.load(out) as archive:
        labels = archive["labels"]
        assert archive["images"].shape == (30, 28, 28)
    _, drawn = latents_for_seeds(list(range(100, 130)), TINY_GENERATOR.latent_dim, [None] * 30)
    assert labels.tolist() == drawn.tolist()
    assert len(set(labels.tolist())) > 3


def test_cli_sample_errors(tiny_store: ModelStore, tmp_path: Path) -> None:
    root = str(tiny_store.root)
    with pytest.raises(SystemExit, match=r"\.png or \.npz"):
        cli.main(["sample", "--store", root, "--out", str(tmp_path / "x.jpg")])
    with pytest.raises(SystemExit, match=r"error: .*'nope' not found"):
        cli.main(["sample", "--store", root, "--version", "nope", "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match="error: invalid version name"):
        cli.main(["sample", "--store", root, "--version", "../x", "--out", str(tmp_path / "x.png")])
    assert not list(tmp_path.glob("x.*"))


@pytest.mark.parametrize("count", ["0", "-3"])
def test_cli_sample_needs_a_positive_count(
    tiny_store: ModelStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], count: str
) -> None:
    out = tmp_path / "x.npz"
    with pytest.raises(SystemExit) as caught:
        cli.main(["sample", "--store", str(tiny_store.root), "--n", count, "--out", str(out)])
    assert caught.value.code == 2  # an argparse usage error, not a crash or an empty archive
    assert f"must be at least 1, not {count}" in capsys.readouterr().err
    assert not out.exists()


def test_cli_train_classifier_then_evaluate(
    tiny_store: ModelStore, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, data = str(tiny_store.root), str(mnist_dir)
    with pytest.raises(SystemExit, match="error: no classifier"):
        cli.main(
            ["evaluate", TINY_VERSION, "--store", root, "--data-dir", data, "--per-digit", "10"]
        )
    capsys.readouterr()

    cli.main(
        ["train-classifier", "--store", root, "--data-dir", data, "--epochs", "1",
         "--limit-samples", "128"]
    )  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"test_accuracy"} and 0.0 <= printed["test_accuracy"] <= 1.0
    classifier = tiny_store.classifier_manifest()
    assert classifier.metrics == printed
    assert classifier.data == {"mnist_md5": checksums(mnist_dir)}
    assert classifier.training["epochs"] == 1
    tiny_store.load_classifier()

    cli.main(
        ["evaluate", TINY_VERSION, "--store", root, "--data-dir", data, "--per-digit", "10",
         "--json"]
    )  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == tiny_store.manifest(TINY_VERSION).metrics
    assert {"conditional_accuracy", "fid", "precision", "recall", "diversity"} <= set(metrics)
    assert metrics["samples"] == 100
    assert metrics["classifier_sha256"] == classifier.weights_sha256
    for key in ("conditional_accuracy", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0, key
    for key in ("fid", "fid_real_floor", "diversity"):
        assert math.isfinite(metrics[key]) and metrics[key] >= 0.0, key
    # A random generator is far further from real digits than real digits are from each other.
    assert metrics["fid"] > metrics["fid_real_floor"]
    per_digit = metrics["per_digit"]
    assert [row["digit"] for row in per_digit] == list(range(10))
    for row in per_digit:
        assert 0.0 <= row["accuracy"] <= 1.0 and math.isfinite(row["fid"]) and row["fid"] >= 0
        assert math.isfinite(row["fid_real_floor"]) and row["fid_real_floor"] >= 0
    # The overall accuracy is the mean of the digits' (equal counts of each).
    mean = sum(row["accuracy"] for row in per_digit) / 10
    assert metrics["conditional_accuracy"] == pytest.approx(mean)
    # Evaluating must not alter the weights it evaluated.
    tiny_store.load_generator(TINY_VERSION)

    # Without --json: a human-readable table, and the manifest is updated again.
    cli.main(["evaluate", TINY_VERSION, "--store", root, "--data-dir", data, "--per-digit", "10"])
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["metric", "value"]
    assert "conditional_accuracy" in table and "fid_real_floor" in table
    assert ["digit", "accuracy", "FID", "floor"] in [line.split() for line in table.splitlines()]

    # Another seed set or a truncation is printed, and the manifest keeps the canonical scores.
    kept = tiny_store.manifest(TINY_VERSION).metrics
    cli.main(
        ["evaluate", TINY_VERSION, "--store", root, "--data-dir", data, "--per-digit", "10",
         "--json", "--seed", "100000", "--truncation", "0.5"]
    )  # fmt: skip
    other = json.loads(capsys.readouterr().out)
    assert other["fid"] != kept["fid"]
    assert tiny_store.manifest(TINY_VERSION).metrics == kept


def test_cli_the_independent_judge_scores_beside_the_classifier_in_the_manifest(
    tiny_store: ModelStore, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, data = str(tiny_store.root), str(mnist_dir)
    scoring = ["evaluate", TINY_VERSION, "--store", root, "--data-dir", data, "--per-digit", "10",
               "--json"]  # fmt: skip
    with pytest.raises(SystemExit, match="error: no judge"):
        cli.main([*scoring, "--evaluator", "judge"])
    training = ["train-classifier", "--store", root, "--data-dir", data, "--epochs", "1",
                "--limit-samples", "128"]  # fmt: skip
    cli.main(training)
    cli.main([*training, "--evaluator", "judge", "--seed", "1"])
    capsys.readouterr()
    judge = tiny_store.classifier_manifest(JUDGE_DIR)
    assert judge.architecture == {"name": "Judge", "feature_dim": 192}
    assert judge.training["seed"] == 1
    assert judge.weights_sha256 != tiny_store.classifier_manifest().weights_sha256

    cli.main(scoring)
    by_classifier = json.loads(capsys.readouterr().out)
    cli.main([*scoring, "--evaluator", "judge"])
    by_judge = json.loads(capsys.readouterr().out)
    assert by_judge["classifier_sha256"] == judge.weights_sha256
    assert set(by_judge) == set(by_classifier)
    assert by_judge["fid"] != by_classifier["fid"]
    # The same samples: the pixel-space diversity does not depend on who judges.
    assert by_judge["diversity"] == by_classifier["diversity"]
    # The manifest keeps the project classifier's scores, and the judge's under its name.
    assert tiny_store.manifest(TINY_VERSION).metrics == {**by_classifier, "judge": by_judge}
    # Scoring again by the classifier replaces its own scores and keeps the judge's.
    cli.main(scoring)
    assert tiny_store.manifest(TINY_VERSION).metrics == {
        **json.loads(capsys.readouterr().out),
        "judge": by_judge,
    }
    # Another seed set by the judge is printed only.
    cli.main([*scoring, "--evaluator", "judge", "--seed", "100000"])
    assert json.loads(capsys.readouterr().out)["fid"] != by_judge["fid"]
    assert tiny_store.manifest(TINY_VERSION).metrics["judge"] == by_judge

    # The real-data reference, by either evaluator: real digits against real digits score far
    # closer than a random generator's samples, and are as diverse as real digits are.
    for evaluator, by_version in (("classifier", by_classifier), ("judge", by_judge)):
        cli.main(["reference", "--store", root, "--data-dir", data, "--per-digit", "10",
                  "--evaluator", evaluator, "--json"])  # fmt: skip
        reference = json.loads(capsys.readouterr().out)
        assert reference["samples"] == 100
        assert reference["fid"] < by_version["fid"] and reference["recall"] > by_version["recall"]
        assert reference["diversity"] == pytest.approx(1.0, abs=0.2)
        assert reference["classifier_sha256"] == by_version["classifier_sha256"]
    assert tiny_store.manifest(TINY_VERSION).metrics["judge"] == by_judge
    # All of a digit's training digits when it has fewer than asked (the fixture has 20).
    cli.main(["reference", "--store", root, "--data-dir", data, "--per-digit", "50"])
    table = capsys.readouterr().out.splitlines()
    assert ["samples", "200"] in [line.split() for line in table]
    assert ["digit", "accuracy", "FID"] in [line.split() for line in table]


def test_cli_train_evaluate_activate(
    tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, data = tmp_path / "store", str(mnist_dir)
    evaluator = ["train-classifier", "--store", str(store), "--data-dir", data, "--epochs", "1",
                 "--limit-samples", "64"]  # fmt: skip
    cli.main(evaluator)
    cli.main([*evaluator, "--evaluator", "judge"])
    args = [
        "train", "--store", str(store), "--data-dir", data, "--run-dir", str(tmp_path / "run"),
        "--version", "cli", "--parent", "tiny", "--steps", "2", "--batch-size", "16",
        "--latent-dim", "8", "--embed-dim", "4", "--g-channels", "8", "--d-channels", "8",
        "--loss", "hinge", "--device", "cpu", "--progress", "jsonl", "--log-every", "1",
        "--evaluate", "--eval-per-digit", "10", "--activate",
    ]  # fmt: skip
    capsys.readouterr()
    cli.main(args)
    log = events(capsys.readouterr().out)
    assert [e["step"] for e in log if e["event"] == "progress"] == [1, 2]
    # Each phase announced once, in order; evaluation came before the version was published.
    phases = [(i, e["phase"]) for i, e in enumerate(log) if e["event"] == "phase"]
    assert [phase for _, phase in phases] == ["training", "evaluating", "publishing"]
    assert phases[0][0] == 0 and all(e["event"] != "progress" for e in log[phases[1][0] :])
    assert log[-2:] == [
        {"event": "exported", "step": 2, "version": "cli"},
        {"event": "done", "version": "cli"},
    ]
    models = ModelStore(store)
    assert models.active_version() == "cli"
    assert (store / ACTIVE_POINTER).read_text() == "cli\n"
    manifest = models.manifest("cli")
    assert manifest.parent == "tiny"
    assert manifest.architecture == TINY_GENERATOR.to_dict()
    assert manifest.training["loss"] == "hinge" and manifest.training["batch_size"] == 16
    assert manifest.metrics["samples"] == 100
    # With a judge in the store, the evaluation is also the judge's.
    judged = manifest.metrics["judge"]
    assert judged["samples"] == 100
    assert judged["classifier_sha256"] == models.classifier_manifest(JUDGE_DIR).weights_sha256
    assert judged["classifier_sha256"] != manifest.metrics["classifier_sha256"]
    assert (store / "cli" / MANIFEST_FILE).is_file() and (store / CLASSIFIER_DIR).is_dir()
    assert not [p.name for p in store.iterdir() if p.name.startswith(".")]  # no staging left
    # What was evaluated in staging is what got published: evaluating it again agrees.
    scoring = ["evaluate", "cli", "--store", str(store), "--data-dir", data, "--per-digit", "10",
               "--json"]  # fmt: skip
    cli.main(scoring)
    cli.main([*scoring, "--evaluator", "judge"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {**printed[0], "judge": printed[1]} == manifest.metrics

    # A missing data directory is a clean error, not a traceback.
    with pytest.raises(SystemExit, match=r"error: .*file missing"):
        args[args.index("--data-dir") + 1] = str(tmp_path / "nowhere")
        args[args.index("--version") + 1] = "cli-2"
        cli.main(args)
    # A taken version name or a store without a classifier is refused before training.
    args[args.index("--version") + 1] = "cli"
    with pytest.raises(SystemExit, match="error: model version 'cli' already exists"):
        cli.main(args)
    # A judge whose weights were altered, likewise.
    args[args.index("--version") + 1] = "cli-3"
    (store / JUDGE_DIR / CLASSIFIER_WEIGHTS_FILE).write_bytes(b"not the judge's weights")
    with pytest.raises(SystemExit, match=r"error: sha256 mismatch for .*judge"):
        cli.main(args)
    shutil.rmtree(store / CLASSIFIER_DIR)
    with pytest.raises(SystemExit, match="error: no classifier"):
        cli.main(args)
    assert [m.version for m in models.versions()] == ["cli"]


def test_cli_activate(tiny_store: ModelStore, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tiny_store.root)
    with pytest.raises(SystemExit, match=r"error: .*not found"):
        cli.main(["activate", "--store", root, "other"])
    assert tiny_store.active_version() == TINY_VERSION
    cli.main(["activate", "--store", root, TINY_VERSION])
    assert capsys.readouterr().out.strip() == f"active version: {TINY_VERSION}"


def test_png_samples_are_decodable(tiny_store: ModelStore, tmp_path: Path) -> None:
    out = tmp_path / "one.png"
    cli.main(
        ["sample", "--store", str(tiny_store.root), "--n", "1", "--digit", "0", "--out", str(out)]
    )
    pixels = np.asarray(Image.open(io.BytesIO(out.read_bytes())))
    assert pixels.shape == (32, 32) and pixels.dtype == np.uint8


def test_augmentation_r1_and_learning_rate_decay_train(
    config: TrainConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    levers = replace(
        config,
        steps=4,
        augment="translation,cutout",
        r1_gamma=1.0,
        r1_every=2,
        lr_decay_start=2,
    )
    train(levers, "jsonl")
    progress = [e for e in events(capsys.readouterr().out) if e["event"] == "progress"]
    assert len(progress) == 4
    assert all(math.isfinite(e["loss_d"]) and math.isfinite(e["loss_g"]) for e in progress)
    manifest = ModelStore(config.store).manifest("v")
    assert manifest.training["augment"] == "translation,cutout"
    assert manifest.training["r1_gamma"] == 1.0 and manifest.training["lr_decay_start"] == 2
    assert {"augment", "r1_gamma", "r1_every", "lr_decay_start"} <= set(
        manifest.training["recipe"]["changed"]
    )


def test_bfloat16_precision_trains_on_the_cpu_in_other_arithmetic(
    config: TrainConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """--precision bfloat16 runs the CPU's forward passes under autocast (other weights than a
    float32 run's, from the same seed), keeps the exported weights float32 and finite, and is
    recorded as a change of the recipe, with the arithmetic it meant."""
    train(replace(config, precision="float32"), "none")
    float32 = weights_of(config, "v")
    bfloat16 = replace(config, version="v-bf16", precision="bfloat16")
    train(bfloat16, "jsonl")
    progress = [e for e in events(capsys.readouterr().out) if e["event"] == "progress"]
    assert all(math.isfinite(e["loss_d"]) and math.isfinite(e["loss_g"]) for e in progress)
    weights = weights_of(bfloat16, "v-bf16")
    floats = [w for w in weights.values() if w.is_floating_point()]  # not BN's step counters
    assert floats and all(w.dtype == torch.float32 and bool(w.isfinite().all()) for w in floats)
    assert differs(weights, float32)
    manifest = ModelStore(config.store).manifest("v-bf16")
    assert manifest.training["precision"] == "bfloat16"
    assert manifest.training["arithmetic"] == "bfloat16"
    assert "precision" in manifest.training["recipe"]["changed"]
    assert ModelStore(config.store).manifest("v").training["arithmetic"] == "float32"


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bfloat16_where_the_hardware_has_it(
    config: TrainConfig, monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    """auto: bfloat16 on CUDA, and on a CPU only with native bfloat16 (AVX512-BF16 or AMX),
    where it is faster; elsewhere the CPU would emulate it, slower than float32."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert uses_bfloat16(config, cpu) is native and uses_bfloat16(config, cuda)
    assert uses_bfloat16(replace(config, precision="bfloat16"), cpu)
    assert not uses_bfloat16(replace(config, precision="float32"), cuda)


def test_r1_penalty_is_the_squared_gradient_norm() -> None:
    images = torch.randn(5, 1, 2, 2, requires_grad=True)
    score = 3.0 * images.sum(dim=(1, 2, 3))  # gradient 3 at each of 4 pixels: |g|^2 = 36
    assert float(r1_penalty(score, images)) == pytest.approx(36.0)


def test_learning_rate_decays_linearly_to_zero_from_its_start(config: TrainConfig) -> None:
    decaying = replace(config, steps=10, lr_decay_start=6)
    assert [learning_rate_scale(decaying, step) for step in (0, 5, 6, 8, 9)] == [
        1.0, 1.0, 1.0, 0.5, 0.25,
    ]  # fmt: skip
    assert learning_rate_scale(config, 2) == 1.0  # no decay unless asked


def test_learning_rates_restart_and_decay_again(config: TrainConfig) -> None:
    """Each restart brings the rates back to full and they fall to 0 at the next restart or the
    last step; a restart at or after the last step does not happen (the decay still ends at 0)."""
    cycles = replace(config, steps=20, lr_decay_start=6, lr_restarts=(10, 16))
    scales = [learning_rate_scale(cycles, step) for step in (5, 6, 8, 9, 10, 13, 16, 18, 19)]
    assert scales == [1.0, 1.0, 0.5, 0.25, 1.0, 0.5, 1.0, 0.5, 0.25]
    cut = replace(cycles, steps=12)
    assert [learning_rate_scale(cut, step) for step in (9, 10, 11)] == [0.25, 1.0, 0.5]
    assert learning_rate_scale(replace(cycles, lr_decay_start=None), 13) == 1.0


def test_the_cli_refuses_restarts_out_of_order_or_before_the_decay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", "--run-dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="must come after --lr-decay-start 26000"):
        cli.main([*argv, "--lr-restarts", "20000"])
    with pytest.raises(SystemExit) as usage:
        cli.main([*argv, "--lr-restarts", "40000,38000"])
    assert usage.value.code == 2 and "restart steps must increase" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# ----- TAC-GAN's twin classifier ---------------------------------------------------------------


def test_the_twin_classifier_trains_and_is_recorded(config: TrainConfig) -> None:
    """--twin-classifier-from 0 builds the critic's second digit head, trains it (its weights
    move), records it in the manifest and the checkpoint, and a resume must ask for the same
    critic."""
    twin = replace(config, steps=2, checkpoint_every=2, twin_classifier_from=0)
    path = Path(config.run_dir) / CHECKPOINT_FILE
    train(replace(twin, version="early"))
    early = torch.load(path, weights_only=True)["discriminator"]["classify_twin.weight"]
    train(replace(twin, steps=4, resume=True))
    state = torch.load(path, weights_only=True)
    assert state["architectures"]["discriminator"]["twin_head"] is True
    assert not torch.equal(state["discriminator"]["classify_twin.weight"], early)
    training = ModelStore(config.store).manifest("v").training
    assert training["twin_classifier_from"] == 0
    assert training["discriminator_architecture"]["twin_head"] is True
    assert "twin_classifier_from" in training["recipe"]["changed"]
    without = replace(config, version="second", steps=6, resume=True, twin_classifier_from=None)
    with pytest.raises(CheckpointMismatch, match="twin_head"):
        train(without)


def test_a_late_twin_is_the_run_without_one_until_its_start(config: TrainConfig) -> None:
    """--twin-classifier-from 2: steps 0 and 1 are those of the run without a twin (the same
    generator, bit for bit), the head keeps its initial weights and Adam holds no state for it;
    from step 2 it trains, and a run resumed across its start is the straight run."""
    late = replace(config, steps=4, checkpoint_every=2, twin_classifier_from=2)
    root = Path(config.run_dir)
    config = replace(config, twin_classifier_from=None)
    train(replace(config, steps=2, version="plain", run_dir=str(root / "plain")))
    train(replace(late, steps=2, version="before", run_dir=str(root / "split")))
    assert_same_weights(weights_of(config, "plain"), weights_of(config, "before"))
    state = torch.load(root / "split" / CHECKPOINT_FILE, weights_only=True)
    init = twin_head(TINY_DISCRIMINATOR.channels * 7 * 7)
    assert torch.equal(state["discriminator"]["classify_twin.weight"], init.weight.detach())
    assert list(state["discriminator"])[-2:] == ["classify_twin.weight", "classify_twin.bias"]
    assert adam_state_of(state) == parameter_indices(state)[:-2]  # the twin's are the last two

    train(replace(late, version="resumed", run_dir=str(root / "split"), resume=True))
    state = torch.load(root / "split" / CHECKPOINT_FILE, weights_only=True)
    assert not torch.equal(state["discriminator"]["classify_twin.weight"], init.weight.detach())
    assert adam_state_of(state) == parameter_indices(state)
    train(replace(late, version="straight", run_dir=str(root / "straight")))
    assert_same_weights(weights_of(config, "straight"), weights_of(config, "resumed"))
    train(replace(config, steps=4, version="no-twin", run_dir=str(root / "no-twin")))
    assert differs(weights_of(config, "straight"), weights_of(config, "no-twin"))


@pytest.mark.parametrize("twin_from", [2, 3])
def test_a_twin_joins_a_run_without_one_at_its_checkpoint(
    config: TrainConfig, twin_from: int
) -> None:
    """A checkpoint of the run without a twin (step 2), resumed with the twin from its step or
    later, continues as the late twin's run: generator, critic and Adam's state bit for bit. A
    twin from before the checkpoint's step is refused: that run trained it already."""
    root = Path(config.run_dir)
    plain = replace(
        config, steps=2, checkpoint_every=2, run_dir=str(root / "graft"), twin_classifier_from=None
    )
    train(replace(plain, version="plain"))
    late = replace(plain, steps=4, twin_classifier_from=twin_from, resume=True)
    with pytest.raises(CheckpointMismatch, match=r"from step 2 on \(--twin-classifier-from >= 2"):
        train(replace(late, version="early", twin_classifier_from=1))
    train(replace(late, version="grafted"))
    straight = replace(late, version="straight", run_dir=str(root / "straight"), resume=False)
    train(straight)
    assert_same_weights(weights_of(config, "straight"), weights_of(config, "grafted"))
    train(replace(plain, version="no-twin", steps=4, run_dir=str(root / "no-twin")))
    assert differs(weights_of(config, "grafted"), weights_of(config, "no-twin"))  # it trained
    grafted = torch.load(root / "graft" / CHECKPOINT_FILE, weights_only=True)
    expected = torch.load(root / "straight" / CHECKPOINT_FILE, weights_only=True)
    assert grafted["architectures"] == expected["architectures"]
    assert_same_weights(grafted["discriminator"], expected["discriminator"])
    assert adam_state_of(grafted) == parameter_indices(grafted) == parameter_indices(expected)
    for index, moments in expected["opt_d"]["state"].items():
        assert_same_weights(grafted["opt_d"]["state"][index], moments)


def adam_state_of(checkpoint: dict[str, Any]) -> list[int]:
    """The critic's parameters (by index) that its Adam has stepped."""
    return sorted(checkpoint["opt_d"]["state"])


def parameter_indices(checkpoint: dict[str, Any]) -> list[int]:
    return sorted(checkpoint["opt_d"]["param_groups"][0]["params"])


def test_a_checkpoint_from_before_the_twin_resumes(config: TrainConfig) -> None:
    """Checkpoints written before the critic's config had a twin_head field describe a critic
    without one: they resume as such, not as a mismatch."""
    config = replace(config, twin_classifier_from=None)
    train(replace(config, steps=2, checkpoint_every=2))
    path = Path(config.run_dir) / CHECKPOINT_FILE
    state = torch.load(path, weights_only=True)
    del state["architectures"]["discriminator"]["twin_head"]
    torch.save(state, path)
    train(replace(config, version="resumed", steps=3, resume=True))
    assert ModelStore(config.store).manifest("resumed").training["resumed_at_step"] == 2


def test_the_twin_cancels_the_ac_gan_term_for_the_generator(config: TrainConfig) -> None:
    """The critic learns the twin head on fakes (its loss adds the twin's cross-entropy); the
    generator's loss subtracts it, with the AC-GAN weight of the step (TAC-GAN's signs)."""
    torch.manual_seed(0)
    twin = replace(config, twin_classifier_from=0, mode_seeking=0.0, precision="float32")
    nets = build_networks(twin, torch.device("cpu"), Distributed(rank=0, world_size=1))
    nets.discriminator.eval()  # no power iteration: the same critic on every call
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    real_labels = torch.arange(8) % NUM_CLASSES
    step = Step(
        torch.randn(8, TINY_GENERATOR.latent_dim),
        torch.arange(8) % NUM_CLASSES,
        aux_weight=0.5,
        twin_on=True,
        r1_weight=0.0,
        policy=(),
    )
    with torch.no_grad():
        fake = nets.g_train(step.z, step.fake_labels)
        on_real = nets.discriminator(real, real_labels)
        on_fake = nets.discriminator(fake, step.fake_labels)
    assert on_real.logits is not None and on_fake.twin_logits is not None
    expected_d = (
        discriminator_loss("hinge", on_real.score, on_fake.score)
        + 0.5 * F.cross_entropy(on_real.logits, real_labels)
        + 0.5 * F.cross_entropy(on_fake.twin_logits, step.fake_labels)
    )
    loss_d, fake_for_g = discriminator_step(twin, nets, real, real_labels, step)
    assert float(loss_d.detach()) == pytest.approx(float(expected_d), rel=1e-5)
    with torch.no_grad():
        on_fake = nets.discriminator(fake_for_g, step.fake_labels)  # the updated critic
    assert on_fake.logits is not None and on_fake.twin_logits is not None
    expected_g = (
        generator_loss("hinge", on_fake.score)
        + 0.5 * F.cross_entropy(on_fake.logits, step.fake_labels)
        - 0.5 * F.cross_entropy(on_fake.twin_logits, step.fake_labels)
    )
    loss_g = generator_step(twin, nets, fake_for_g, step)
    assert float(loss_g.detach()) == pytest.approx(float(expected_g), rel=1e-5)


def test_the_twin_needs_the_ac_gan_term(tmp_path: Path, mnist_dir: Path) -> None:
    argv = ["train", "--data-dir", str(mnist_dir), "--run-dir", str(tmp_path / "run")]
    with pytest.raises(SystemExit, match="twin-classifier-from needs the AC-GAN term"):
        cli.main([*argv, "--twin-classifier-from", "0", "--aux-classifier", "0"])
    assert not (tmp_path / "run").exists()
    # The recipe's twin, not asked for, goes with the term: a run without it has no twin.
    parser = cli.build_parser()
    assert cli.train_config(parser.parse_args(argv)).twin_classifier_from == 36_000
    for off in (["--aux-classifier", "0"], ["--aux-classifier-schedule", "0:0,10:0"]):
        config = cli.train_config(parser.parse_args([*argv, *off]))
        assert config.twin_classifier_from is None
        assert not discriminator_config(config).twin_head
        assert "twin_classifier_from" in recipe_record(config)["changed"]
