"""Placing a training process: its device and, under ``torchrun``, its rank in the process group
(NCCL on GPUs, gloo on CPUs). Alone, a process is rank 0 of a world of one."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from gan.device import pick_device


@dataclass
class Distributed:
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def close(self) -> None:
        if self.world_size > 1:
            # Leave together: a rank tearing gloo down while another still finishes its last
            # step could abort ("terminate called without an active exception", 2 runs in 12
            # of tests/training/test_distributed.py before this barrier, 0 in 16 after).
            dist.barrier()
            dist.destroy_process_group()


def place(device_name: str) -> tuple[Distributed, torch.device]:
    """Join torchrun's process group if there is one, and pick this process's device."""
    device = pick_device(device_name)
    ddp = init_distributed(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return ddp, device


def init_distributed(device: torch.device) -> Distributed:
    """Join the process group when launched by torchrun (WORLD_SIZE set), else run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Distributed()
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank=dist.get_rank(), world_size=world_size)
