"""One entry of the model store on disk: its names, its manifest, its weights, and every check
made before they are trusted. ``gan.store`` (the store as a whole) builds on this module and
re-exports its public names; nothing here knows about other entries.

An entry is a directory holding ``manifest.json`` and the weights file it names. Reading it checks,
in this order: the manifest parses and validates (a bare ``weights_file`` name, never a path), its
format version, its kind, and (for a generator) that it names the directory it is in; then the
weights' sha256 against the manifest, over the exact bytes that are then deserialised as
safetensors, and that they fit the architecture the manifest describes.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, Field, ValidationError, field_validator
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from gan.networks import EVALUATORS, Evaluator, Generator, GeneratorConfig

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "generator.safetensors"
CLASSIFIER_WEIGHTS_FILE = "classifier.safetensors"
SAMPLES_FILE = "samples.png"
ACTIVE_POINTER = "ACTIVE"
CLASSIFIER_DIR = "classifier"
JUDGE_DIR = "judge"
# The store's evaluators, by directory, and the architecture each is trained as: the project's
# classifier, which every manifest's metrics come from, and the independent judge.
EVALUATOR_ARCHITECTURES = {CLASSIFIER_DIR: "Classifier", JUDGE_DIR: "Judge"}
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
BARE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

Kind = Literal["generator", "classifier"]


class StoreError(Exception):
    """Base class of every model-store failure."""


class InvalidVersionName(StoreError):
    pass


class VersionNotFound(StoreError):
    pass


class VersionExists(StoreError):
    pass


class VersionActive(StoreError):
    """The operation would remove the version the store points at."""


class IntegrityError(StoreError):
    """An entry cannot be trusted: its manifest is unreadable, invalid or describes something
    else, or its weights do not match their sha256, cannot be read, or do not fit."""


class Manifest(BaseModel):
    format_version: int = FORMAT_VERSION
    kind: Kind
    version: str
    architecture: dict[str, Any] = Field(default_factory=dict)
    weights_file: str  # a bare file name inside the entry's directory, never a path
    weights_sha256: str
    training: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    parent: str | None = None

    @field_validator("weights_file")
    @classmethod
    def _bare_file_name(cls, value: str) -> str:
        if not BARE_FILE_NAME.fullmatch(value):
            raise ValueError(f"weights_file {value!r} is not a bare file name")
        return value


def validate_version_name(version: str) -> str:
    if version in EVALUATOR_ARCHITECTURES:
        raise InvalidVersionName(
            f"invalid version name {version!r}: reserved for the store's evaluators "
            f"({', '.join(EVALUATOR_ARCHITECTURES)})"
        )
    if not VERSION_PATTERN.fullmatch(version):
        raise InvalidVersionName(
            f"invalid version name {version!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return version


def new_version_name() -> str:
    return datetime.now(UTC).strftime("g%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_atomic(path: Path, content: str | bytes) -> None:
    """Readers see the old file or the new one whole, never a file being written."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    if isinstance(content, bytes):
        tmp.write_bytes(content)
    else:
        tmp.write_text(content)
    os.replace(tmp, path)


def read_manifest(directory: Path, name: str, kind: Kind) -> Manifest:
    """The manifest of the entry ``name`` in ``directory``, checked as the module doc says.
    A missing entry is VersionNotFound; anything else wrong with it is IntegrityError."""
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise VersionNotFound(f"model version {name!r} not found in {directory.parent}")
    if not path.is_file():
        raise VersionNotFound(f"{name!r} has no {MANIFEST_FILE} in {directory}")
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except OSError as error:
        raise IntegrityError(f"cannot read the manifest of {name!r}: {error}") from error
    except ValidationError as error:
        raise IntegrityError(f"the manifest of {name!r} is invalid: {_summary(error)}") from error
    problem = manifest_problem(manifest, name, kind)
    if problem is not None:
        raise IntegrityError(f"{name!r}: {problem}")
    return manifest


def manifest_problem(manifest: Manifest, name: str, kind: Kind) -> str | None:
    """Why a well-formed manifest still does not describe the entry ``name`` of ``kind``."""
    if manifest.format_version != FORMAT_VERSION:
        return f"format_version {manifest.format_version}, this code reads {FORMAT_VERSION}"
    if manifest.kind != kind:
        return f"the manifest describes a {manifest.kind}, not a {kind}"
    if kind == "generator" and manifest.version != name:
        return f"the manifest names version {manifest.version!r}, its directory is {name!r}"
    return None


def _summary(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:3]:
        location = ".".join(str(part) for part in item["loc"])
        parts.append(f"{location}: {item['msg']}" if location else item["msg"])
    return "; ".join(parts)


def read_weights(directory: Path, manifest: Manifest, name: str) -> dict[str, torch.Tensor]:
    """The entry's tensors, from bytes whose sha256 is the manifest's (hashed and deserialised
    from one read, so that the file cannot change between the check and the load)."""
    path = directory / manifest.weights_file
    try:
        data = path.read_bytes()
    except OSError as error:
        raise IntegrityError(f"cannot read weights {path}: {error}") from error
    digest = sha256_bytes(data)
    if digest != manifest.weights_sha256:
        raise IntegrityError(
            f"sha256 mismatch for {path}: manifest says {manifest.weights_sha256}, "
            f"file has {digest}; refusing to load"
        )
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise IntegrityError(
            f"weights of {name!r} ({path}) match their sha256 but are not a readable "
            f"safetensors file: {error}"
        ) from error


def build_generator(directory: Path, manifest: Manifest, name: str) -> Generator:
    """The generator the manifest describes, with the entry's verified weights, in eval mode."""
    try:
        config = GeneratorConfig.from_dict(manifest.architecture)
    except (KeyError, TypeError, ValueError) as error:
        raise IntegrityError(f"{name!r} describes no known architecture: {error!r}") from error
    state = read_weights(directory, manifest, name)
    model = Generator(config)
    load_state(model, state, name)
    return model.eval()


def build_evaluator(directory: Path, manifest: Manifest, name: str) -> Evaluator:
    """The evaluator the manifest names (``architecture.name``), with its verified weights, in
    eval mode."""
    architecture = EVALUATORS.get(str(manifest.architecture.get("name")))
    if architecture is None:
        raise IntegrityError(
            f"{name!r} names no known evaluator architecture: {manifest.architecture!r}; "
            f"known: {', '.join(EVALUATORS)}"
        )
    state = read_weights(directory, manifest, name)
    model = architecture()
    load_state(model, state, name)
    return model.eval()


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise IntegrityError(f"weights of {name!r} do not fit its architecture: {error}") from error
