"""Checkpoints of a training run: everything ``--resume`` needs to continue bit for bit.

A checkpoint is one ``torch.save`` file in the run directory holding the step reached, the networks'
architectures and the run's pieces so far (so that it describes itself: ``training.provenance``),
the state of every trained object (generator, discriminator, EMA including its update count, both
optimisers) and the global RNG state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from gan.networks import DiscriminatorConfig, GeneratorConfig
from training.config import TrainConfig, discriminator_config
from training.provenance import Piece, unrecorded_piece

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
    path: Path,
    step: int,
    networks: dict[str, dict[str, Any]],
    parts: Mapping[str, Stateful],
    pieces: list[Piece],
) -> None:
    """Write atomically: a crash mid-save leaves the previous checkpoint in place."""
    state: dict[str, Any] = {"step": step, "architectures": networks, "pieces": pieces}
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
    twin_from: int | None,
) -> tuple[int, list[Piece]]:
    """Restore ``parts`` and the global RNG from ``path``; returns the step to continue from and
    the run's pieces up to it (one unrecorded piece for a checkpoint from before they were).

    A checkpoint whose critic lacks only the twin head continues as the run whose twin starts at
    ``twin_from``, if that is not before the checkpoint's step: until its start a late twin's run
    is the run without one (gan.networks.twin_head), so the head takes its initial weights and
    Adam has no state for it yet, as it would have had. This is v4l's graft as an option."""
    state = torch.load(path, map_location=device, weights_only=True)
    step = int(state["step"])
    recorded = recorded_architectures(state)
    if lacks_only_the_twin(recorded, networks):
        # Only a run with a twin asks for one, so twin_from is a step here.
        if twin_from is None or twin_from < step:
            raise CheckpointMismatch(
                f"{path} at step {step} holds a critic without the twin head: a twin can be "
                f"added from step {step} on (--twin-classifier-from >= {step}), not from "
                f"{twin_from}, since the run that had it earlier trained it before this step"
            )
        graft_twin(state, parts, path)
    elif recorded is not None and recorded != networks:
        raise CheckpointMismatch(
            f"{path} holds networks {recorded}, this run asks for {networks}: "
            "give the same architecture options, or a new --run-dir"
        )
    for name, part in parts.items():
        part.load_state_dict(state[name])
    torch.set_rng_state(state["rng"])
    return step, state.get("pieces") or [unrecorded_piece(step)]


def recorded_architectures(state: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """The checkpoint's networks as their configs read them today: missing fields take defaults
    (a checkpoint from before the twin existed describes a critic without one)."""
    recorded = state.get("architectures")
    if recorded is None:
        return None
    return {
        "generator": GeneratorConfig.from_dict(recorded["generator"]).to_dict(),
        "discriminator": DiscriminatorConfig.from_dict(recorded["discriminator"]).to_dict(),
    }


def lacks_only_the_twin(
    recorded: dict[str, dict[str, Any]] | None, expected: dict[str, dict[str, Any]]
) -> bool:
    if recorded is None or recorded["discriminator"]["twin_head"]:
        return False
    with_twin = {**recorded["discriminator"], "twin_head": True}
    return recorded["generator"] == expected["generator"] and with_twin == expected["discriminator"]


TWIN_KEYS = ["classify_twin.weight", "classify_twin.bias"]


def graft_twin(state: dict[str, Any], parts: Mapping[str, Stateful], path: Path) -> None:
    """Give a twin-less checkpoint the freshly built critic's twin: its weights, and places in
    the critic's Adam with no state. The twin is the critic's last module, so its parameters take
    the next indices; anything else missing is a mismatch, not something to fill in."""
    built = parts["discriminator"].state_dict()
    missing = [key for key in built if key not in state["discriminator"]]
    if missing != TWIN_KEYS or list(built)[-len(TWIN_KEYS) :] != TWIN_KEYS:
        raise CheckpointMismatch(
            f"{path}: the critic lacks {missing}, not just the twin head {TWIN_KEYS} last"
        )
    state["discriminator"].update({key: built[key] for key in TWIN_KEYS})
    (group,) = state["opt_d"]["param_groups"]
    (built_group,) = parts["opt_d"].state_dict()["param_groups"]
    group["params"] = [*group["params"], *built_group["params"][len(group["params"]) :]]
