"""Progress reporting: a tqdm bar for people, JSON lines for machines (the jobs API reads them):
the run's phases (training, evaluating, publishing) and, while it trains, its progress."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Literal

from torch import Tensor
from tqdm import tqdm

ProgressMode = Literal["bar", "jsonl", "none"]
Phase = Literal["training", "evaluating", "publishing"]


class ProgressReporter:
    """Where a run's events go: JSON lines on stdout, a tqdm bar (with the phases written above
    it) on stderr, or nowhere."""

    def __init__(self, mode: ProgressMode) -> None:
        self.mode = mode
        self._bar: tqdm[Any] | None = None
        self._last_step = 0

    def phase(self, phase: Phase) -> None:
        """Announce what the run does next: ``{"event": "phase", "phase": ...}``."""
        if self.mode == "jsonl":
            print(json.dumps({"event": "phase", "phase": phase}), file=sys.stdout, flush=True)
        elif self.mode == "bar":
            tqdm.write(f"phase: {phase}", file=sys.stderr)

    def start_bar(self, total_steps: int, initial_step: int) -> None:
        if self.mode == "bar":
            self._bar = tqdm(
                total=total_steps, initial=initial_step, unit="step", dynamic_ncols=True
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
            self._bar = None


class TrainingProgress:
    """A training run's progress lines: one every ``log_every`` steps and one after the last, with
    the losses, images/s since the previous line, ETA and where the sample grid is."""

    def __init__(
        self,
        reporter: ProgressReporter,
        total_steps: int,
        start_step: int,
        log_every: int,
        images_per_step: int,
        sample_grid: str,
    ) -> None:
        self.total_steps, self.log_every = total_steps, log_every
        self.images_per_step, self.sample_grid = images_per_step, sample_grid
        self.reporter = reporter
        reporter.start_bar(total_steps, start_step)
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
