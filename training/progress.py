"""Progress reporting: a tqdm bar for people, JSON lines for machines (the jobs API reads them)."""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

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
