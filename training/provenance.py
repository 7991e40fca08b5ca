"""The pieces of a run: each stretch of steps that one start or ``--resume`` trained, with what it
ran on and the options it trained with. A run resumed across sessions and machines records each
piece in its checkpoint and its manifest, since its numbers, and its bits, depend on all of them
(one thread or two, bfloat16 or float32, another option for a while: training/README.md)."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypedDict

import torch

from training.config import RUN_FIELDS, TrainConfig


class Piece(TypedDict, total=False):
    """One stretch of a run, as its checkpoint keeps it (a plain dict: ``torch.load`` reads it
    back with ``weights_only``). An unrecorded piece has only its steps and ``recorded: False``."""

    from_step: int
    to_step: int
    recorded: bool
    options: dict[str, Any]  # trained_options of the piece's configuration
    hardware: str
    threads: int
    processes: int
    arithmetic: str
    torch: str


def new_piece(
    config: TrainConfig, from_step: int, device: torch.device, bfloat16: bool, processes: int
) -> Piece:
    """The piece a process starts at ``from_step``; its ``to_step`` grows with each checkpoint."""
    return {
        "from_step": from_step,
        "to_step": from_step,
        "options": trained_options(config),
        "hardware": hardware(device),
        "threads": torch.get_num_threads(),
        "processes": processes,
        "arithmetic": "bfloat16" if bfloat16 else "float32",
        "torch": str(torch.__version__),
    }


def unrecorded_piece(to_step: int) -> Piece:
    """What a checkpoint written before pieces were recorded says of its steps: nothing."""
    return {"from_step": 0, "to_step": to_step, "recorded": False}


def trained_options(config: TrainConfig) -> dict[str, Any]:
    """The options that shape what is trained (not where files go), as the manifest writes them
    in JSON: the schedule in the CLI's syntax, tuples as lists."""
    options = {name: value for name, value in asdict(config).items() if name not in RUN_FIELDS}
    options["aux_classifier_schedule"] = str(config.aux_classifier_schedule)
    normalised: dict[str, Any] = json.loads(json.dumps(options))
    return normalised


def pieces_record(config: TrainConfig, pieces: list[Piece]) -> list[dict[str, Any]]:
    """The manifest's account of the pieces: each one's options as the fields in which it
    differed from the run's recorded ones (the last piece's, the manifest's ``training``)."""
    final = trained_options(config)
    record = []
    for piece in pieces:
        entry: dict[str, Any] = {key: value for key, value in piece.items() if key != "options"}
        if "options" in piece:
            entry["differs"] = {
                name: value for name, value in piece["options"].items() if final.get(name) != value
            }
        record.append(entry)
    return record


def hardware(device: torch.device) -> str:
    """The accelerator's name, or the CPU's model (where the OS names it)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
