"""Training under ``torchrun``: one process per device, each global batch split among them by subject.

Gradients are averaged by hand after each backward pass (an all-reduce weighted by each rank's number
of subjects), not by wrapping the model in DistributedDataParallel: the adversarial models take two
update steps per batch through ``training_losses``, which DDP's one hooked ``forward`` cannot follow.
The arithmetic is DDP's. Without ``torchrun`` (WORLD_SIZE unset or 1) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Only rank 0 writes files."""
        return self.rank == 0

    def start(self, device):
        """Join the process group (NCCL on GPUs, gloo on CPUs); returns this rank's device."""
        import torch
        import torch.distributed as dist

        if not self.active:
            return device
        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return device

    def stop(self) -> None:
        import torch.distributed as dist

        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def share(self, index: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's subjects of a global batch (every world-th) and its weight (its share of them).

        A rank left without a subject (a batch smaller than the world) computes on the batch's first
        subject with weight 0, so that every rank takes part in every all-reduce.
        """
        if not self.active:
            return index, 1.0
        mine = index[self.rank :: self.world]
        if len(mine) == 0:
            return index[:1], 0.0
        return mine, len(mine) / len(index)

    def average_gradients(self, model, weight: float) -> None:
        """Sum over ranks of ``weight`` x gradient: the gradient of the loss over the global batch."""
        import torch.distributed as dist

        if not self.active:
            return
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(weight)
                dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
