"""Piecewise-constant schedules over training steps, e.g. the AC-GAN weight of the shipped recipe.

Written ``STEP:VALUE,STEP:VALUE,...`` (``"0:0.1,18000:0.05,22000:0.075"``): the value from each
step (0-based, the step being trained) until the next one; the first step is 0, the steps
increase, the values are finite and not negative. A bare number is a constant (``"0.1"`` is
``"0:0.1"``). Steps past the end of a run are never reached, so a shorter run trains the
schedule's beginning.
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass

SYNTAX = "STEP:VALUE[,STEP:VALUE...] with STEP 0 first and increasing, e.g. '0:0.1,18000:0.05'"


@dataclass(frozen=True)
class StepSchedule:
    points: tuple[tuple[int, float], ...]  # (first step, value), the first at step 0

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError(f"an empty schedule: expected {SYNTAX}")
        steps = [step for step, _ in self.points]
        if steps[0] != 0:
            raise ValueError(f"the schedule starts at step {steps[0]}, not 0: expected {SYNTAX}")
        for earlier, later in itertools.pairwise(steps):
            if later <= earlier:
                raise ValueError(f"step {later} follows step {earlier}: steps must increase")
        for _, value in self.points:
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"value {value} is not a finite number >= 0")

    @classmethod
    def constant(cls, value: float) -> StepSchedule:
        return cls(((0, float(value)),))

    @classmethod
    def parse(cls, text: str) -> StepSchedule:
        """Read the syntax of the module doc; ValueError says what is wrong and how to write it."""
        text = text.strip()
        if ":" not in text:
            return cls.constant(_number(text))
        points = []
        for item in text.split(","):
            step, separator, value = item.strip().partition(":")
            if not separator:
                raise ValueError(f"item {item.strip()!r} is not STEP:VALUE: expected {SYNTAX}")
            try:
                first = int(step)
            except ValueError:
                raise ValueError(
                    f"step {step.strip()!r} is not an integer: expected {SYNTAX}"
                ) from None
            points.append((first, _number(value)))
        return cls(tuple(points))

    def at(self, step: int) -> float:
        """The value for the step ``step`` (0-based)."""
        index = bisect.bisect_right([first for first, _ in self.points], step) - 1
        return self.points[max(index, 0)][1]

    @property
    def peak(self) -> float:
        return max(value for _, value in self.points)

    def __str__(self) -> str:
        """The syntax ``parse`` reads (values written exactly, as Python writes floats)."""
        return ",".join(f"{step}:{value!r}" for step, value in self.points)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number: expected {SYNTAX}") from None
