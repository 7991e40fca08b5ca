"""MNIST from the four standard IDX files (``.gz`` or raw), validated, held as uint8 tensors."""

from __future__ import annotations

import gzip
import hashlib
import os
import shlex
import struct
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
DATA_DIR_ENV = "MNIST_DATA_DIR"

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# md5 of the *decompressed* bytes, identical whatever mirror and gzip wrapper they came from.
DECOMPRESSED_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
DEFAULT_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
GET_MNIST = "get MNIST with `python -m training download --data-dir {directory}`"


class DataError(Exception):
    """A data file is missing or malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    chosen = data_dir or os.environ.get(DATA_DIR_ENV)
    if not chosen:
        hint = GET_MNIST.format(directory="data/mnist")
        raise DataError(f"no MNIST directory: pass --data-dir or set {DATA_DIR_ENV} ({hint})")
    return Path(chosen)


def _read_bytes(directory: Path, stem: str) -> tuple[Path, bytes]:
    for path in (directory / f"{stem}.gz", directory / stem):
        if path.is_file():
            try:
                data = (
                    gzip.decompress(path.read_bytes())
                    if path.suffix == ".gz"
                    else path.read_bytes()
                )
            except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
                raise DataError(f"{path}: cannot decompress ({error})") from error
            return path, data
    hint = GET_MNIST.format(directory=shlex.quote(str(directory)))
    raise DataError(f"{directory / stem}(.gz): file missing; {hint}")


def parse_idx(path: Path, data: bytes, magic: int) -> torch.Tensor:
    """Parse one IDX file's bytes; dims from the header, every size checked."""
    ndim = 3 if magic == IMAGES_MAGIC else 1
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated header ({len(data)} bytes)")
    (found_magic,) = struct.unpack(">I", data[:4])
    if found_magic != magic:
        raise DataError(f"{path}: wrong magic number 0x{found_magic:08x}, expected 0x{magic:08x}")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    if ndim == 3 and dims[1:] != (28, 28):
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected 28x28")
    expected = header_size + int(torch.tensor(dims).prod())
    if len(data) != expected:
        raise DataError(
            f"{path}: truncated or padded: {len(data)} bytes, header says {expected} "
            f"for {dims[0]} items"
        )
    flat = torch.frombuffer(bytearray(data[header_size:]), dtype=torch.uint8)
    return flat.view(*dims)


def load_split(data_dir: str | Path | None, split: str) -> Split:
    directory = resolve_data_dir(data_dir)
    image_stem, label_stem = SPLIT_FILES[split]
    image_path, image_bytes = _read_bytes(directory, image_stem)
    label_path, label_bytes = _read_bytes(directory, label_stem)
    images = parse_idx(image_path, image_bytes, IMAGES_MAGIC)
    labels = parse_idx(label_path, label_bytes, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{label_path}: label count mismatch: {len(labels)} labels for {len(images)} images "
            f"in {image_path}"
        )
    if len(labels) and int(labels.max()) > 9:
        raise DataError(f"{label_path}: label {int(labels.max())} out of range 0-9")
    return Split(images=images, labels=labels.long())


def checksums(data_dir: str | Path | None) -> dict[str, str]:
    """md5 of each file's decompressed content, recorded in manifests as data provenance."""
    directory = resolve_data_dir(data_dir)
    result = {}
    for stems in SPLIT_FILES.values():
        for stem in stems:
            _, data = _read_bytes(directory, stem)
            result[stem] = hashlib.md5(data).hexdigest()  # noqa: S324 - MNIST publishes md5
    return result


def download(data_dir: str | Path, mirror: str = DEFAULT_MIRROR) -> list[Path]:
    """Fetch the four files (never used by tests) and verify their decompressed md5."""
    directory = Path(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, expected in DECOMPRESSED_MD5.items():
        target = directory / f"{stem}.gz"
        if not target.exists():
            with urllib.request.urlopen(f"{mirror}{stem}.gz", timeout=60) as response:  # noqa: S310
                payload = response.read()
            target.with_suffix(".part").write_bytes(payload)
            target.with_suffix(".part").rename(target)
        _, data = _read_bytes(directory, stem)
        actual = hashlib.md5(data).hexdigest()  # noqa: S324
        if actual != expected:
            raise DataError(f"{target}: md5 of decompressed content {actual}, expected {expected}")
        written.append(target)
    return written
