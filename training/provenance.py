"""The pieces of a run: each stretch of steps that one start or ``--resume`` trained, with what it
ran on and the options it trained with. A run resumed across sessions and machines records each
piece in its checkpoint and its manifest, since its numbers, and its bits, depend on all of them
(one thread or two, bfloat16 or float32, another option for a while: training/README.md)."""

from __future__ import annotations

import json
from typing import Any, NotRequired, TypedDict

import torch

from gan.device import hardware_name
from training.config import RUN_FIELDS, TrainConfig, arithmetic, options_record

# A field the piece's code did not have yet (it was recorded by an older TrainConfig).
NOT_RECORDED = "<not recorded>"


class Piece(TypedDict):
    """One stretch of a run, as its checkpoint keeps it (a plain dict: ``torch.load`` reads it
    back with ``weights_only``). An unrecorded piece has only its steps and ``recorded: False``."""

    from_step: int
    to_step: int  # the last step checkpointed (or exported) by this piece
    recorded: bool
    options: NotRequired[dict[str, Any]]  # trained_options of the piece's configuration
    hardware: NotRequired[str]
    threads: NotRequired[int]
    processes: NotRequired[int]
    arithmetic: NotRequired[str]
    torch: NotRequired[str]


def new_piece(config: TrainConfig, from_step: int, device: torch.device, processes: int) -> Piece:
    """The piece a process starts at ``from_step``; its ``to_step`` grows with each checkpoint."""
    return {
        "from_step": from_step,
        "to_step": from_step,
        "recorded": True,
        "options": trained_options(config),
        "hardware": hardware_name(device),
        "threads": torch.get_num_threads(),
        "processes": processes,
        "arithmetic": arithmetic(config, device),
        "torch": str(torch.__version__),  # a str subclass that weights_only cannot read back
    }


def unrecorded_piece(to_step: int) -> Piece:
    """What a checkpoint written before pieces were recorded says of its steps: nothing more."""
    return {"from_step": 0, "to_step": to_step, "recorded": False}


def trained_options(config: TrainConfig) -> dict[str, Any]:
    """The options that shape what is trained (not where files go), as JSON has them."""
    options = {
        name: value for name, value in options_record(config).items() if name not in RUN_FIELDS
    }
    normalised: dict[str, Any] = json.loads(json.dumps(options))  # tuples become lists
    return normalised


def pieces_record(config: TrainConfig, pieces: list[Piece]) -> list[dict[str, Any]]:
    """The manifest's account of the pieces: each one's options as the fields in which it
    differed from the run's recorded ones (those of the piece that exported it, the manifest's
    ``training``; a field the piece's code did not have reads NOT_RECORDED)."""
    final = trained_options(config)
    record = []
    for piece in pieces:
        # A piece with options was recorded, also by code from before the "recorded" key.
        entry: dict[str, Any] = {"recorded": "options" in piece}
        entry.update((key, value) for key, value in piece.items() if key != "options")
        if "options" in piece:
            options = piece["options"]
            entry["differs"] = {
                name: options.get(name, NOT_RECORDED)
                for name in final.keys() | options.keys()
                if options.get(name, NOT_RECORDED) != final.get(name, NOT_RECORDED)
            }
        record.append(entry)
    return record
