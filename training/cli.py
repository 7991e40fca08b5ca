"""Command line: ``python -m training COMMAND`` (or the ``gan-training`` console script).

The options are in ``training.options``; this module turns them into a TrainConfig and runs the
commands. ``train`` checks its cheap preconditions first (the data files, the new version's name,
the classifier; an unknown parent is a warning), then prints JSON lines (with ``--progress jsonl``):
``{"event": "phase", "phase": "training"}`` first, progress lines, ``"evaluating"`` (with
``--evaluate``), ``"publishing"``, then ``{"event": "exported", ...}`` and ``{"event": "done",
"version": ...}``. ``speed`` prints one JSON line (``training.speed``). A version the store does
not have is refused with the list of those it has.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import numpy as np
import torch

from gan.imaging import encode_png, tile
from gan.networks import DiscriminatorConfig, GeneratorConfig
from gan.sampling import latents_for_seeds, to_uint8
from gan.store import CLASSIFIER_DIR, ModelStore, StoreError, VersionNotFound
from training.augment import parse_policy
from training.config import TrainConfig
from training.data import DataError, checksums, download
from training.options import build_parser, parse_restarts
from training.schedule import StepSchedule

__all__ = ["build_parser", "main", "train_config"]


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The run that ``train``'s options (or ``speed``'s, with the other fields left at their
    defaults) ask for."""
    run = {name: getattr(args, name) for name in _RUN_ARGUMENTS if hasattr(args, name)}
    restarts = parse_restarts(args.lr_restarts)
    if restarts and args.lr_decay_start is not None and restarts[0] <= args.lr_decay_start:
        raise SystemExit(
            f"error: --lr-restarts {args.lr_restarts} must come after --lr-decay-start "
            f"{args.lr_decay_start} (or give --lr-restarts none)"
        )
    twin_from = args.twin_classifier_from
    if aux_classifier_schedule(args).peak == 0:
        # The recipe's twin goes with its AC-GAN term; only a twin asked for is refused without.
        if twin_from not in (None, TrainConfig.twin_classifier_from):
            raise SystemExit(
                "error: --twin-classifier-from needs the AC-GAN term: a weight above 0"
            )
        twin_from = None
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        loss=args.loss,
        lr_g=args.lr_g,
        lr_d=args.lr_d,
        beta1=args.beta1,
        beta2=args.beta2,
        ema_decay=args.ema_decay,
        mode_seeking=args.mode_seeking,
        aux_classifier_schedule=aux_classifier_schedule(args),
        twin_classifier_from=twin_from,
        augment=",".join(parse_policy(args.augment)),
        r1_gamma=args.r1_gamma,
        r1_every=args.r1_every,
        lr_decay_start=args.lr_decay_start,
        lr_restarts=restarts,
        precision=args.precision,
        generator=GeneratorConfig(
            latent_dim=args.latent_dim,
            embed_dim=args.embed_dim,
            channels=args.g_channels,
            upsampling=args.upsampling,
            conditional_norm=args.conditional_norm,
        ),
        discriminator=DiscriminatorConfig(args.d_channels),
        seed=args.seed,
        device=args.device,
        **run,
    )


_RUN_ARGUMENTS = (
    "data_dir", "store", "run_dir", "version", "parent", "checkpoint_every", "sample_every",
    "log_every", "resume", "limit_samples",
)  # fmt: skip


def aux_classifier_schedule(args: argparse.Namespace) -> StepSchedule:
    if args.aux_classifier is not None:
        return StepSchedule.constant(args.aux_classifier)
    return StepSchedule.parse(args.aux_classifier_schedule)


def run_train(args: argparse.Namespace) -> None:
    # Heavy imports only for this command.
    from training.checkpoint import CheckpointMismatch
    from training.export import check_publishable
    from training.train import train

    config = train_config(args)
    # Before the training phase is announced: the parent (a warning), the version name and the
    # classifier (train checks them again, as cheaply), then that every data file is there and
    # decompresses (the manifest records the md5 of all four, the test split's too).
    warn_unknown_parent(ModelStore(config.store), config.parent)
    check_publishable(config, args.evaluate)
    checksums(config.data_dir)
    progress = args.progress
    if progress == "auto":
        progress = "bar" if sys.stderr.isatty() else "jsonl"
    per_digit = args.eval_per_digit if args.evaluate else None
    try:
        with sigterm_as_exit():
            version = train(config, progress, evaluate_per_digit=per_digit)
    except CheckpointMismatch as error:
        raise SystemExit(f"error: {error}") from error
    if version is None:  # a non-zero torchrun rank
        return
    if args.activate:
        ModelStore(args.store).set_active(version)
    print(json.dumps({"event": "done", "version": version}), flush=True)


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM (a cancelled job) unwinds like an exception, so that a staged version is removed
    on the way out; SIGKILL cannot be caught, and the next publish removes what it left."""

    def exit_now(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():  # only there can it be set
        yield
        return
    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def known_version(store: ModelStore, version: str) -> str:
    """``version``, if the store has it; else VersionNotFound, which names those it has."""
    if store.version_dir(version).is_dir():  # a broken one is named by the check that fails
        return version
    raise VersionNotFound(
        f"model version {version!r} not found in {store.root}; known: {known_versions(store)}"
    )


def warn_unknown_parent(store: ModelStore, parent: str | None) -> None:
    """The parent is only recorded in the manifest, and may have left the store (a job's, queued
    while it was discarded): a warning on stderr, not a refusal."""
    if not parent:
        return
    try:
        known_version(store, parent)
    except StoreError as error:
        print(f"warning: --parent: {error}", file=sys.stderr, flush=True)


def known_versions(store: ModelStore) -> str:
    return ", ".join(manifest.version for manifest in store.versions()) or "none"


def run_speed(args: argparse.Namespace) -> None:
    from training.speed import measure

    print(json.dumps(measure(train_config(args), args.seconds)), flush=True)


def run_evaluate(args: argparse.Namespace) -> None:
    """Score a version; the manifest keeps the canonical evaluation (seed 0, truncation 1): the
    classifier's as its metrics, the judge's as ``metrics["judge"]``. Other seeds or
    truncations are printed only."""
    from training.evaluate import score

    store = ModelStore(args.store)
    version = known_version(store, args.version)
    generator = store.load_generator(version).model
    metrics: dict[str, Any] = score(
        generator, store, args.data_dir, args.per_digit, args.seed, args.truncation, args.evaluator
    )
    if args.seed == 0 and args.truncation == 1.0:
        store.update_metrics(
            version, metrics if args.evaluator == CLASSIFIER_DIR else {args.evaluator: metrics}
        )
    print_metrics(metrics, args.json)


def run_compare(args: argparse.Namespace) -> None:
    from training.compare import OverlappingSeedSets, as_json, compare, table

    store = ModelStore(args.store)
    candidate, baseline = known_version(store, args.candidate), known_version(store, args.baseline)
    evaluators = args.evaluator or store.scoring_evaluators()
    try:
        rows = compare(
            store, candidate, baseline, args.data_dir, args.seeds, evaluators, args.per_digit
        )
    except OverlappingSeedSets as error:
        raise SystemExit(f"error: --seeds: {error}") from error
    print(json.dumps(as_json(rows)) if args.json else table(rows, candidate, baseline))


def run_reference(args: argparse.Namespace) -> None:
    from training.evaluate import real_reference

    store = ModelStore(args.store)
    metrics = real_reference(store, args.data_dir, args.per_digit, args.seed, args.evaluator)
    print_metrics(metrics, args.json)


def print_metrics(metrics: dict[str, Any], as_json: bool) -> None:
    """One JSON line, or a table of the overall metrics and one of each digit's."""
    if as_json:
        print(json.dumps(metrics))
        return
    print(f"{'metric':<24}{'value':>12}")
    for key, value in metrics.items():
        if key == "per_digit":
            continue
        print(
            f"{key:<24}{value:>12.4f}" if isinstance(value, float) else f"{key:<24}{value!s:>12.12}"
        )
    floors = all("fid_real_floor" in row for row in metrics["per_digit"])
    print(f"\n{'digit':<8}{'accuracy':>10}{'FID':>10}" + (f"{'floor':>10}" if floors else ""))
    for row in metrics["per_digit"]:
        floor = f"{row['fid_real_floor']:>10.2f}" if floors else ""
        print(f"{row['digit']:<8}{row['accuracy']:>10.4f}{row['fid']:>10.2f}{floor}")


def run_sample(args: argparse.Namespace) -> None:
    store = ModelStore(args.store)
    loaded = store.load_generator(sampled_version(store, args.version))
    seeds = list(range(args.seed, args.seed + args.n))
    digits = [args.digit] * args.n
    z, labels = latents_for_seeds(seeds, loaded.model.config.latent_dim, digits, args.truncation)
    with torch.inference_mode():
        images = to_uint8(loaded.model(z, labels)).numpy()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.out.suffix == ".npz":
        np.savez_compressed(
            args.out,
            images=images,
            labels=labels.numpy().astype(np.uint8),
            seeds=np.array(seeds),
            version=loaded.version,
        )
    elif args.out.suffix == ".png":
        provenance = {"model_version": loaded.version, "seed": str(args.seed)}
        args.out.write_bytes(encode_png(tile(images, columns=min(args.n, 10)), provenance))
    else:
        raise SystemExit(f"--out must end in .png or .npz, not {args.out.suffix!r}")
    print(f"wrote {args.n} samples of version {loaded.version} to {args.out}")


def sampled_version(store: ModelStore, version: str | None) -> str:
    """``--version``, or the active version without it."""
    if version is None:
        try:
            version = store.active_version()
        except VersionNotFound as error:
            known = known_versions(store)
            raise VersionNotFound(f"{error}; pass --version, known: {known}") from error
    return known_version(store, version)


def run_train_classifier(args: argparse.Namespace) -> None:
    from training.classifier import train_classifier

    metrics = train_classifier(
        args.data_dir,
        args.store,
        epochs=args.epochs,
        seed=args.seed,
        limit_samples=args.limit_samples,
        evaluator=args.evaluator,
    )
    print(json.dumps(metrics))


def main(argv: list[str] | None = None) -> None:
    try:
        try:
            run(argv)
        finally:
            sys.stdout.flush()  # here, where a closed pipe can be caught, not at exit
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly with status 1, as Unix tools do,
        # rather than with a traceback, and another one when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(1) from None


def run(argv: list[str] | None) -> None:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            run_train(args)
        elif args.command == "speed":
            run_speed(args)
        elif args.command == "train-classifier":
            run_train_classifier(args)
        elif args.command == "evaluate":
            run_evaluate(args)
        elif args.command == "reference":
            run_reference(args)
        elif args.command == "compare":
            run_compare(args)
        elif args.command == "sample":
            run_sample(args)
        elif args.command == "activate":
            store = ModelStore(args.store)
            store.set_active(known_version(store, args.version))
            print(f"active version: {args.version}")
        elif args.command == "download":
            for path in download(args.data_dir):
                print(f"verified {path}")
    except (DataError, StoreError) as error:
        raise SystemExit(f"error: {error}") from error
