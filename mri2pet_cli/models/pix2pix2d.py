"""pix2pix on 2D slices (seed 003: axial slices, and its augmented model trained on all three planes).

Choices the paper leaves open on this grid, also in the card (``card_notes``):
- Slices of the model-grid volumes (2.5 mm): axial 64 x 80, coronal 64 x 64, sagittal 80 x 64 pixels.
  Training takes ``slices_per_volume`` slices per volume and plane at random among those with brain, so
  that one step of 2 subjects is a batch of 32 slices per plane (the paper trains on single slices).
- ``planes="axial"``: the paper's first model. ``planes="all"``: its augmented model; every step holds
  slices of the three planes (three generator passes), and at synthesis the three stacks are predicted
  and fused by the voxel-wise mean (the paper does not say how a three-plane model is reassembled).
- Generator: the 2D U-Net of pix2pix with skips, dropout 0.5 in the deepest ``dropout_levels`` decoder
  blocks, off at test time; output sigmoid x ``suvr_max``.
- Discriminator: 2D PatchGAN on (T1, PET) slices, BatchNorm, LeakyReLU 0.2. pix2pix's 70 x 70 patch
  (3 stride-2 layers) covers a whole 64 x 80 slice here; the default 2 layers give 34 x 34 pixels
  (85 mm), the "judge texture locally" idea at this pixel size. 3 layers is a config.
- Loss: BCE adversarial + 100 x L1 (masked to the brain); Adam 2e-4, beta1 0.5 (pix2pix).
- Widths: ``base`` 32 (pix2pix: 64), so that it trains on a CPU.
"""

from __future__ import annotations

import torch

from mri2pet_cli.models.adversarial import AdversarialSynthesizer
from mri2pet_cli.models.base import documented_choices
from mri2pet_cli.models.losses import masked_l1
from mri2pet_cli.models.pix2pix import UNetGenerator, patch_discriminator
from mri2pet_cli.models.registry import register

# plane -> the volume axis held fixed (model grid axes: 0 left-right, 1 posterior-anterior, 2 inferior-superior)
PLANE_AXES = {"axial": 2, "coronal": 1, "sagittal": 0}
PLANE_SETS = {"axial": ("axial",), "all": ("axial", "coronal", "sagittal")}
# Slices per generator call at synthesis: 8 at a time keep the activations in cache (2.6 s for the three
# planes on 2 CPU cores, against 5.1 s for each plane's whole stack at once); results do not depend on it.
SYNTHESIS_CHUNK = 8


def to_slices(volume: torch.Tensor, axis: int) -> torch.Tensor:
    """(N, C, X, Y, Z) -> (N * S, C, a, b): the slices across ``axis``, subject by subject."""
    moved = volume.movedim(2 + axis, 2)  # (N, C, S, a, b)
    n, c, s = moved.shape[:3]
    return moved.transpose(1, 2).reshape(n * s, c, *moved.shape[3:])


def from_slices(slices: torch.Tensor, n: int, axis: int) -> torch.Tensor:
    """The inverse of :func:`to_slices`."""
    s = slices.shape[0] // n
    moved = slices.reshape(n, s, *slices.shape[1:]).transpose(1, 2)  # (N, C, S, a, b)
    return moved.movedim(2, 2 + axis)


@register(
    "pix2pix-2d",
    summary="pix2pix on 2D slices (axial, or all three planes fused by the mean), BCE + 100 x L1",
    conditioning="none",
    training="paired",
    paper="seed 003 (pix2pix for MRI-to-PET on slices); Isola et al. 2017",
)
class Pix2Pix2D(AdversarialSynthesizer):
    name = "pix2pix-2d"
    conditional = True

    def __init__(
        self,
        planes: str = "all",
        base: int = 32,
        levels: int = 4,
        dropout_levels: int = 2,
        patch_layers: int = 2,
        discriminator_base: int = 32,
        slices_per_volume: int = 16,
        l1_weight: float = 100.0,
        suvr_max: float = 3.0,
    ) -> None:
        super().__init__()
        if planes not in PLANE_SETS:
            raise ValueError(f"planes must be one of {tuple(PLANE_SETS)}")
        self.options = {
            "planes": planes,
            "base": base,
            "levels": levels,
            "dropout_levels": dropout_levels,
            "patch_layers": patch_layers,
            "discriminator_base": discriminator_base,
            "slices_per_volume": slices_per_volume,
            "l1_weight": l1_weight,
            "suvr_max": suvr_max,
        }
        self.generator = UNetGenerator(base, levels, dropout_levels, suvr_max, dims=2)
        self.discriminator, self.receptive_field = patch_discriminator(2, discriminator_base, patch_layers, dims=2)

    def config(self) -> dict:
        return dict(self.options)

    def forward(self, t1: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Each plane's stack of slices predicted, reassembled to a volume; the planes' mean.

        With ``mask``, slices without brain are not predicted (zero): every brain voxel lies on a
        brain slice of each plane, so the masked output is the same, and synthesis ~8 % faster.
        """
        planes = PLANE_SETS[self.options["planes"]]
        total = 0.0
        for plane in planes:
            axis = PLANE_AXES[plane]
            slices = to_slices(t1, axis)
            if mask is None:
                predicted = self._predict(slices)
            else:
                brain = to_slices(mask, axis).flatten(1).amax(1) > 0
                predicted = slices.new_zeros(slices.shape)
                if brain.any():
                    predicted[brain] = self._predict(slices[brain]).to(predicted.dtype)  # bf16 under autocast
            total = total + from_slices(predicted, t1.shape[0], axis)
        return total / len(planes)

    @torch.no_grad()
    def synthesize(self, t1, mask, age=None, *, samples=1, temperature=1.0, generator=None):
        return (self(t1, mask) * mask).clamp_min(0.0), None

    def _predict(self, slices: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.generator(chunk) for chunk in slices.split(SYNTHESIS_CHUNK)])

    def training_views(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Per plane, ``slices_per_volume`` random slices with brain of each volume (torch's seeded RNG)."""
        views = []
        for plane in PLANE_SETS[self.options["planes"]]:
            axis = PLANE_AXES[plane]
            stacks = {key: to_slices(batch[key], axis) for key in ("t1", "pet", "mask")}
            brain = torch.nonzero(stacks["mask"].flatten(1).sum(1) > 0).flatten()
            if len(brain) == 0:
                brain = torch.arange(stacks["mask"].shape[0], device=stacks["mask"].device)
            count = min(len(brain), self.options["slices_per_volume"] * batch["t1"].shape[0])
            chosen = brain[torch.randperm(len(brain))[:count].to(brain.device)]
            views.append({key: value[chosen] for key, value in stacks.items()})
        return views

    def reconstruction_losses(self, pred, batch):
        return {"l1": self.options["l1_weight"] * masked_l1(pred, batch["pet"], batch["mask"])}

    def card_notes(self) -> dict:
        return {
            "planes": list(PLANE_SETS[self.options["planes"]]),
            "fusion": "voxel-wise mean of the planes' reassembled volumes" if self.options["planes"] == "all" else None,
            "discriminator_receptive_field_pixels": self.receptive_field,
            "choices": documented_choices(__doc__),
        }
