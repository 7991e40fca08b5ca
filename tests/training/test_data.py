"""The IDX reader: the fixture loads with the right shapes, and every malformed file is refused
with a DataError that names the file and the problem."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import pytest
import torch

from training.data import (
    DATA_DIR_ENV,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    DataError,
    checksums,
    load_split,
)

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"


def idx_images(images: bytes, count: int, rows: int = 28, cols: int = 28) -> bytes:
    return struct.pack(">4I", IMAGES_MAGIC, count, rows, cols) + images


def idx_labels(labels: bytes, count: int | None = None) -> bytes:
    count = len(labels) if count is None else count
    return struct.pack(">2I", LABELS_MAGIC, count) + labels


@pytest.fixture
def data_copy(mnist_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the fixture, with every file decompressed (raw IDX)."""
    target = tmp_path / "mnist"
    target.mkdir()
    for source in mnist_dir.glob("*.gz"):
        (target / source.stem).write_bytes(gzip.decompress(source.read_bytes()))
    return target


def assert_refused(directory: Path, split: str, *fragments: str) -> str:
    with pytest.raises(DataError) as caught:
        load_split(directory, split)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


@pytest.mark.parametrize(("split", "per_class"), [("train", 20), ("test", 10)])
def test_fixture_loads(mnist_dir: Path, split: str, per_class: int) -> None:
    data = load_split(mnist_dir, split)
    assert data.images.shape == (10 * per_class, 28, 28)
    assert data.images.dtype == torch.uint8
    assert data.labels.shape == (10 * per_class,)
    assert data.labels.dtype == torch.int64
    assert len(data) == 10 * per_class
    assert int(data.labels.min()) == 0 and int(data.labels.max()) == 9
    assert torch.bincount(data.labels, minlength=10).tolist() == [per_class] * 10
    # Real digits: ink on a black background, not an all-zero or garbled buffer.
    assert int(data.images.max()) == 255
    assert 0.05 < float((data.images > 0).double().mean()) < 0.5


def test_raw_files_load_like_gzipped(mnist_dir: Path, data_copy: Path) -> None:
    assert not list(data_copy.glob("*.gz"))
    for split in ("train", "test"):
        gz, raw = load_split(mnist_dir, split), load_split(data_copy, split)
        assert torch.equal(gz.images, raw.images)
        assert torch.equal(gz.labels, raw.labels)
    # Provenance checksums are over decompressed bytes, so both forms give the same md5s.
    assert checksums(mnist_dir) == checksums(data_copy)
    assert set(checksums(mnist_dir)) == {
        TRAIN_IMAGES,
        TRAIN_LABELS,
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    }


def test_data_dir_from_environment(mnist_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(mnist_dir))
    assert len(load_split(None, "test")) == 100
    monkeypatch.delenv(DATA_DIR_ENV)
    with pytest.raises(DataError, match=DATA_DIR_ENV):
        load_split(None, "test")


def test_missing_file(data_copy: Path) -> None:
    (data_copy / TRAIN_LABELS).unlink()
    message = assert_refused(data_copy, "train", TRAIN_LABELS, "missing")
    assert str(data_copy) in message
    # The other split is unaffected.
    assert len(load_split(data_copy, "test")) == 100


def test_missing_directory(tmp_path: Path) -> None:
    assert_refused(tmp_path / "nowhere", "train", TRAIN_IMAGES, "missing")


def test_truncated_images(data_copy: Path) -> None:
    path = data_copy / TRAIN_IMAGES
    path.write_bytes(path.read_bytes()[:-100])
    assert_refused(data_copy, "train", str(path), "truncated", "200 items")


def test_padded_images(data_copy: Path) -> None:
    path = data_copy / TRAIN_IMAGES
    path.write_bytes(path.read_bytes() + b"\0")
    assert_refused(data_copy, "train", str(path), "padded")


def test_truncated_header(data_copy: Path) -> None:
    path = data_copy / TRAIN_LABELS
    path.write_bytes(path.read_bytes()[:6])
    assert_refused(data_copy, "train", str(path), "truncated header")


def test_wrong_magic(data_copy: Path) -> None:
    path = data_copy / TRAIN_IMAGES
    data = path.read_bytes()
    path.write_bytes(struct.pack(">I", LABELS_MAGIC) + data[4:])
    assert_refused(data_copy, "train", str(path), "wrong magic", "0x00000801", "0x00000803")


def test_wrong_image_size(data_copy: Path) -> None:
    path = data_copy / TRAIN_IMAGES
    path.write_bytes(idx_images(bytes(2 * 32 * 32), 2, 32, 32))
    assert_refused(data_copy, "train", str(path), "32x32", "expected 28x28")


def test_label_count_mismatch(data_copy: Path) -> None:
    path = data_copy / TRAIN_LABELS
    labels = path.read_bytes()[8:]
    path.write_bytes(idx_labels(labels[:-1]))
    assert_refused(
        data_copy, "train", str(path), "label count mismatch", "199 labels", "200 images"
    )


def test_label_out_of_range(data_copy: Path) -> None:
    path = data_copy / TRAIN_LABELS
    labels = bytearray(path.read_bytes()[8:])
    labels[5] = 10
    path.write_bytes(idx_labels(bytes(labels)))
    assert_refused(data_copy, "train", str(path), "label 10 out of range")


def gz_corruptions() -> dict[str, bytes]:
    valid = gzip.compress(idx_labels(bytes(range(10)) * 20), mtime=0)
    return {
        "not-gzip": b"this is not a gzip stream",
        "truncated-stream": valid[: len(valid) // 2],
        "bad-crc": valid[:-8] + bytes([valid[-8] ^ 1]) + valid[-7:],
        "corrupt-deflate": valid[:12] + bytes(b ^ 0xFF for b in valid[12:20]) + valid[20:],
    }


@pytest.mark.parametrize("case", sorted(gz_corruptions()))
def test_bad_gzip(mnist_dir: Path, tmp_path: Path, case: str) -> None:
    directory = tmp_path / "mnist"
    shutil.copytree(mnist_dir, directory)
    path = directory / f"{TRAIN_LABELS}.gz"
    path.write_bytes(gz_corruptions()[case])
    assert_refused(directory, "train", str(path), "cannot decompress")


def test_gzipped_file_wins_over_raw(mnist_dir: Path, data_copy: Path) -> None:
    # With both present the .gz is read; a broken .gz is reported, not silently skipped.
    (data_copy / f"{TRAIN_LABELS}.gz").write_bytes(b"garbage")
    assert_refused(data_copy, "train", f"{TRAIN_LABELS}.gz", "cannot decompress")
