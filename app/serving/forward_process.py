"""The forward pass in a process of its own (``GAN_INFERENCE_PROCESS``).

In one process the inference thread shares the GIL with the event loop and the PNG encoder: it
takes the GIL back after every op of the forward pass, ~30 hand-overs a batch, and measured on 2
cores its forward pass runs at ~80 % of the same pass alone (``benchmarks/README.md``). Here the
inference thread only sends each batch's seeds down a pipe and waits (without the GIL) for the
uint8 images; a child process, one thread and nothing else, draws them.

The child holds copies of the models it has been sent: weights go once per model, as
safetensors bytes (never pickle), built by the parent from the model it loaded and checked. The
parent decides which the child keeps (``KEPT_MODELS``, oldest dropped first), so the two never
disagree. A child that dies fails the batch it was drawing (``ForwardProcessError``) and is
started afresh for the next one.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from weakref import WeakKeyDictionary

import numpy as np
import torch
from safetensors.torch import load as load_weights
from safetensors.torch import save as save_weights

from app.serving.errors import ForwardProcessError
from gan.device import compute_dtype
from gan.networks import Generator, GeneratorConfig
from gan.sampling import draw_uint8

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's options, from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 32 * 2**20  # the most glibc accepts on 64-bit
TRIM_THRESHOLD_BYTES = 256 * 2**20
KEPT_MODELS = 3  # the serving one, a swap's new one, one a data set still streams from
START_TIMEOUT_S = 60.0  # for the child's first answer: it imports torch


class ForwardProcess:
    """The parent's handle: :meth:`draw` from any thread (one at a time), :meth:`close` once."""

    def __init__(self, device: torch.device, threads: int, dtype: torch.dtype) -> None:
        self.device = device
        self.threads = threads
        self.dtype = compute_dtype(device, dtype)  # the in-process worker's rule
        self._lock = threading.Lock()  # one batch on the pipe at a time
        self._tokens: WeakKeyDictionary[Generator, int] = WeakKeyDictionary()
        self._next_token = 0
        self._kept: OrderedDict[int, None] = OrderedDict()  # what the child holds, oldest first
        self._process: multiprocessing.process.BaseProcess | None = None
        self._pipe: Connection | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        with self._lock:
            self._start()

    def draw(
        self,
        model: Generator,
        seeds: Sequence[int],
        digits: Sequence[int | None],
        truncations: float | Sequence[float],
    ) -> tuple[np.ndarray, list[int]]:
        """``gan.sampling.draw_uint8`` for these seeds, drawn by the child."""
        if not isinstance(truncations, int | float):
            truncations = list(truncations)  # one per seed
        with self._lock:
            try:
                pipe = self._start()
                token = self._send_model(pipe, model)
                pipe.send(("draw", token, list(seeds), list(digits), truncations))
                answer = pipe.recv()
            except (EOFError, OSError) as error:
                self._discard()
                raise ForwardProcessError(f"the inference process died: {error!r}") from None
        if answer[0] == "error":
            raise ForwardProcessError(f"the inference process failed: {answer[1]}")
        _, shape, data, labels = answer
        return np.frombuffer(data, dtype=np.uint8).reshape(shape), labels

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the child: told to once it has finished its batch, killed if that batch does not
        end within ``timeout_s`` (a hung device must not hang the server's shutdown)."""
        if not self._lock.acquire(timeout=timeout_s):
            if self._process is not None:
                self._process.kill()
            return
        try:
            if self._pipe is not None:
                with contextlib.suppress(OSError):  # a child already gone
                    self._pipe.send(("stop",))
            if self._process is not None:
                self._process.join(timeout_s)
            self._discard()
        finally:
            self._lock.release()

    # ----- under the lock -------------------------------------------------------------------
    def _start(self) -> Connection:
        if self._pipe is not None and self._process is not None and self._process.is_alive():
            return self._pipe
        self._discard()
        context = multiprocessing.get_context("spawn")  # never fork a process running torch
        parent, child = context.Pipe()
        process = context.Process(
            target=child_main,
            args=(child, str(self.device), self.threads, str(self.dtype).removeprefix("torch.")),
            name="gan-inference",
            daemon=True,
        )
        process.start()
        child.close()
        if not parent.poll(START_TIMEOUT_S) or parent.recv() != ("ready",):
            process.kill()
            raise ForwardProcessError("the inference process did not start")
        self._process, self._pipe = process, parent
        log.info("inference process started", extra={"pid": process.pid})
        return parent

    def _discard(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._process.kill()
        if self._process is not None:
            self._process.join(5.0)  # reaped: no zombie left behind
        if self._pipe is not None:
            self._pipe.close()
        self._process, self._pipe = None, None
        self._kept.clear()  # a new child holds nothing

    def _send_model(self, pipe: Connection, model: Generator) -> int:
        token = self._tokens.get(model)
        if token is None:
            token = self._tokens[model] = self._next_token
            self._next_token += 1
        if token in self._kept:
            self._kept.move_to_end(token)
            return token
        weights = save_weights(
            {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        )
        pipe.send(("model", token, model.config.to_dict(), weights))
        self._kept[token] = None
        while len(self._kept) > KEPT_MODELS:
            dropped, _ = self._kept.popitem(last=False)
            pipe.send(("drop", dropped))
        return token


def keep_freed_memory() -> bool:
    """glibc's malloc told to serve blocks up to 32 MiB from its heap and to keep up to 256 MiB
    freed there. By default a batch's activations (~13 MB at batch 256) are mapped afresh and
    faulted in page by page on every pass: measured in a one-thread process like this one, batch
    256 took ~10,600 minor faults a pass and drew ~20 % fewer images per second. False where
    there is no glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None)  # the C library the interpreter already runs on
    if not hasattr(libc, "gnu_get_libc_version"):
        return False
    return bool(
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
        and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    )


def child_main(pipe: Connection, device_name: str, threads: int, dtype_name: str) -> None:
    """The child: models by token, then batches until told to stop or the parent is gone.

    It ignores SIGINT and SIGTERM: Ctrl-C, or a SIGTERM to the whole process group, reaches it
    too, and it must go on drawing while the parent drains its requests."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    keep_freed_memory()
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    dtype = getattr(torch, dtype_name)
    models: dict[int, Generator] = {}
    pipe.send(("ready",))
    while True:
        try:
            message = pipe.recv()
        except EOFError:  # the parent exited
            return
        kind = message[0]
        if kind == "stop":
            return
        if kind == "model":
            _, token, config, weights = message
            model = Generator(GeneratorConfig.from_dict(config))
            model.load_state_dict(load_weights(weights))
            models[token] = model.to(device).eval()
        elif kind == "drop":
            models.pop(message[1], None)
        elif kind == "draw":
            _, token, seeds, digits, truncations = message
            try:
                images, labels = draw_uint8(
                    models[token], seeds, digits, truncations, device=device, dtype=dtype
                )
            except Exception as error:  # the parent fails the batch; the child goes on
                pipe.send(("error", repr(error)))
            else:
                pipe.send(("images", images.shape, images.tobytes(), labels))
