"""pix2pix in 3D (Isola et al. 2017; seeds 001 and 003): U-Net generator, PatchGAN discriminator on (T1, PET).

Choices the papers leave open on this grid, also in the card (``card_notes``):
- Generator: the 3D U-Net of pix2pix with skips, dropout 0.5 in the decoder's deepest ``dropout_levels``
  blocks (pix2pix: the first three of eight at 256 px; our grid has four levels) and kept at test time
  off (the point estimate; pix2pix keeps it on for noise). Output sigmoid x ``suvr_max`` (pix2pix: tanh
  of [-1, 1] images; the same map onto our SUVR range).
- Discriminator: PatchGAN with ``patch_layers`` stride-2 4x4x4 convolutions (BatchNorm after the first,
  LeakyReLU 0.2) then two stride-1 ones, as pix2pix's 70x70 discriminator. With 3 layers its receptive
  field is 70 voxels = 175 mm on the 2.5 mm grid, most of the brain; the default 2 layers gives 34 voxels
  (85 mm), a patch of cortex and its neighbours: the "judge texture, leave layout to L1" idea of pix2pix.
- Loss: BCE adversarial + lambda L1 (lambda = 100, inside the brain mask); Adam 2e-4, beta1 0.5.
- Widths: ``base`` 16 (pix2pix: 64), so that it trains on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

from mri2pet_cli.models.adversarial import AdversarialSynthesizer, receptive_field
from mri2pet_cli.models.base import documented_choices
from mri2pet_cli.models.losses import masked_l1
from mri2pet_cli.models.registry import register
from mri2pet_cli.models.unet import LAYERS, build_unet_layers, unet_forward


class UNetGenerator(nn.Module):
    """The U-Net of ``unet`` with dropout in the deepest decoder blocks; output in [0, suvr_max]."""

    def __init__(self, base: int, levels: int, dropout_levels: int, suvr_max: float, dims: int = 3) -> None:
        super().__init__()
        self.levels, self.suvr_max = levels, suvr_max
        build_unet_layers(self, base, levels, dropout_levels, dims)

    def forward(self, t1: torch.Tensor) -> torch.Tensor:
        return self.suvr_max * torch.sigmoid(unet_forward(self, t1, self.levels))


def patch_discriminator(
    in_channels: int, base: int, layers: int, dims: int = 3, norm: str = "batch_norm"
) -> tuple[nn.Sequential, int]:
    """pix2pix's PatchGAN (on volumes or slices) and its receptive field in voxels.

    ``norm``: "batch_norm" (pix2pix) or "norm" (instance normalisation, CycleGAN)."""
    conv, normalise = LAYERS[dims]["conv"], LAYERS[dims][norm]
    modules: list[nn.Module] = [conv(in_channels, base, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
    width = base
    for i in range(1, layers):
        nxt = base * min(2**i, 8)
        modules += [conv(width, nxt, 4, stride=2, padding=1), normalise(nxt), nn.LeakyReLU(0.2, True)]
        width = nxt
    nxt = base * min(2**layers, 8)
    modules += [conv(width, nxt, 4, stride=1, padding=1), normalise(nxt), nn.LeakyReLU(0.2, True)]
    modules.append(conv(nxt, 1, 4, stride=1, padding=1))
    field = receptive_field([4] * (layers + 2), [2] * layers + [1, 1])
    return nn.Sequential(*modules), field


@register(
    "pix2pix-3d",
    summary="pix2pix in 3D: U-Net generator + PatchGAN discriminator on (T1, PET), BCE + 100 x L1",
    conditioning="none",
    training="paired",
    paper="Isola et al. 2017 (pix2pix); seeds 001 (slides) and 003 (pix2pix for MRI-to-PET)",
)
class Pix2Pix3D(AdversarialSynthesizer):
    name = "pix2pix-3d"
    conditional = True

    def __init__(
        self,
        base: int = 16,
        levels: int = 4,
        dropout_levels: int = 2,
        patch_layers: int = 2,
        discriminator_base: int = 16,
        l1_weight: float = 100.0,
        suvr_max: float = 3.0,
    ) -> None:
        super().__init__()
        self.options = {
            "base": base,
            "levels": levels,
            "dropout_levels": dropout_levels,
            "patch_layers": patch_layers,
            "discriminator_base": discriminator_base,
            "l1_weight": l1_weight,
            "suvr_max": suvr_max,
        }
        self.generator = UNetGenerator(base, levels, dropout_levels, suvr_max)
        self.discriminator, self.receptive_field = patch_discriminator(2, discriminator_base, patch_layers)

    def config(self) -> dict:
        return dict(self.options)

    def reconstruction_losses(self, pred, batch):
        return {"l1": self.options["l1_weight"] * masked_l1(pred, batch["pet"], batch["mask"])}

    def card_notes(self) -> dict:
        return {
            "discriminator_receptive_field_voxels": self.receptive_field,
            "discriminator_receptive_field_mm_at_2.5mm": self.receptive_field * 2.5,
            "loss": f"BCE adversarial + {self.options['l1_weight']:g} x masked L1; Adam 2e-4, betas (0.5, 0.999)",
            "choices": documented_choices(__doc__),
        }
