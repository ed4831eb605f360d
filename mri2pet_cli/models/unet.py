"""3D U-Net baseline (the "3D U-Net" of the GLA-GAN paper's comparisons), trained with L1 (+ optional SSIM)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mri2pet_cli.models.base import Synthesizer
from mri2pet_cli.models.losses import masked_l1, ssim_loss
from mri2pet_cli.models.registry import register

LAYERS = {  # the same networks on slices (2) or volumes (3)
    2: {"conv": nn.Conv2d, "up": nn.ConvTranspose2d, "norm": nn.InstanceNorm2d, "batch_norm": nn.BatchNorm2d,
        "dropout": nn.Dropout2d, "pool": F.max_pool2d, "pad": nn.ReflectionPad2d},
    3: {"conv": nn.Conv3d, "up": nn.ConvTranspose3d, "norm": nn.InstanceNorm3d, "batch_norm": nn.BatchNorm3d,
        "dropout": nn.Dropout3d, "pool": F.max_pool3d, "pad": nn.ReflectionPad3d},
}  # fmt: skip


def conv_block(cin: int, cout: int, dims: int = 3) -> nn.Sequential:
    layer = LAYERS[dims]
    return nn.Sequential(
        layer["conv"](cin, cout, 3, padding=1, bias=False),
        layer["norm"](cout, affine=True),
        nn.LeakyReLU(0.1, inplace=True),
        layer["conv"](cout, cout, 3, padding=1, bias=False),
        layer["norm"](cout, affine=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def build_unet_layers(module: nn.Module, base: int, levels: int, dropout_levels: int = 0, dims: int = 3) -> None:
    """Give ``module`` the layers of a U-Net (``down``, ``up``, ``merge``, ``head``); dropout 0.5 after the
    deepest ``dropout_levels`` decoder blocks (pix2pix)."""
    widths = [base * 2**i for i in range(levels)]
    module.down = nn.ModuleList()
    cin = 1
    for w in widths:
        module.down.append(conv_block(cin, w, dims))
        cin = w
    module.up, module.merge = nn.ModuleList(), nn.ModuleList()
    for i, w in enumerate(reversed(widths[:-1])):
        module.up.append(LAYERS[dims]["up"](cin, w, 2, stride=2))
        block = conv_block(2 * w, w, dims)
        module.merge.append(nn.Sequential(block, LAYERS[dims]["dropout"](0.5)) if i < dropout_levels else block)
        cin = w
    module.head = LAYERS[dims]["conv"](cin, 1, 1)


def unet_forward(module: nn.Module, x: torch.Tensor, levels: int) -> torch.Tensor:
    """Encoder with max-pooling, decoder with transposed convolutions and skips; raw 1-channel output."""
    skips = []
    for i, block in enumerate(module.down):
        x = block(x)
        if i < levels - 1:
            skips.append(x)
            x = LAYERS[x.dim() - 2]["pool"](x, 2)
    for up, merge in zip(module.up, module.merge):
        x = merge(torch.cat([up(x), skips.pop()], dim=1))
    return module.head(x)


@register(
    "unet",
    summary="3D U-Net baseline, masked L1 regression (optional SSIM term, off in the shipped weights)",
    conditioning="none",
    training="paired",
    paper="GLA-GAN paper (002) baseline; Ronneberger et al. / Cicek et al. 3D U-Net",
)
class UNet3D(Synthesizer):
    """Encoder-decoder with skip connections: ``levels`` resolutions, channels doubling from ``base``."""

    name = "unet"

    def __init__(self, base: int = 16, levels: int = 4, ssim_weight: float = 0.0) -> None:
        super().__init__()
        self.base, self.levels, self.ssim_weight = base, levels, ssim_weight
        build_unet_layers(self, base, levels)

    def config(self) -> dict:
        return {"base": self.base, "levels": self.levels, "ssim_weight": self.ssim_weight}

    def forward(self, t1: torch.Tensor) -> torch.Tensor:
        return unet_forward(self, t1, self.levels)

    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = self(batch["t1"]) * batch["mask"]
        l1 = masked_l1(pred, batch["pet"], batch["mask"])
        losses = {"l1": l1, "loss": l1}
        if self.ssim_weight > 0:
            losses["ssim"] = ssim_loss(pred.float(), batch["pet"].float())
            losses["loss"] = l1 + self.ssim_weight * losses["ssim"]
        return losses

    @torch.no_grad()
    def synthesize(self, t1, mask, age=None, *, samples=1, temperature=1.0, generator=None):
        return (self(t1) * mask).clamp_min(0.0), None
