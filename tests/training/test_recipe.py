"""The shipped recipe as the defaults, the AC-GAN weight's schedule, the throughput measurement
and the sample grid's fixed latents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.imaging import tile
from gan.networks import NUM_CLASSES, DiscriminatorConfig, GeneratorConfig
from gan.sampling import to_uint8
from gan.store import SAMPLES_FILE, ModelStore
from support.models import TINY_GENERATOR
from training import cli
from training.config import RECIPE, TrainConfig, recipe_record
from training.export import GRID_SEED
from training.schedule import StepSchedule
from training.train import train

SHIPPED = Path(__file__).parents[2] / "model_store" / "mnist-cgan-v6" / "manifest.json"
TINY = ["--latent-dim", "8", "--embed-dim", "4", "--g-channels", "8", "--d-channels", "8"]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def config(tmp_path: Path, mnist_dir: Path) -> TrainConfig:
    return TrainConfig(
        data_dir=str(mnist_dir),
        store=str(tmp_path / "store"),
        run_dir=str(tmp_path / "run"),
        steps=4,
        batch_size=16,
        generator=TINY_GENERATOR,
        discriminator=DiscriminatorConfig(channels=8),
        device="cpu",
        checkpoint_every=2,
        sample_every=1000,
    )


def test_the_defaults_are_the_shipped_models_recipe(mnist_dir: Path) -> None:
    """mnist-cgan-v6's recipe (v2's four phases as one schedule, AC 0.1 to 18,000 steps, 0.05 to
    22,000, 0.075 to 26,000, 0.125 to 36,000, then 0.25; the hinge loss; 46,000 steps, the rates
    decaying from 26,000 to 0 at 36,000, then restarting and decaying to 0 again; TAC-GAN's twin
    from that restart on; a 256-channel critic; a 128-wide latent; bfloat16 where the hardware
    has it; everything else the defaults) is what a bare command trains. v6 was trained by one
    command of the code of its day, whose recipe was v5's: its manifest names that recipe and
    the two fields it changed, which are today's defaults."""
    shipped = json.loads(SHIPPED.read_text())
    default = TrainConfig()
    record = shipped["training"]
    for name in ("steps", "batch_size", "loss", "lr_g", "lr_d", "beta1", "beta2", "ema_decay",
                 "mode_seeking", "seed", "precision"):  # fmt: skip
        assert getattr(default, name) == record[name], name
    assert default.generator == GeneratorConfig.from_dict(shipped["architecture"])
    assert replace(
        default.discriminator, classifier_head=True, twin_head=True
    ) == DiscriminatorConfig.from_dict(record["discriminator_architecture"])
    schedule = default.aux_classifier_schedule
    assert [schedule.at(step) for step in (0, 11_999, 12_000, 17_999)] == [0.1] * 4
    assert [schedule.at(step) for step in (18_000, 21_999)] == [0.05] * 2
    assert [schedule.at(step) for step in (22_000, 25_999, 26_000, 35_999)] == [0.075] * 2 + [
        0.125
    ] * 2
    assert [schedule.at(step) for step in (36_000, 45_999)] == [0.25] * 2
    assert default.discriminator.channels == 256 and record["arithmetic"] == "bfloat16"
    assert str(schedule) == record["aux_classifier_schedule"]
    assert record["recipe"] == {
        "name": "mnist-cgan-v5",
        "changed": ["aux_classifier_schedule", "twin_classifier_from"],
    }
    assert RECIPE == "mnist-cgan-v6" == shipped["version"]
    for name in ("augment", "r1_gamma", "r1_every", "lr_decay_start"):  # the decay on, others off
        assert getattr(default, name) == record[name], name
    assert default.lr_decay_start == 26_000 and default.augment == "" and default.r1_gamma == 0
    assert default.lr_restarts == (36_000,) and record["lr_restarts"] == [36_000]
    assert default.generator.latent_dim == 128 and default.steps == 46_000
    assert default.twin_classifier_from == 36_000 == record["twin_classifier_from"]

    # A bare command, or one giving only the steps or where files go, trains that recipe.
    parser = cli.build_parser()
    bare = cli.train_config(parser.parse_args(["train", "--data-dir", str(mnist_dir)]))
    assert bare == replace(default, data_dir=str(mnist_dir))
    assert recipe_record(bare) == {"name": RECIPE, "changed": []}
    shorter = cli.train_config(parser.parse_args(["train", "--steps", "2000", "--store", "s"]))
    assert shorter.aux_classifier_schedule == schedule
    assert recipe_record(shorter) == {"name": RECIPE, "changed": ["steps"]}
    never = cli.train_config(parser.parse_args(["train", "--lr-decay-start", "none"]))
    assert never.lr_decay_start is None
    assert recipe_record(never) == {"name": RECIPE, "changed": ["lr_decay_start"]}
    once = cli.train_config(parser.parse_args(["train", "--lr-restarts", "none"]))
    assert once.lr_restarts == () and recipe_record(once)["changed"] == ["lr_restarts"]
    defaults = vars(parser.parse_args(["train"]))
    assert defaults["aux_classifier_schedule"] == (
        "0:0.1,18000:0.05,22000:0.075,26000:0.125,36000:0.25"
    )
    assert defaults["twin_classifier_from"] == 36_000
    assert defaults["d_channels"] == 256 and defaults["latent_dim"] == 128
    assert defaults["lr_restarts"] == "36000"
    assert defaults["aux_classifier"] is None


@pytest.mark.parametrize(
    ("text", "points", "canonical"),
    [
        ("0:0.1,18000:0.05,22000:0.075", ((0, 0.1), (18000, 0.05), (22000, 0.075)), None),
        (" 0 : 1 , 10:0 ", ((0, 1.0), (10, 0.0)), "0:1.0,10:0.0"),
        ("0.25", ((0, 0.25),), "0:0.25"),
        ("0:1e-3", ((0, 0.001),), "0:0.001"),
    ],
)
def test_schedule_syntax(text: str, points: tuple[tuple[int, float], ...], canonical: str) -> None:
    schedule = StepSchedule.parse(text)
    assert schedule.points == points
    assert str(schedule) == (canonical or text)
    assert StepSchedule.parse(str(schedule)) == schedule


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a number"),
        ("5:0.1", "starts at step 5, not 0"),
        ("0:0.1,10:0.2,10:0.3", "step 10 follows step 10"),
        ("0:0.1,10:-1", "value -1.0 is not a finite number >= 0"),
        ("0:nan", "not a finite number"),
        ("0:inf", "not a finite number"),
        ("0:x", "'x' is not a number"),
        ("a:0.1", "step 'a' is not an integer"),
        ("0:0.1,,5:1", "item '' is not STEP:VALUE"),
        ("0:0.1;5:1", "is not a number"),
    ],
)
def test_schedule_errors_say_what_is_wrong(
    text: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError, match=problem):
        StepSchedule.parse(text)
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(["train", "--aux-classifier-schedule", text])
    assert caught.value.code == 2
    error = capsys.readouterr().err
    assert "--aux-classifier-schedule" in error and problem.split("'")[0] in error


def test_constant_weight_and_schedule_exclude_each_other(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli.build_parser()
    constant = cli.train_config(parser.parse_args(["train", "--aux-classifier", "0.3"]))
    assert constant.aux_classifier_schedule == StepSchedule.constant(0.3)
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--aux-classifier", "0.3", "--aux-classifier-schedule", "0.1"])
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--aux-classifier", "-1"])
    assert "not a finite number >= 0" in capsys.readouterr().err


def test_one_scheduled_run_is_the_manually_resumed_phases(config: TrainConfig) -> None:
    """What the shipped model needed: phases resumed with a new AC weight each time. One run
    with the schedule trains exactly the same weights."""
    root = Path(config.run_dir)

    def run(version: str, directory: str, schedule: str, **changes: object) -> None:
        ac = StepSchedule.parse(schedule)
        train(replace(config, version=version, run_dir=str(root / directory),
                      aux_classifier_schedule=ac, **changes))  # type: ignore[arg-type]  # fmt: skip

    run("one", "one", "0:0.5,2:0.25")
    run("phase-1", "phases", "0.5", steps=2)
    run("phase-2", "phases", "0.25", resume=True)
    run("flat", "flat", "0.5")
    store = ModelStore(config.store)
    assert store.manifest("one").weights_sha256 == store.manifest("phase-2").weights_sha256
    assert store.manifest("one").weights_sha256 != store.manifest("flat").weights_sha256
    record = store.manifest("one").training
    assert record["aux_classifier_schedule"] == "0:0.5,2:0.25"
    assert record["recipe"] == {
        "name": RECIPE,
        "changed": ["steps", "batch_size", "aux_classifier_schedule", "generator", "discriminator"],
    }
    assert record["discriminator_architecture"]["classifier_head"] is True
    assert store.manifest("phase-2").training["resumed_at_step"] == 2


def test_the_sample_grid_shows_fixed_latents_row_by_digit(config: TrainConfig) -> None:
    """Two versions of one latent size show the same latents in the same places: row d is
    digit d, the 100 latents drawn in order from one generator seeded with GRID_SEED."""
    train(replace(config, version="v", steps=1))
    store = ModelStore(config.store)
    model = store.load_generator("v").model
    rng = torch.Generator().manual_seed(GRID_SEED)
    z = torch.randn(100, TINY_GENERATOR.latent_dim, generator=rng)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(10)
    with torch.inference_mode():
        expected = tile(to_uint8(model(z, labels)).numpy(), columns=10)
    with Image.open(store.version_dir("v") / SAMPLES_FILE) as grid:
        assert np.array_equal(np.asarray(grid), expected)


def test_speed_prints_images_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["speed", "--batch-size", "8", *TINY, "--device", "cpu", "--seconds", "0.2",
              "--steps", "500"])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["images_per_s"] > 0 and result["batch_size"] == 8
    assert result["device"] == "cpu" and result["timed_steps"] >= 3
    assert result["timed_s"] >= 0.2
    # Both numbers are printed rounded to 0.1: a fast machine's 3.75 s estimate prints as 3.8.
    assert result["estimated_training_s"] == pytest.approx(
        500 * 8 / result["images_per_s"], rel=0.01, abs=0.05
    )
    with pytest.raises(SystemExit):
        cli.main(["speed", "--seconds", "0"])


def test_v5s_recipe_is_todays_command_without_the_twin() -> None:
    """training/README.md: today's command with ``--twin-classifier-from none`` and v5's AC-GAN
    schedule trains mnist-cgan-v5's recipe, every field its manifest records."""
    parent = json.loads((SHIPPED.parents[1] / "mnist-cgan-v5" / "manifest.json").read_text())
    argv = ["train", "--twin-classifier-from", "none",
            "--aux-classifier-schedule", "0:0.1,18000:0.05,22000:0.075,26000:0.125"]  # fmt: skip
    config = cli.train_config(cli.build_parser().parse_args(argv))
    record = parent["training"]
    for name in ("steps", "batch_size", "loss", "lr_g", "lr_d", "beta1", "beta2", "ema_decay",
                 "mode_seeking", "augment", "r1_gamma", "r1_every", "lr_decay_start", "precision",
                 "seed"):  # fmt: skip
        assert getattr(config, name) == record[name], name
    assert str(config.aux_classifier_schedule) == record["aux_classifier_schedule"]
    assert list(config.lr_restarts) == record["lr_restarts"]
    assert config.twin_classifier_from is None and record["twin_classifier"] is False
    assert config.generator == GeneratorConfig.from_dict(parent["architecture"])
    assert replace(config.discriminator, classifier_head=True) == DiscriminatorConfig.from_dict(
        record["discriminator_architecture"]
    )
