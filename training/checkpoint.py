"""Checkpoints of a training run: everything ``--resume`` needs to continue bit for bit.

A checkpoint is one ``torch.save`` file in the run directory holding the step reached, the networks'
architectures (so that it describes itself), the state of every trained object (generator,
discriminator, EMA including its update count, both optimisers) and the global RNG state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from gan.networks import DiscriminatorConfig, GeneratorConfig
from training.config import TrainConfig, discriminator_config

CHECKPOINT_FILE = "checkpoint.pt"


class CheckpointMismatch(Exception):
    """--resume was asked to continue a checkpoint of different networks."""


class Stateful(Protocol):
    """A module or an optimiser: what a checkpoint saves and restores."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state_dict: dict[str, Any]) -> object: ...


def architectures(config: TrainConfig) -> dict[str, dict[str, Any]]:
    """What a checkpoint records of its networks, so that it describes itself."""
    return {
        "generator": config.generator.to_dict(),
        "discriminator": discriminator_config(config).to_dict(),
    }


def save_checkpoint(
    path: Path, step: int, networks: dict[str, dict[str, Any]], parts: Mapping[str, Stateful]
) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint in place."""
    state: dict[str, Any] = {"step": step, "architectures": networks}
    state.update({name: part.state_dict() for name, part in parts.items()})
    state["rng"] = torch.get_rng_state()
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(
    path: Path,
    networks: dict[str, dict[str, Any]],
    parts: Mapping[str, Stateful],
    device: torch.device,
) -> int:
    """Restore ``parts`` and the global RNG from ``path``; returns the step to continue from."""
    state = torch.load(path, map_location=device, weights_only=True)
    check_architectures(state, path, networks)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    return int(state["step"])


def check_architectures(
    state: dict[str, Any], path: Path, expected: dict[str, dict[str, Any]]
) -> None:
    recorded = state.get("architectures")
    if recorded is not None:  # as the networks' configs read it: missing fields take defaults
        recorded = {
            "generator": GeneratorConfig.from_dict(recorded["generator"]).to_dict(),
            "discriminator": DiscriminatorConfig.from_dict(recorded["discriminator"]).to_dict(),
        }
    if recorded is not None and recorded != expected:
        raise CheckpointMismatch(
            f"{path} holds networks {recorded}, this run asks for {expected}: "
            "give the same architecture options, or a new --run-dir"
        )
