"""The model store: exact round trips, integrity checks, version names, atomic publishing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from gan.artifact import write_atomic
from gan.networks import Classifier, Generator, Judge
from gan.sampling import latents_for_seeds
from gan.store import (
    ACTIVE_POINTER,
    CLASSIFIER_DIR,
    CLASSIFIER_WEIGHTS_FILE,
    JUDGE_DIR,
    MANIFEST_FILE,
    WEIGHTS_FILE,
    IntegrityError,
    InvalidVersionName,
    Manifest,
    ModelStore,
    VersionExists,
    VersionNotFound,
    sha256_bytes,
    validate_version_name,
)
from support.models import TINY_GENERATOR, TINY_VERSION, evaluator_manifest, tiny_generator

INVALID_NAMES = [
    *["../x", "a/b", "", ".hidden", "..", "-x", "a b", "x" * 65, "é"],
    *[CLASSIFIER_DIR, JUDGE_DIR],  # the evaluators' directories
]


def generator_manifest(version: str, **fields: object) -> Manifest:
    return Manifest.model_validate(
        {
            "kind": "generator",
            "version": version,
            "architecture": TINY_GENERATOR.to_dict(),
            "weights_file": WEIGHTS_FILE,
            "weights_sha256": "",
            **fields,
        }
    )


def publish_tiny(store: ModelStore, version: str, seed: int = 0, **fields: object) -> Path:
    return store.publish(generator_manifest(version, **fields), tiny_generator(seed).state_dict())


def edit_manifest(
    store: ModelStore, version: str, change: Callable[[dict[str, object]], None]
) -> None:
    path = store.version_dir(version) / MANIFEST_FILE
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def leftovers(store: ModelStore) -> list[str]:
    """Hidden entries of the store: staging directories and their locks, discarded versions."""
    return sorted(p.name for p in store.root.iterdir() if p.name.startswith("."))


def test_round_trip_is_bit_identical(tiny_store: ModelStore) -> None:
    original = tiny_generator()
    loaded = tiny_store.load_generator(TINY_VERSION)
    assert loaded.version == TINY_VERSION
    assert loaded.model.config == TINY_GENERATOR
    assert not loaded.model.training
    original_state, loaded_state = original.state_dict(), loaded.model.state_dict()
    assert original_state.keys() == loaded_state.keys()
    for key, value in original_state.items():
        assert torch.equal(value, loaded_state[key]), key

    z, labels = latents_for_seeds(list(range(20)), TINY_GENERATOR.latent_dim, [None] * 20)
    with torch.inference_mode():
        expected, actual = original(z, labels), loaded.model(z, labels)
    assert actual.shape == (20, 1, 28, 28)
    assert torch.equal(expected, actual)
    # The generator is not constant: a different init gives different images.
    with torch.inference_mode():
        assert not torch.equal(tiny_generator(seed=1)(z, labels), actual)


def test_publish_records_the_weights_sha256(tiny_store: ModelStore) -> None:
    directory = tiny_store.version_dir(TINY_VERSION)
    manifest = tiny_store.manifest(TINY_VERSION)
    assert sorted(p.name for p in directory.iterdir()) == sorted([MANIFEST_FILE, WEIGHTS_FILE])
    assert manifest.weights_sha256 == sha256_bytes((directory / WEIGHTS_FILE).read_bytes())
    assert len(manifest.weights_sha256) == 64
    assert manifest.kind == "generator" and manifest.version == TINY_VERSION
    assert leftovers(tiny_store) == []


@pytest.mark.parametrize("offset", [0, 100, -1])
def test_tampered_weights_are_refused(tiny_store: ModelStore, offset: int) -> None:
    path = tiny_store.version_dir(TINY_VERSION) / WEIGHTS_FILE
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        tiny_store.load_generator(TINY_VERSION)


def test_missing_weights_are_refused(tiny_store: ModelStore) -> None:
    (tiny_store.version_dir(TINY_VERSION) / WEIGHTS_FILE).unlink()
    with pytest.raises(IntegrityError, match="cannot read weights"):
        tiny_store.load_generator(TINY_VERSION)


def test_manifest_with_wrong_sha_is_refused(tiny_store: ModelStore) -> None:
    edit_manifest(tiny_store, TINY_VERSION, lambda m: m.update(weights_sha256="0" * 64))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        tiny_store.load_generator(TINY_VERSION)


@pytest.mark.parametrize("change", [{"channels": 16}, {"latent_dim": 9}, {"embed_dim": 2}])
def test_architecture_mismatch_is_refused(tiny_store: ModelStore, change: dict[str, int]) -> None:
    edit_manifest(
        tiny_store,
        TINY_VERSION,
        lambda m: m.update(architecture={**TINY_GENERATOR.to_dict(), **change}),
    )
    with pytest.raises(IntegrityError, match="do not fit its architecture"):
        tiny_store.load_generator(TINY_VERSION)


@pytest.mark.parametrize(
    "architecture",
    [
        {"upsampling": "bilinear"},
        {"conditional_norm": "yes"},
        {"channels": "many"},
        {"latent_dim": None},
    ],
)
def test_unknown_architecture_is_refused(
    tiny_store: ModelStore, architecture: dict[str, object]
) -> None:
    edit_manifest(
        tiny_store,
        TINY_VERSION,
        lambda m: m.update(architecture={**TINY_GENERATOR.to_dict(), **architecture}),
    )
    with pytest.raises(IntegrityError, match="describes no known architecture"):
        tiny_store.load_generator(TINY_VERSION)


def test_manifest_from_before_the_architecture_options_loads(tmp_path: Path) -> None:
    """The first format recorded only latent_dim, embed_dim and channels: its networks had
    transposed convolutions and plain batch norm, which is what the missing fields mean."""
    first_network = replace(TINY_GENERATOR, upsampling="transpose", conditional_norm=False)
    first_format = {k: TINY_GENERATOR.to_dict()[k] for k in ("latent_dim", "embed_dim", "channels")}
    torch.manual_seed(0)
    original = Generator(first_network).eval()
    store = ModelStore(tmp_path)
    store.publish(generator_manifest("first", architecture=first_format), original.state_dict())
    loaded = store.load_generator("first").model
    assert loaded.config == first_network
    z, labels = latents_for_seeds(list(range(8)), TINY_GENERATOR.latent_dim, [None] * 8)
    with torch.inference_mode():
        assert torch.equal(original(z, labels), loaded(z, labels))


@pytest.mark.parametrize(
    "variant",
    [
        {"upsampling": "nearest"},
        {"conditional_norm": False},
        {"upsampling": "nearest", "conditional_norm": False},
    ],
)
def test_architecture_variants_round_trip(tmp_path: Path, variant: dict[str, object]) -> None:
    config = replace(TINY_GENERATOR, **variant)  # type: ignore[arg-type]
    torch.manual_seed(0)
    original = Generator(config).eval()
    manifest = generator_manifest("variant", architecture=config.to_dict())
    store = ModelStore(tmp_path)
    store.publish(manifest, original.state_dict())
    loaded = store.load_generator("variant").model
    assert loaded.config == config
    z, labels = latents_for_seeds(list(range(20)), config.latent_dim, [None] * 20)
    with torch.inference_mode():
        expected, actual = original(z, labels), loaded(z, labels)
    assert actual.shape == (20, 1, 28, 28)
    assert torch.equal(expected, actual)


def test_published_with_wrong_architecture_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    publish_tiny(store, "liar", architecture={"latent_dim": 8, "embed_dim": 4, "channels": 16})
    with pytest.raises(IntegrityError, match="'liar'"):
        store.load_generator("liar")


def test_a_classifier_manifest_is_not_a_generator(tiny_store: ModelStore) -> None:
    edit_manifest(tiny_store, TINY_VERSION, lambda m: m.update(kind="classifier"))
    with pytest.raises(IntegrityError, match="not a generator"):
        tiny_store.load_generator(TINY_VERSION)


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_version_names(tmp_path: Path, name: str) -> None:
    store = ModelStore(tmp_path / "store")
    with pytest.raises(InvalidVersionName):
        validate_version_name(name)
    with pytest.raises(InvalidVersionName):
        store.version_dir(name)
    with pytest.raises(InvalidVersionName):
        store.manifest(name)
    with pytest.raises(InvalidVersionName):
        store.load_generator(name)
    with pytest.raises(InvalidVersionName):
        store.set_active(name)
    with pytest.raises(InvalidVersionName):
        store.update_metrics(name, {"fid": 1.0})
    with pytest.raises(InvalidVersionName):
        publish_tiny(store, name)
    # Nothing was written anywhere, inside or outside the store.
    assert not (tmp_path / "store").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "0", "v1.2_3-rc", "x" * 64, "g20240101-000000-abcdef"])
def test_valid_version_names(tmp_path: Path, name: str) -> None:
    assert validate_version_name(name) == name
    store = ModelStore(tmp_path)
    assert publish_tiny(store, name) == tmp_path / name
    assert store.manifest(name).version == name


def test_active_pointer_cannot_escape_the_store(tiny_store: ModelStore) -> None:
    (tiny_store.root / ACTIVE_POINTER).write_text("../elsewhere\n")
    with pytest.raises(InvalidVersionName):
        tiny_store.active_version()


def test_publishing_a_version_twice_is_refused(tiny_store: ModelStore) -> None:
    before = tiny_store.manifest(TINY_VERSION)
    with pytest.raises(VersionExists, match=TINY_VERSION):
        publish_tiny(tiny_store, TINY_VERSION, seed=1)
    # The published version is untouched and still loads.
    assert tiny_store.manifest(TINY_VERSION) == before
    tiny_store.load_generator(TINY_VERSION)
    assert leftovers(tiny_store) == []


def test_losing_a_publish_race_is_version_exists(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)

    def rival_publishes_first(_staging: Path) -> None:
        publish_tiny(store, "race", seed=1)  # lands between the existence check and the rename

    with pytest.raises(VersionExists, match="'race'"):
        store.publish(
            generator_manifest("race"),
            tiny_generator(seed=0).state_dict(),
            extra_files=rival_publishes_first,
        )
    winner = store.load_generator("race").model.state_dict()
    assert all(torch.equal(winner[k], v) for k, v in tiny_generator(seed=1).state_dict().items())
    assert leftovers(store) == []


def test_versions_and_active(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    assert store.versions() == []
    with pytest.raises(VersionNotFound, match="no active version"):
        store.active_version()
    with pytest.raises(VersionNotFound):
        store.set_active("b")
    with pytest.raises(VersionNotFound):
        store.load_generator("b")

    publish_tiny(store, "b", created_at="2024-01-01T00:00:00+00:00")
    publish_tiny(store, "a", seed=1, created_at="2024-01-02T00:00:00+00:00", parent="b")
    publish_tiny(store, "c", seed=2, created_at="2024-01-02T00:00:00+00:00")
    # Not versions: the classifier, a directory without a manifest, a staging leftover, a file.
    store.publish(evaluator_manifest(), Classifier().state_dict())
    (store.root / "empty").mkdir()
    (store.root / ".tmp-0123").mkdir()
    (store.root / "notes.txt").write_text("hello")

    listed = store.versions()
    assert [m.version for m in listed] == ["b", "a", "c"]  # oldest first, ties by name
    assert listed[1].parent == "b"

    store.set_active("c")
    assert store.active_version() == "c"
    assert (store.root / ACTIVE_POINTER).read_text().strip() == "c"
    store.set_active("b")
    assert store.active_version() == "b"
    # Each version really holds its own weights.
    a, b = store.load_generator("a").model, store.load_generator("b").model
    key = "project.0.weight"
    assert not torch.equal(a.state_dict()[key], b.state_dict()[key])


def test_failed_publish_leaves_nothing_behind(tiny_store: ModelStore) -> None:
    seen: list[Path] = []

    def broken_extra_files(directory: Path) -> None:
        seen.append(directory)
        assert (directory / WEIGHTS_FILE).is_file()  # called inside the staging directory
        (directory / "samples.png").write_bytes(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_tiny_with(tiny_store, "broken", broken_extra_files)
    assert len(seen) == 1 and seen[0].name.startswith(".staging-")
    assert not seen[0].exists()
    assert leftovers(tiny_store) == []
    assert not (tiny_store.root / "broken").exists()
    assert [m.version for m in tiny_store.versions()] == [TINY_VERSION]

    # The name is still free.
    def good_extra_files(directory: Path) -> None:
        (directory / "samples.png").write_bytes(b"png")

    publish_tiny_with(tiny_store, "broken", good_extra_files)
    assert (tiny_store.root / "broken" / "samples.png").read_bytes() == b"png"
    assert leftovers(tiny_store) == []


def publish_tiny_with(store: ModelStore, version: str, extra: Callable[[Path], None]) -> Path:
    return store.publish(generator_manifest(version), tiny_generator().state_dict(), extra)


def test_update_metrics_merges_into_the_manifest(tiny_store: ModelStore) -> None:
    sha = tiny_store.manifest(TINY_VERSION).weights_sha256
    tiny_store.update_metrics(TINY_VERSION, {"fid": 12.5, "precision": 0.5})
    updated = tiny_store.update_metrics(TINY_VERSION, {"fid": 10.0})
    assert updated.metrics == {"fid": 10.0, "precision": 0.5}
    assert tiny_store.manifest(TINY_VERSION) == updated
    assert updated.weights_sha256 == sha
    tiny_store.load_generator(TINY_VERSION)  # still verifies
    with pytest.raises(VersionNotFound):
        tiny_store.update_metrics("missing", {"fid": 1.0})
    assert [
        p.name for p in tiny_store.version_dir(TINY_VERSION).iterdir() if ".tmp" in p.name
    ] == []


def test_classifier_round_trip_and_replacement(tiny_store: ModelStore) -> None:
    with pytest.raises(VersionNotFound, match="no classifier"):
        tiny_store.load_classifier()
    torch.manual_seed(0)
    first = Classifier().eval()
    tiny_store.publish(evaluator_manifest(metrics={"test_accuracy": 0.5}), first.state_dict())
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    loaded = tiny_store.load_classifier()
    assert not loaded.training
    with torch.inference_mode():
        assert torch.equal(loaded(images), first(images))

    # Publishing a classifier again replaces it (it is not versioned).
    second = Classifier().eval()
    tiny_store.publish(evaluator_manifest(metrics={"test_accuracy": 0.9}), second.state_dict())
    assert tiny_store.classifier_manifest().metrics == {"test_accuracy": 0.9}
    with torch.inference_mode():
        assert torch.equal(tiny_store.load_classifier()(images), second(images))
    assert leftovers(tiny_store) == []
    # The classifier is never listed as a generator version.
    assert [m.version for m in tiny_store.versions()] == [TINY_VERSION]

    weights = tiny_store.root / CLASSIFIER_DIR / CLASSIFIER_WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-1] + b"\0")
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        tiny_store.load_classifier()


@pytest.mark.parametrize("name", [CLASSIFIER_DIR, JUDGE_DIR])
def test_an_evaluators_name_is_refused_as_a_version_saying_why(name: str) -> None:
    with pytest.raises(InvalidVersionName, match="reserved for the store's evaluators"):
        validate_version_name(name)


def test_the_judge_is_a_second_evaluator_beside_the_classifier(tiny_store: ModelStore) -> None:
    with pytest.raises(VersionNotFound, match="train-classifier --evaluator judge"):
        tiny_store.load_classifier(JUDGE_DIR)
    torch.manual_seed(0)
    judge, classifier = Judge().eval(), Classifier().eval()
    tiny_store.publish(evaluator_manifest(JUDGE_DIR), judge.state_dict())
    tiny_store.publish(evaluator_manifest(), classifier.state_dict())
    loaded = tiny_store.load_classifier(JUDGE_DIR)
    assert isinstance(loaded, Judge) and isinstance(tiny_store.load_classifier(), Classifier)
    images = torch.rand(4, 1, 28, 28) * 2 - 1
    with torch.inference_mode():
        assert torch.equal(loaded(images), judge(images))
        assert loaded.features(images).shape == (4, Judge.feature_dim)
    assert [m.version for m in tiny_store.versions()] == [TINY_VERSION]
    assert tiny_store.broken() == {}
    with pytest.raises(InvalidVersionName, match="no evaluator 'tiny'"):
        tiny_store.load_classifier(TINY_VERSION)
    with pytest.raises(InvalidVersionName, match="not 'other'"):
        tiny_store.publish(evaluator_manifest(version="other"), judge.state_dict())


@pytest.mark.parametrize(
    ("architecture", "problem"),
    [({"name": "Pickle"}, "names no known evaluator"), ({"name": "Classifier"}, "do not fit")],
)
def test_a_judge_of_another_architecture_is_refused(
    tiny_store: ModelStore, architecture: dict[str, str], problem: str
) -> None:
    manifest = evaluator_manifest(JUDGE_DIR, architecture=architecture)
    tiny_store.publish(manifest, Judge().state_dict())
    with pytest.raises(IntegrityError, match=problem):
        tiny_store.load_classifier(JUDGE_DIR)


def test_write_atomic_replaces_bytes_or_text_whole_and_leaves_no_scratch(tmp_path: Path) -> None:
    target = tmp_path / "samples.png"
    write_atomic(target, b"\x89PNG first")
    write_atomic(target, b"\x89PNG second, longer")
    assert target.read_bytes() == b"\x89PNG second, longer"
    write_atomic(target, "text")
    assert target.read_text() == "text"
    assert [p.name for p in tmp_path.iterdir()] == ["samples.png"]
