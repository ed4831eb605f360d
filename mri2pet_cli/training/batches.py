"""One optimisation step: a batch of subjects, its augmentation, and the model's updates on it."""

from __future__ import annotations

import numpy as np

from mri2pet_cli.models.runtime import autocast
from mri2pet_cli.preprocessing.cohort import Arrays


def make_batch(arrays: Arrays, index: np.ndarray, device, pet_index: np.ndarray | None = None) -> dict:
    """T1, mask, PET and age of the subjects ``index``; with ``pet_index`` (unpaired models) the PETs, and
    their brain masks as ``pet_mask``, come from those other subjects."""
    import torch

    batch = {
        "t1": torch.from_numpy(arrays.t1[index, None]),
        "mask": torch.from_numpy(arrays.mask[index, None]),
        "pet": torch.from_numpy(arrays.pet[index if pet_index is None else pet_index, None]),
        "age": torch.from_numpy(arrays.age[index]),
    }
    if pet_index is not None:
        batch["pet_mask"] = torch.from_numpy(arrays.mask[pet_index, None])
    return {k: v.to(device) for k, v in batch.items()}


def augment_batch(batch: dict, rng: np.random.Generator) -> dict:
    """Left-right flip, +-2 voxel shifts and +-5 % T1 gain, the same for T1, mask and PET."""
    import torch

    out = dict(batch)
    volumes = [k for k in ("t1", "mask", "pet", "pet_mask") if k in out]
    if rng.random() < 0.5:
        for k in volumes:
            out[k] = torch.flip(out[k], dims=[2])
    shifts = [int(s) for s in rng.integers(-2, 3, size=3)]
    for k in volumes:
        out[k] = torch.roll(out[k], shifts=shifts, dims=(2, 3, 4))
    out["t1"] = out["t1"] * float(rng.uniform(0.95, 1.05))
    return out


def run_updates(model, optimizers: list, batch: dict, device, precision: str, after_backward=None) -> dict[str, float]:
    """The model's updates for one batch, in its order (one, or discriminator then generator); their logs.

    ``after_backward()`` runs between each backward pass and its step (distributed runs average there).
    """
    logs: dict[str, float] = {}
    for step, indices in model.update_steps():
        stepping = [optimizers[i] for i in indices] if indices else optimizers
        with autocast(device, precision):
            losses = model.training_losses(batch, step) if step else model.training_losses(batch)
        for opt in optimizers:  # every gradient, so that one update's backward never leaks into the next
            opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if after_backward:
            after_backward()
        for opt in stepping:
            opt.step()
        prefix = f"{step[0]}_" if step else ""  # g_loss, d_loss, ...
        logs |= {prefix + k: float(v.detach()) for k, v in losses.items()}
    if "loss" not in logs:
        logs["loss"] = logs.get("g_loss", 0.0)
    return logs
