"""The training command line as a newcomer meets it: every option of every command explains itself
and shows its default, the descriptions are plain text, an unknown version is answered with the
versions the store has, and missing data with the command that fetches it, before any training."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gan.store import ModelStore
from gan.testing import publish_random_generator
from support.models import TINY_GENERATOR
from training import cli
from training.config import TrainConfig
from training.data import DATA_DIR_ENV, SPLIT_FILES

COMMANDS = [
    *["train", "speed", "train-classifier", "evaluate", "reference", "compare", "sample"],
    *["activate", "download"],
]


def commands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.build_parser()
    (choices,) = [
        action.choices
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert isinstance(choices, dict)
    return choices


def rendered(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """One option's entry in the parser's --help, on one line."""
    formatter = parser.formatter_class(prog=parser.prog)
    formatter.add_argument(action)
    return " ".join(formatter.format_help().split())


def help_output(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_every_command_is_covered() -> None:
    assert sorted(commands()) == sorted(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_has_help(name: str) -> None:
    parser = commands()[name]
    assert parser.description
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, (name, action.dest)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_shows_its_default(name: str) -> None:
    """A default is printed as it is, except None, which the help says in words; a flag (off
    unless given) and a required option have none to show."""
    parser = commands()[name]
    for action in parser._actions:
        text = rendered(parser, action)
        assert "(default: None)" not in text and "(default: False)" not in text, text
        flag = action.default is False or action.default == argparse.SUPPRESS
        if flag or action.required or not action.option_strings:
            continue
        assert "(default: " in text, text
        if action.default is not None:
            assert f"{action.default})" in text, text


@pytest.mark.parametrize("argv", [[], *([name] for name in COMMANDS)])
def test_descriptions_are_plain_text(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    text = help_output([*argv, "--help"], capsys)
    assert "``" not in text and ":class:" not in text, text
    if argv:
        description = commands()[argv[0]].description
        assert description is not None and len(description) < 400


def test_train_help(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_output(["train", "--help"], capsys)
    for expected in (
        f"--steps N total steps (a --resume run stops at this step too) "
        f"(default: {TrainConfig.steps})",
        f"--batch-size N images per step, per process under torchrun "
        f"(default: {TrainConfig.batch_size})",
        f"--lr-g LR_G Adam learning rate of the generator (default: {TrainConfig.lr_g})",
        "--data-dir DIR directory of the MNIST IDX files (default: $MNIST_DATA_DIR)",
        "(default: the shipped recipe's, 0:0.1,18000:0.05,22000:0.075,26000:0.125,36000:0.25)",
        "--version NAME the new version's name (default: one from the time)",
    ):
        assert expected in text


def test_train_defaults_are_the_recipe() -> None:
    """The help changed, not the defaults: a bare ``train`` is TrainConfig's run."""
    assert cli.train_config(cli.build_parser().parse_args(["train"])) == TrainConfig()


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    store = ModelStore(tmp_path / "store")
    publish_random_generator(store, "alpha", TINY_GENERATOR)
    publish_random_generator(store, "beta", TINY_GENERATOR, activate=False)
    return store


def test_an_unknown_version_lists_the_known_ones(store: ModelStore, tmp_path: Path) -> None:
    root, out = str(store.root), tmp_path / "out.png"
    for argv in (
        ["evaluate", "nope", "--store", root],
        ["sample", "--version", "nope", "--store", root, "--out", str(out)],
        ["activate", "nope", "--store", root],
    ):
        with pytest.raises(SystemExit) as caught:
            cli.main(argv)
        expected = f"error: model version 'nope' not found in {root}; known: alpha, beta"
        assert caught.value.code == expected, argv
    assert not out.exists() and store.active_version() == "alpha"


def test_an_unknown_parent_is_a_warning_with_the_known_versions(
    store: ModelStore, tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The parent is only recorded (a queued job's may have been discarded since): train warns.
    This run then stops at the taken version name, before the training phase."""
    with pytest.raises(SystemExit, match="error: model version 'alpha' already exists"):
        cli.main(["train", "--parent", "nope", "--version", "alpha", "--store", str(store.root),
                  "--data-dir", str(mnist_dir), "--run-dir", str(tmp_path / "run"),
                  "--progress", "jsonl"])  # fmt: skip
    captured = capsys.readouterr()
    assert captured.out == ""
    warning = (
        f"warning: --parent: model version 'nope' not found in {store.root}; known: alpha, beta"
    )
    assert captured.err.strip() == warning
    assert not (tmp_path / "run").exists()


def test_no_active_version_lists_the_known_ones(store: ModelStore, tmp_path: Path) -> None:
    (store.root / "ACTIVE").unlink()
    with pytest.raises(
        SystemExit, match=r"no active version: .*; pass --version, known: alpha, beta"
    ):
        cli.main(["sample", "--store", str(store.root), "--out", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit, match=r"'nope' not found in .*; known: none$"):
        cli.main(["activate", "nope", "--store", str(tmp_path / "empty")])


def test_missing_data_names_the_download_command(
    store: ModelStore,
    tmp_path: Path,
    mnist_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    nowhere = tmp_path / "nowhere"
    run_dir = tmp_path / "run"
    train = ["train", "--store", str(store.root), "--run-dir", str(run_dir), "--steps", "1",
             "--progress", "jsonl"]  # fmt: skip
    download = f"get MNIST with `python -m training download --data-dir {nowhere}`"
    expected = f"error: {nowhere / 'train-images-idx3-ubyte'}(.gz): file missing; {download}"
    with pytest.raises(SystemExit) as caught:
        cli.main([*train, "--data-dir", str(nowhere)])
    assert caught.value.code == expected
    # The test split is checked too (every file's md5 goes into the manifest), before training.
    train_only = tmp_path / "train-only"
    train_only.mkdir()
    for stem in SPLIT_FILES["train"]:
        shutil.copy(mnist_dir / f"{stem}.gz", train_only)
    with pytest.raises(
        SystemExit, match=r"t10k-images-idx3-ubyte\(\.gz\): file missing; get MNIST"
    ):
        cli.main([*train, "--data-dir", str(train_only)])
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(SystemExit, match="python -m training download --data-dir data/mnist"):
        cli.main(train)
    assert capsys.readouterr().out == ""  # no phase announced: training never started
    assert not run_dir.exists()


def test_a_closed_pipe_stops_a_command_quietly(store: ModelStore) -> None:
    """``python -m training evaluate V | head -3`` closes the pipe before all is written: the
    command stops with status 1 and no traceback (it printed a BrokenPipeError's). Here the
    reader has gone before the command writes a byte; the command did its work first."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "training", "activate", "beta", "--store", str(store.root)],
            stdout=writer,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)
    assert (done.returncode, done.stderr) == (1, b"")
    assert store.active_version() == "beta"
