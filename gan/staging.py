"""Staging: how an entry reaches the model store whole or not at all.

An entry is written into a hidden directory of the store, ``.staging-<token>``, which no listing
shows (a version name starts with a letter or digit). There it can be loaded and evaluated; then
one ``rename`` publishes it under its final name. A process killed at any point leaves either no
entry or a complete one, plus at most a hidden staging directory.

The staging process holds an exclusive ``flock`` on ``.staging-<token>.lock`` from before the
directory exists until after it is published or removed. The kernel releases that lock when the
process dies, however it dies, so :func:`remove_leftovers` (run before every new staging) removes
exactly the staging directories whose owner is gone, never one that is still being evaluated.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from safetensors.torch import save as save_safetensors

from gan.artifact import (
    MANIFEST_FILE,
    Manifest,
    VersionExists,
    build_generator,
    sha256_bytes,
    write_atomic,
)
from gan.networks import Generator

STAGING_PREFIX = ".staging-"
LOCK_SUFFIX = ".lock"
DISCARD_PREFIX = ".discard-"  # a removed entry, renamed out of sight before it is deleted
LEGACY_PREFIX = ".tmp-"  # staging directories of earlier code, which took no lock
LEGACY_GRACE_S = 3600.0
ORPHAN_LOCK_GRACE_S = 60.0

ExtraFiles = Callable[[Path], None]


class StagedVersion:
    """An entry written into a staging directory, not yet published. Use it as a context
    manager: leaving the block without :meth:`publish` removes it."""

    def __init__(self, path: Path, lock_fd: int, manifest: Manifest, final: Path) -> None:
        self.path, self.manifest, self.final = path, manifest, final
        self._lock_fd: int | None = lock_fd

    @property
    def name(self) -> str:
        return self.final.name

    def load_generator(self) -> Generator:
        """The staged generator, read back and verified as a published one would be."""
        return build_generator(self.path, self.manifest, self.name)

    def publish(self, metrics: dict[str, Any] | None = None) -> Path:
        """Write ``metrics`` into the staged manifest, then rename the directory into place.
        A classifier replaces the previous one; a generator version never replaces anything."""
        if metrics:
            self.manifest = self.manifest.model_copy(
                update={"metrics": {**self.manifest.metrics, **metrics}}
            )
            write_atomic(self.path / MANIFEST_FILE, self.manifest.model_dump_json(indent=2) + "\n")
        replaced = _move_aside(self.final) if self.manifest.kind == "classifier" else None
        try:
            os.rename(self.path, self.final)
        except OSError as error:
            if replaced is not None:
                os.rename(replaced, self.final)
            elif self.final.exists():  # another writer published this name in the meantime
                raise VersionExists(
                    f"model version {self.manifest.version!r} already exists"
                ) from error
            raise
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        self._unlock()
        return self.final

    def discard(self) -> None:
        """Remove the staging directory (nothing if it was published)."""
        if self._lock_fd is None:
            return
        shutil.rmtree(self.path, ignore_errors=True)
        self._unlock()

    def __enter__(self) -> StagedVersion:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.discard()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            _lock_path(self.path).unlink(missing_ok=True)
            os.close(self._lock_fd)
            self._lock_fd = None


def stage(
    root: Path,
    final: Path,
    manifest: Manifest,
    state_dict: dict[str, torch.Tensor],
    extra_files: ExtraFiles | None = None,
) -> StagedVersion:
    """Write the weights (recording their sha256 in the manifest), the manifest and any extra
    files into a new locked staging directory of ``root`` that will become ``final``."""
    path = root / f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    lock_fd = os.open(_lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: nobody else holds it
    staged = StagedVersion(path, lock_fd, manifest, final)
    try:
        path.mkdir()
        tensors = {key: value.detach().cpu().contiguous() for key, value in state_dict.items()}
        weights = save_safetensors(tensors)
        (path / manifest.weights_file).write_bytes(weights)
        staged.manifest = manifest.model_copy(update={"weights_sha256": sha256_bytes(weights)})
        (path / MANIFEST_FILE).write_text(staged.manifest.model_dump_json(indent=2) + "\n")
        if extra_files is not None:
            extra_files(path)
    except BaseException:
        staged.discard()
        raise
    return staged


def remove_leftovers(root: Path) -> list[str]:
    """Remove what dead writers left in ``root``: staging directories whose owner is gone, lock
    files without a directory (a minute old, owner gone), half-deleted entries, and earlier code's
    staging directories older than an hour. Returns the names removed."""
    removed = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.startswith(STAGING_PREFIX) and name.endswith(LOCK_SUFFIX):
            # Old enough that it is not a writer's between creating its lock and taking it.
            staging = entry.with_name(name[: -len(LOCK_SUFFIX)])
            if (
                not staging.exists()
                and _older_than(entry, ORPHAN_LOCK_GRACE_S)
                and _owner_gone(entry)
            ):
                entry.unlink(missing_ok=True)
                removed.append(name)
        elif name.startswith(STAGING_PREFIX) and _owner_gone(_lock_path(entry)):
            shutil.rmtree(entry, ignore_errors=True)
            _lock_path(entry).unlink(missing_ok=True)
            removed.append(name)
        elif name.startswith(DISCARD_PREFIX) or (
            name.startswith(LEGACY_PREFIX) and _older_than(entry, LEGACY_GRACE_S)
        ):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(name)
    return removed


def move_out_of_sight(directory: Path) -> Path:
    """Rename an entry to a hidden name in the same directory (one atomic step); returns it."""
    hidden = directory.with_name(f"{DISCARD_PREFIX}{uuid.uuid4().hex}")
    os.rename(directory, hidden)
    return hidden


def _move_aside(final: Path) -> Path | None:
    return move_out_of_sight(final) if final.exists() else None


def _lock_path(staging: Path) -> Path:
    return staging.with_name(staging.name + LOCK_SUFFIX)


def _owner_gone(lock: Path) -> bool:
    """No process holds ``lock`` (or it does not exist). Staging tokens are never reused, so a
    lock found free stays free."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False
