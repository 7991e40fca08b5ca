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

Loading always verifies the weights' sha256 against the manifest before deserialising.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from gan.networks import Classifier, Generator, GeneratorConfig

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "generator.safetensors"
CLASSIFIER_WEIGHTS_FILE = "classifier.safetensors"
SAMPLES_FILE = "samples.png"
ACTIVE_POINTER = "ACTIVE"
CLASSIFIER_DIR = "classifier"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class StoreError(Exception):
    """Base class of every model-store failure."""


class InvalidVersionName(StoreError):
    pass


class VersionNotFound(StoreError):
    pass


class VersionExists(StoreError):
    pass


class IntegrityError(StoreError):
    """The weights on disk do not match the sha256 recorded in the manifest, or cannot be read."""


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    kind: Literal["generator", "classifier"]
    version: str
    architecture: dict[str, Any] = Field(default_factory=dict)
    weights_file: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a name, never a path
    weights_sha256: str
    training: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    parent: str | None = None


@dataclass(frozen=True)
class LoadedGenerator:
    version: str
    manifest: Manifest
    model: Generator


def validate_version_name(version: str) -> str:
    if not VERSION_PATTERN.fullmatch(version) or version == CLASSIFIER_DIR:
        raise InvalidVersionName(
            f"invalid version name {version!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return version


def new_version_name() -> str:
    return datetime.now(UTC).strftime("g%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ModelStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    # ----- reading -------------------------------------------------------------------------
    def version_dir(self, version: str) -> Path:
        return self.root / validate_version_name(version)

    def manifest(self, version: str) -> Manifest:
        path = self.version_dir(version) / MANIFEST_FILE
        if not path.is_file():
            raise VersionNotFound(f"model version {version!r} not found in {self.root}")
        return Manifest.model_validate_json(path.read_text())

    def versions(self) -> list[Manifest]:
        """Every published generator version, oldest first."""
        if not self.root.is_dir():
            return []
        manifests = []
        for entry in self.root.iterdir():
            if entry.name == CLASSIFIER_DIR or not VERSION_PATTERN.fullmatch(entry.name):
                continue
            if (entry / MANIFEST_FILE).is_file():
                manifests.append(self.manifest(entry.name))
        return sorted(manifests, key=lambda m: (m.created_at, m.version))

    def active_version(self) -> str:
        pointer = self.root / ACTIVE_POINTER
        if not pointer.is_file():
            raise VersionNotFound(f"no active version: {pointer} does not exist")
        return validate_version_name(pointer.read_text().strip())

    def load_generator(self, version: str, device: torch.device | str = "cpu") -> LoadedGenerator:
        manifest = self.manifest(version)
        if manifest.kind != "generator":
            raise StoreError(f"{version!r} is a {manifest.kind}, not a generator")
        try:
            config = GeneratorConfig.from_dict(manifest.architecture)
        except (KeyError, TypeError, ValueError) as error:
            raise IntegrityError(
                f"{version!r} describes no known architecture: {error!r}"
            ) from error
        state = self._read_verified(self.version_dir(version), manifest)
        model = Generator(config)
        _load_state(model, state, version)
        return LoadedGenerator(version, manifest, model.to(device).eval())

    def classifier_manifest(self) -> Manifest:
        path = self.root / CLASSIFIER_DIR / MANIFEST_FILE
        if not path.is_file():
            raise VersionNotFound(f"no classifier in {self.root}: train one first")
        return Manifest.model_validate_json(path.read_text())

    def load_classifier(self, device: torch.device | str = "cpu") -> Classifier:
        manifest = self.classifier_manifest()
        state = self._read_verified(self.root / CLASSIFIER_DIR, manifest)
        model = Classifier()
        _load_state(model, state, CLASSIFIER_DIR)
        return model.to(device).eval()

    def _read_verified(self, directory: Path, manifest: Manifest) -> dict[str, torch.Tensor]:
        path = directory / manifest.weights_file
        try:
            data = path.read_bytes()
        except OSError as error:
            raise IntegrityError(f"cannot read weights {path}: {error}") from error
        # Hash the exact bytes we deserialise, so the file cannot change between check and load.
        digest = sha256_bytes(data)
        if digest != manifest.weights_sha256:
            raise IntegrityError(
                f"sha256 mismatch for {path}: manifest says {manifest.weights_sha256}, "
                f"file has {digest}; refusing to load"
            )
        return load_safetensors(data)

    # ----- writing -------------------------------------------------------------------------
    def publish(
        self,
        manifest: Manifest,
        state_dict: dict[str, torch.Tensor],
        extra_files: Callable[[Path], None] | None = None,
    ) -> Path:
        """Write weights + manifest into a temp dir, then rename it into place in one step."""
        final = (
            self.root / CLASSIFIER_DIR
            if manifest.kind == "classifier"
            else self.version_dir(manifest.version)
        )
        if final.exists() and manifest.kind == "generator":
            raise VersionExists(f"model version {manifest.version!r} already exists")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".tmp-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
            weights = save_safetensors(tensors)
            (staging / manifest.weights_file).write_bytes(weights)
            manifest = manifest.model_copy(update={"weights_sha256": sha256_bytes(weights)})
            (staging / MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2) + "\n")
            if extra_files is not None:
                extra_files(staging)
            if final.exists() and manifest.kind == "classifier":  # replaced, not versioned
                shutil.rmtree(final)
            try:
                os.rename(staging, final)
            except OSError as error:
                if final.exists():  # another writer published this name since the check above
                    raise VersionExists(
                        f"model version {manifest.version!r} already exists"
                    ) from error
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final

    def update_metrics(self, version: str, metrics: dict[str, Any]) -> Manifest:
        manifest = self.manifest(version)
        updated = manifest.model_copy(update={"metrics": {**manifest.metrics, **metrics}})
        _write_atomic(
            self.version_dir(version) / MANIFEST_FILE, updated.model_dump_json(indent=2) + "\n"
        )
        return updated

    def set_active(self, version: str) -> None:
        self.manifest(version)  # raises if it does not exist
        _write_atomic(self.root / ACTIVE_POINTER, version + "\n")


def _load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise IntegrityError(f"weights of {name!r} do not fit its architecture: {error}") from error
