"""Progress reporting: a tqdm bar for people, JSON lines for machines (the jobs API reads them)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal

from torch import Tensor
from tqdm import tqdm

ProgressMode = Literal["bar", "jsonl", "none"]


class ProgressReporter:
    def __init__(self, mode: ProgressMode, total_steps: int, initial_step: int = 0) -> None:
        self.mode = mode
        self._bar = (
            tqdm(total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True)
            if mode == "bar"
            else None
        )
        self._last_step = initial_step

    def update(self, event: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.update(event["step"] - self._last_step)
            self._bar.set_postfix(
                {k: event[k] for k in ("loss_d", "loss_g", "images_per_s") if k in event}
            )
        elif self.mode == "jsonl":
            print(json.dumps(event), file=sys.stdout, flush=True)
        self._last_step = event.get("step", self._last_step)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class TrainingProgress:
    """A training run's progress lines: one every ``log_every`` steps and one after the last, with
    the losses, images/s since the previous line, ETA and where the sample grid is."""

    def __init__(
        self,
        mode: ProgressMode,
        total_steps: int,
        start_step: int,
        log_every: int,
        images_per_step: int,
        sample_grid: str,
    ) -> None:
        self.total_steps, self.log_every = total_steps, log_every
        self.images_per_step, self.sample_grid = images_per_step, sample_grid
        self.reporter = ProgressReporter(mode, total_steps, initial_step=start_step)
        self._window_start, self._window_steps = time.perf_counter(), 0

    def after_step(self, done: int, epoch: int, loss_d: Tensor, loss_g: Tensor) -> None:
        self._window_steps += 1
        steps = self.total_steps
        if done % self.log_every != 0 and done != steps:
            return
        elapsed = time.perf_counter() - self._window_start
        rate = self._window_steps * self.images_per_step / max(elapsed, 1e-9)
        self.reporter.update(
            {
                "event": "progress",
                "step": done,
                "total_steps": steps,
                "epoch": epoch,
                "loss_d": round(float(loss_d.detach()), 4),
                "loss_g": round(float(loss_g.detach()), 4),
                "images_per_s": round(rate, 1),
                "eta_s": round((steps - done) * self.images_per_step / max(rate, 1e-9), 1),
                "sample_grid": self.sample_grid,
            }
        )
        self._window_start, self._window_steps = time.perf_counter(), 0

    def close(self) -> None:
        self.reporter.close()

    def exported(self, version: str) -> None:
        self.reporter.update({"event": "exported", "step": self.total_steps, "version": version})
