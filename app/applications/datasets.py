"""Synthetic labelled data sets: ``per_digit`` samples of each digit, streamed as a zip archive.

Image ``i`` of a data set has digit ``digits[i // per_digit]`` and seed ``seed + i``, exactly the
image ``POST /generate`` draws for that digit, seed and truncation, so a data set is regenerated
bit for bit from its manifest (model version, digits, per_digit, seed, and the truncation when it
is not 1). Images are generated in chunks through the inference worker (sharing its batches and
queue with every other request) and each chunk is compressed into the archive and sent before the
next one is needed: memory stays at a chunk or two, whatever the data set's size.

Two formats, both zip archives that open with standard tools:

- ``npz``: ``images.npy`` (N, 28, 28) uint8, ``labels.npy`` (N,) uint8, ``seeds.npy`` (N,) int64,
  ``version.npy`` (the model version, as ``training sample --out FILE.npz`` writes it) and
  ``manifest.json``; ``numpy.load`` reads it.
- ``idx``: ``images-idx3-ubyte`` and ``labels-idx1-ubyte`` in MNIST's own format, and
  ``manifest.json``.

The archive's bytes depend only on the request and the model version (fixed timestamps).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import struct
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from starlette.concurrency import run_in_threadpool

from app.serving.errors import QueueFullError
from app.serving.worker import GenerationResult, InferenceWorker
from gan.imaging import GENERATOR_NAME

IMAGE_SIDE = 28
IDX_IMAGES = "images-idx3-ubyte"
IDX_LABELS = "labels-idx1-ubyte"
MANIFEST = "manifest.json"
QUEUE_RETRY_S = 0.05
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: same request, same bytes
ArchiveFormat = Literal["npz", "idx"]


@dataclass(frozen=True)
class DatasetPlan:
    digits: tuple[int, ...]
    per_digit: int
    seed: int
    format: ArchiveFormat
    truncation: float = 1.0

    @property
    def count(self) -> int:
        return len(self.digits) * self.per_digit

    def labels(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.count if stop is None else stop
        index = np.arange(start, stop) // self.per_digit
        return np.asarray(self.digits, dtype=np.uint8)[index]

    def seeds(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        stop = self.count if stop is None else stop
        return np.arange(self.seed + start, self.seed + stop, dtype=np.int64)

    def manifest(self, version: str) -> dict[str, Any]:
        files = (
            ["images.npy", "labels.npy", "seeds.npy", "version.npy"]
            if self.format == "npz"
            else [IDX_IMAGES, IDX_LABELS]
        )
        regenerate: dict[str, Any] = {
            "digits": list(self.digits),
            "per_digit": self.per_digit,
            "seed": self.seed,
            "format": self.format,
            "version": version,
        }
        # Only a truncated data set says so: an untruncated one keeps its bytes of before.
        truncated = {} if self.truncation == 1 else {"truncation": self.truncation}
        regenerate.update(truncated)
        return {
            "kind": "synthetic-mnist-dataset",
            "synthetic": True,
            "generator": GENERATOR_NAME,
            "model_version": version,
            "format": self.format,
            "digits": list(self.digits),
            "per_digit": self.per_digit,
            "count": self.count,
            "seed": self.seed,
            **truncated,
            "order": "image i has digit digits[i // per_digit] and seed seed + i, the image "
            "POST /generate draws for that digit and seed"
            + ("" if self.truncation == 1 else " (and this truncation)"),
            "regenerate": regenerate,
            "files": files,
        }

    @property
    def filename(self) -> str:
        truncated = "" if self.truncation == 1 else f"-t{self.truncation!r}"
        extension = "npz" if self.format == "npz" else "zip"
        return f"synthetic-mnist-{self.seed}-{self.count}{truncated}.{extension}"


class _Sink:
    """A write-only, non-seekable file for ``zipfile``: it collects bytes until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _entry(name: str, size: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.file_size = size  # lets zipfile choose zip64 headers up front for large entries
    info.external_attr = 0o644 << 16
    return info


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], dtype: np.dtype[Any]) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


class ArchiveWriter:
    """Writes one data set into a zip stream: ``begin`` (everything but the images), then
    ``add_images`` per chunk, then ``finish``; each returns the archive bytes ready to send."""

    def __init__(self, plan: DatasetPlan, version: str) -> None:
        self.plan = plan
        self.version = version
        self._sink = _Sink()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_DEFLATED)
        self._images: Any = None  # the open images entry
        self._written = 0

    def begin(self) -> bytes:
        plan = self.plan
        manifest = json.dumps(plan.manifest(self.version), indent=2).encode() + b"\n"
        self._zip.writestr(_entry(MANIFEST, len(manifest)), manifest)
        if plan.format == "npz":
            for name, data in (
                ("labels.npy", _npy(plan.labels())),
                ("seeds.npy", _npy(plan.seeds())),
                ("version.npy", _npy(np.array(self.version))),
            ):
                self._zip.writestr(_entry(name, len(data)), data)
            header = _npy_header((plan.count, IMAGE_SIDE, IMAGE_SIDE), np.dtype(np.uint8))
            name = "images.npy"
        else:
            labels = struct.pack(">II", 0x00000801, plan.count) + plan.labels().tobytes()
            self._zip.writestr(_entry(IDX_LABELS, len(labels)), labels)
            header = struct.pack(">IIII", 0x00000803, plan.count, IMAGE_SIDE, IMAGE_SIDE)
            name = IDX_IMAGES
        size = len(header) + plan.count * IMAGE_SIDE * IMAGE_SIDE
        self._images = self._zip.open(_entry(name, size), "w")
        self._images.write(header)
        return self._sink.take()

    def add_images(self, images: np.ndarray) -> bytes:
        if images.dtype != np.uint8 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise ValueError(f"images must be (n, 28, 28) uint8, not {images.shape} {images.dtype}")
        if self._written + len(images) > self.plan.count:
            raise ValueError("more images than the plan holds")
        self._images.write(np.ascontiguousarray(images).tobytes())
        self._written += len(images)
        return self._sink.take()

    def finish(self) -> bytes:
        if self._written != self.plan.count:
            raise ValueError(f"{self._written} of {self.plan.count} images written")
        self._images.close()
        self._zip.close()
        return self._sink.take()

    def abandon(self) -> None:
        """Close whatever is still open, its bytes discarded (after ``finish``, nothing)."""
        with contextlib.suppress(Exception):
            self._images.close()
        with contextlib.suppress(Exception):
            self._zip.close()
        self._sink.take()


class DatasetStream:
    """One data set on its way to a client. ``start`` generates the first chunk (so a busy
    server answers 503 before any byte is sent); ``chunks`` yields the archive piece by piece,
    generating the next chunk while the current one is compressed and sent."""

    def __init__(
        self, worker: InferenceWorker, plan: DatasetPlan, chunk_images: int, timeout_s: float
    ) -> None:
        self.worker = worker
        self.plan = plan
        self.chunk_images = max(1, chunk_images)
        self.timeout_s = timeout_s
        self._first: GenerationResult | None = None
        # The whole data set is drawn by the version serving when it starts, held until the
        # last chunk even if another version is activated meanwhile: one version, no cut body.
        self._model = worker.generator

    @property
    def version(self) -> str:
        assert self._first is not None, "start() first"
        return self._first.version

    def _bounds(self) -> list[tuple[int, int]]:
        count, step = self.plan.count, self.chunk_images
        return [(start, min(start + step, count)) for start in range(0, count, step)]

    async def _generate(self, start: int, stop: int, retry: bool = True) -> GenerationResult:
        """One chunk. After the first, a full queue is waited out (up to the timeout) rather
        than failing a data set half sent: interactive requests keep their priority."""
        seeds = self.plan.seeds(start, stop).tolist()
        digits: list[int | None] = [int(d) for d in self.plan.labels(start, stop)]
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        while True:
            try:
                return await self.worker.generate(
                    seeds, digits, self.timeout_s, self._model, self.plan.truncation
                )
            except QueueFullError:
                if not retry or asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(QUEUE_RETRY_S)

    async def start(self) -> None:
        start, stop = self._bounds()[0]
        self._first = await self._generate(start, stop, retry=False)

    async def chunks(self) -> AsyncIterator[bytes]:
        assert self._first is not None, "start() first"
        writer = ArchiveWriter(self.plan, self._first.version)
        yield await run_in_threadpool(writer.begin)
        bounds = self._bounds()
        current: asyncio.Future[GenerationResult] = asyncio.get_running_loop().create_future()
        current.set_result(self._first)
        self._first = None  # do not keep the first chunk alive for the whole stream
        pending: asyncio.Task[GenerationResult] | None = None
        try:
            for index in range(len(bounds)):
                result = await current
                if index + 1 < len(bounds):  # the next chunk is generated while this one is sent
                    pending = asyncio.ensure_future(self._generate(*bounds[index + 1]))
                    current = pending
                yield await run_in_threadpool(writer.add_images, np.asarray(result.images))
            yield await run_in_threadpool(writer.finish)
        finally:
            writer.abandon()  # a client that left: close the zip here, not noisily in __del__
            if pending is not None and not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending
