"""The store against corrupt and foreign entries (listed with their problem, never fatal to a
listing, refused by load with a reason), discarding versions, and staging (hidden, locked while
its writer lives, cleaned after it dies)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gan.networks import Classifier
from gan.staging import STAGING_PREFIX
from gan.store import (
    ACTIVE_POINTER,
    CLASSIFIER_DIR,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    IntegrityError,
    InvalidVersionName,
    Manifest,
    ModelStore,
    StoreError,
    VersionActive,
    VersionNotFound,
    sha256_bytes,
)
from gan.testing import publish_random_generator
from support.models import TINY_GENERATOR, TINY_VERSION, evaluator_manifest, tiny_generator

Corruption = Callable[[Path], object]


def edit(change: Callable[[dict[str, object]], object]) -> Corruption:
    def corrupt(directory: Path) -> None:
        path = directory / MANIFEST_FILE
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return corrupt


def write(text: str) -> Corruption:
    return lambda directory: (directory / MANIFEST_FILE).write_text(text)


CORRUPTIONS: dict[str, tuple[Corruption, str]] = {
    "invalid JSON": (write("{not json"), r"manifest of 'tiny' is invalid: Invalid JSON"),
    "not an object": (write("[1, 2]"), "manifest of 'tiny' is invalid"),
    "missing field": (edit(lambda m: m.pop("weights_sha256")), "weights_sha256: Field required"),
    "parent dir": (edit(lambda m: m.update(weights_file="../x")), "'../x' is not a bare file"),
    "absolute": (edit(lambda m: m.update(weights_file="/etc/passwd")), "not a bare file name"),
    "subdir": (edit(lambda m: m.update(weights_file="a/b")), "'a/b' is not a bare file name"),
    "other version": (edit(lambda m: m.update(version="other")), "names version 'other'"),
    "classifier": (edit(lambda m: m.update(kind="classifier")), "a classifier, not a generator"),
    "unknown kind": (edit(lambda m: m.update(kind="tokenizer")), "manifest of 'tiny' is invalid"),
    "newer format": (edit(lambda m: m.update(format_version=2)), "format_version 2, this code"),
    "no manifest": (lambda d: (d / MANIFEST_FILE).unlink(), "'tiny' has no manifest.json"),
}


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_a_bad_entry_is_listed_with_its_problem_and_refused(
    tiny_store: ModelStore, case: str
) -> None:
    corrupt, problem = CORRUPTIONS[case]
    publish_random_generator(tiny_store, "good", TINY_GENERATOR, activate=False)
    corrupt(tiny_store.version_dir(TINY_VERSION))

    assert [m.version for m in tiny_store.versions()] == ["good"]  # listing does not fail
    entries = {entry.version: entry for entry in tiny_store.entries()}
    assert sorted(entries) == ["good", TINY_VERSION]
    assert entries["good"].problem is None and entries["good"].manifest is not None
    bad = entries[TINY_VERSION]
    assert bad.manifest is None and bad.problem is not None
    assert re.search(problem, bad.problem), bad.problem
    assert tiny_store.broken() == {TINY_VERSION: bad.problem}

    expected = VersionNotFound if case == "no manifest" else IntegrityError
    with pytest.raises(expected, match=problem):
        tiny_store.load_generator(TINY_VERSION)
    tiny_store.set_active("good")
    with pytest.raises(StoreError):
        tiny_store.set_active(TINY_VERSION)  # a broken version cannot be activated
    assert tiny_store.active_version() == "good"
    tiny_store.load_generator("good")


def test_weights_with_the_right_sha256_but_not_safetensors_are_refused(
    tiny_store: ModelStore,
) -> None:
    directory = tiny_store.version_dir(TINY_VERSION)
    garbage = b"\x08\x00\x00\x00\x00\x00\x00\x00not json and not tensors"
    (directory / WEIGHTS_FILE).write_bytes(garbage)
    edit(lambda m: m.update(weights_sha256=sha256_bytes(garbage)))(directory)
    with pytest.raises(IntegrityError, match="match their sha256 but are not a readable"):
        tiny_store.load_generator(TINY_VERSION)
    # Listing reads manifests only; the weights are checked when the version is loaded.
    assert tiny_store.broken() == {}


def test_a_generator_manifest_in_the_classifier_directory_is_refused(
    tiny_store: ModelStore,
) -> None:
    tiny_store.publish(evaluator_manifest(), Classifier().state_dict())
    edit(lambda m: m.update(kind="generator"))(tiny_store.root / CLASSIFIER_DIR)
    with pytest.raises(IntegrityError, match="a generator, not a classifier"):
        tiny_store.load_classifier()
    assert [m.version for m in tiny_store.versions()] == [TINY_VERSION]


def test_discard_removes_a_version_but_never_the_active_one(tiny_store: ModelStore) -> None:
    publish_random_generator(tiny_store, "other", TINY_GENERATOR, activate=False)
    publish_random_generator(tiny_store, "broken", TINY_GENERATOR, activate=False)
    write("{")(tiny_store.version_dir("broken"))

    with pytest.raises(VersionActive, match="'tiny' is the active version"):
        tiny_store.discard(TINY_VERSION)
    assert isinstance(VersionActive("x"), StoreError)
    tiny_store.load_generator(TINY_VERSION)

    tiny_store.discard("other")
    tiny_store.discard("broken")  # a corrupt entry can be removed too
    assert [entry.version for entry in tiny_store.entries()] == [TINY_VERSION]
    assert not [p.name for p in tiny_store.root.iterdir() if p.name.startswith(".")]
    with pytest.raises(VersionNotFound):
        tiny_store.discard("other")
    with pytest.raises(InvalidVersionName):
        tiny_store.discard("../model_store")

    (tiny_store.root / ACTIVE_POINTER).unlink()  # no active version: nothing is protected
    tiny_store.discard(TINY_VERSION)
    assert tiny_store.entries() == []


def test_a_staged_version_is_hidden_until_published(tiny_store: ModelStore) -> None:
    manifest = Manifest(
        kind="generator", version="staged", architecture=TINY_GENERATOR.to_dict(),
        weights_file=WEIGHTS_FILE, weights_sha256="",
    )  # fmt: skip
    with tiny_store.stage(manifest, tiny_generator(seed=3).state_dict()) as staged:
        assert staged.path.parent == tiny_store.root
        assert staged.path.name.startswith(STAGING_PREFIX)
        assert [e.version for e in tiny_store.entries()] == [TINY_VERSION]
        loaded = staged.load_generator()  # verified, as a published version would be
        expected = tiny_generator(seed=3).state_dict()
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in expected.items())
        # Another writer's publish cleans leftovers, but not a staging whose writer is alive.
        publish_random_generator(tiny_store, "meanwhile", TINY_GENERATOR, activate=False)
        assert tiny_store.cleanup() == []
        assert staged.path.is_dir()
        staged.publish({"fid": 1.5})
    assert tiny_store.manifest("staged").metrics == {"fid": 1.5}
    tiny_store.load_generator("staged")
    assert not [p.name for p in tiny_store.root.iterdir() if p.name.startswith(".")]

    # Left without publishing (an error, an evaluation that failed): nothing remains.
    with (
        pytest.raises(RuntimeError),
        tiny_store.stage(
            manifest.model_copy(update={"version": "dropped"}), tiny_generator().state_dict()
        ),
    ):
        raise RuntimeError("evaluation failed")
    assert not [p.name for p in tiny_store.root.iterdir() if p.name.startswith(".")]
    assert "dropped" not in [e.version for e in tiny_store.entries()]


def test_cleanup_removes_what_dead_writers_left(tiny_store: ModelStore) -> None:
    root = tiny_store.root
    dead = root / f"{STAGING_PREFIX}dead"  # its writer was killed: no process holds its lock
    dead.mkdir()
    (dead / WEIGHTS_FILE).write_bytes(b"partial")
    (root / f"{STAGING_PREFIX}dead.lock").write_bytes(b"")
    (root / ".discard-half").mkdir()  # a discard interrupted while deleting
    old, recent = root / ".tmp-old", root / ".tmp-recent"  # earlier code's staging
    old.mkdir()
    recent.mkdir()
    an_hour_ago = time.time() - 3700
    os.utime(old, (an_hour_ago, an_hour_ago))
    orphan = root / f"{STAGING_PREFIX}gone.lock"  # a lock whose directory was published
    orphan.write_bytes(b"")
    os.utime(orphan, (an_hour_ago, an_hour_ago))

    assert [e.version for e in tiny_store.entries()] == [TINY_VERSION]
    assert sorted(tiny_store.cleanup()) == sorted(
        [dead.name, ".discard-half", ".tmp-old", orphan.name]
    )
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [".tmp-recent"]
    tiny_store.load_generator(TINY_VERSION)
