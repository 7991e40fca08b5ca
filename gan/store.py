"""The on-disk model store: versioned generator artifacts, the evaluation classifier, and the
pointer to the active version.

Layout::

    model_store/
      ACTIVE                   # text file: the active version's name
      <version>/               # one generator version, published atomically
        manifest.json          # describes itself: format, architecture, sha256, config, metrics
        generator.safetensors  # EMA generator weights (no pickle)
        samples.png            # sample grid, one row per digit
      classifier/              # the evaluation classifier, same manifest format
      judge/                   # the independent judge, another classifier (optional)
      .staging-<token>/        # an entry being written or evaluated (gan.staging): never listed

Every entry is written into a staging directory and renamed into place in one step
(``gan.staging``); loading checks the manifest and verifies the weights' sha256 before
deserialising them (``gan.artifact``). A corrupt or foreign entry is reported by :meth:`entries`
and left out of :meth:`versions`; it never makes listing fail. Nothing outside this module needs to
know the layout: :meth:`discard` removes a version, :meth:`cleanup` what dead writers left.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gan.artifact import (
    ACTIVE_POINTER,
    BARE_FILE_NAME,
    CLASSIFIER_DIR,
    CLASSIFIER_WEIGHTS_FILE,
    EVALUATOR_ARCHITECTURES,
    FORMAT_VERSION,
    JUDGE_DIR,
    MANIFEST_FILE,
    SAMPLES_FILE,
    VERSION_PATTERN,
    WEIGHTS_FILE,
    IntegrityError,
    InvalidVersionName,
    Manifest,
    StoreError,
    VersionActive,
    VersionExists,
    VersionNotFound,
    build_evaluator,
    build_generator,
    new_version_name,
    read_manifest,
    sha256_bytes,
    validate_version_name,
    write_atomic,
)
from gan.networks import Evaluator, Generator
from gan.staging import ExtraFiles, StagedVersion, move_out_of_sight, remove_leftovers, stage

__all__ = [
    "ACTIVE_POINTER",
    "BARE_FILE_NAME",
    "CLASSIFIER_DIR",
    "CLASSIFIER_WEIGHTS_FILE",
    "EVALUATOR_ARCHITECTURES",
    "FORMAT_VERSION",
    "JUDGE_DIR",
    "MANIFEST_FILE",
    "SAMPLES_FILE",
    "VERSION_PATTERN",
    "WEIGHTS_FILE",
    "IntegrityError",
    "InvalidVersionName",
    "LoadedGenerator",
    "Manifest",
    "ModelStore",
    "StagedVersion",
    "StoreError",
    "VersionActive",
    "VersionEntry",
    "VersionExists",
    "VersionNotFound",
    "new_version_name",
    "sha256_bytes",
    "validate_version_name",
]


@dataclass(frozen=True)
class LoadedGenerator:
    version: str
    manifest: Manifest
    model: Generator


@dataclass(frozen=True)
class VersionEntry:
    """A directory of the store that is named like a version: its manifest when it is a good
    one, else None and the problem, one sentence (the weights are not read: see load_generator)."""

    version: str
    manifest: Manifest | None
    problem: str | None


class ModelStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ----- reading -------------------------------------------------------------------------
    def version_dir(self, version: str) -> Path:
        return self.root / validate_version_name(version)

    def evaluator_dir(self, evaluator: str) -> Path:
        """The directory of one of the store's evaluators (``classifier`` or ``judge``)."""
        if evaluator not in EVALUATOR_ARCHITECTURES:
            raise InvalidVersionName(
                f"no evaluator {evaluator!r}: an evaluator is one of "
                f"{', '.join(EVALUATOR_ARCHITECTURES)}, not {evaluator!r}"
            )
        return self.root / evaluator

    def has_evaluator(self, evaluator: str) -> bool:
        """Whether the store holds that evaluator (a store may have no judge: it is optional)."""
        return (self.evaluator_dir(evaluator) / MANIFEST_FILE).is_file()

    def scoring_evaluators(self) -> list[str]:
        """Who scores a version: the project's classifier (a store without one fails when it is
        loaded), and the independent judge where the store has one."""
        return [CLASSIFIER_DIR, *([JUDGE_DIR] if self.has_evaluator(JUDGE_DIR) else [])]

    def manifest(self, version: str) -> Manifest:
        """The version's manifest, checked: VersionNotFound if there is none, IntegrityError if
        it is invalid, names another version or kind, or names its weights by a path."""
        return read_manifest(self.version_dir(version), version, "generator")

    def entries(self) -> list[VersionEntry]:
        """Every directory named like a version, by name, with its problem if it has one."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(self.root.iterdir()):
            name = entry.name
            if name in EVALUATOR_ARCHITECTURES or not VERSION_PATTERN.fullmatch(name):
                continue
            if not entry.is_dir():
                continue
            try:
                found.append(VersionEntry(name, self.manifest(name), None))
            except StoreError as error:
                found.append(VersionEntry(name, None, str(error)))
        return found

    def versions(self) -> list[Manifest]:
        """Every good published generator version, oldest first (ties by name)."""
        manifests = [entry.manifest for entry in self.entries() if entry.manifest is not None]
        return sorted(manifests, key=lambda m: (m.created_at, m.version))

    def broken(self) -> dict[str, str]:
        """The entries left out of :meth:`versions`, with their problems."""
        return {e.version: e.problem for e in self.entries() if e.problem is not None}

    def active_version(self) -> str:
        pointer = self.root / ACTIVE_POINTER
        if not pointer.is_file():
            raise VersionNotFound(f"no active version: {pointer} does not exist")
        return validate_version_name(pointer.read_text().strip())

    def load_generator(self, version: str, device: torch.device | str = "cpu") -> LoadedGenerator:
        """The version's generator, every check passed; IntegrityError says which one failed."""
        manifest = self.manifest(version)
        model = build_generator(self.version_dir(version), manifest, version)
        return LoadedGenerator(version, manifest, model.to(device))

    def classifier_manifest(self, evaluator: str = CLASSIFIER_DIR) -> Manifest:
        """The manifest of one of the store's evaluators: the classifier, or the judge."""
        directory = self.evaluator_dir(evaluator)
        try:
            return read_manifest(directory, evaluator, "classifier")
        except VersionNotFound as error:
            flag = "" if evaluator == CLASSIFIER_DIR else f" --evaluator {evaluator}"
            raise VersionNotFound(
                f"no {evaluator} in {self.root}: train one first "
                f"(python -m training train-classifier{flag})"
            ) from error

    def load_classifier(
        self, evaluator: str = CLASSIFIER_DIR, device: torch.device | str = "cpu"
    ) -> Evaluator:
        manifest = self.classifier_manifest(evaluator)
        return build_evaluator(self.evaluator_dir(evaluator), manifest, evaluator).to(device)

    # ----- writing -------------------------------------------------------------------------
    def stage(
        self,
        manifest: Manifest,
        state_dict: dict[str, torch.Tensor],
        extra_files: ExtraFiles | None = None,
    ) -> StagedVersion:
        """Write an entry into a staging directory that no listing shows, to be evaluated there
        and published with ``StagedVersion.publish(metrics)``; use the result as a context
        manager so that it is removed if it is not published. Leftovers of dead writers are
        removed first."""
        final = self._final_dir(manifest)
        self.root.mkdir(parents=True, exist_ok=True)
        self.cleanup()
        return stage(self.root, final, manifest, state_dict, extra_files)

    def publish(
        self,
        manifest: Manifest,
        state_dict: dict[str, torch.Tensor],
        extra_files: ExtraFiles | None = None,
    ) -> Path:
        """Stage weights + manifest (+ extra files), then rename them into place in one step."""
        with self.stage(manifest, state_dict, extra_files) as staged:
            return staged.publish()

    def update_metrics(self, version: str, metrics: dict[str, Any]) -> Manifest:
        manifest = self.manifest(version)
        updated = manifest.model_copy(update={"metrics": {**manifest.metrics, **metrics}})
        write_atomic(
            self.version_dir(version) / MANIFEST_FILE, updated.model_dump_json(indent=2) + "\n"
        )
        return updated

    def set_active(self, version: str) -> None:
        self.manifest(version)  # raises if it does not exist or is broken
        write_atomic(self.root / ACTIVE_POINTER, version + "\n")

    def discard(self, version: str) -> None:
        """Remove a version, good or broken: renamed out of sight in one step, then deleted.
        The active version is refused (VersionActive): activate another one first."""
        directory = self.version_dir(version)
        if not directory.is_dir():
            raise VersionNotFound(f"model version {version!r} not found in {self.root}")
        try:
            active: str | None = self.active_version()
        except StoreError:  # no pointer, or one that names nothing valid
            active = None
        if version == active:
            raise VersionActive(
                f"{version!r} is the active version: activate another one before discarding it"
            )
        shutil.rmtree(move_out_of_sight(directory), ignore_errors=True)

    def cleanup(self) -> list[str]:
        """Remove what dead writers left behind (``gan.staging.remove_leftovers``); returns the
        names removed. Entries being staged by live processes are kept."""
        return remove_leftovers(self.root) if self.root.is_dir() else []

    def _final_dir(self, manifest: Manifest) -> Path:
        if manifest.kind == "classifier":
            return self.evaluator_dir(manifest.version)
        final = self.version_dir(manifest.version)
        if final.exists():
            raise VersionExists(f"model version {manifest.version!r} already exists")
        return final
