"""What the adversarial models share: a generator, a discriminator, and their alternating updates.

One training step is a discriminator update, then a generator update (``update_steps``). The
generator's output of the discriminator step is kept for the generator step, so that each step
runs the generator once.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import nn

from mri2pet_cli.models.base import Synthesizer
from mri2pet_cli.models.losses import adversarial_loss


class AdversarialSynthesizer(Synthesizer):
    """A T1 -> PET generator trained against a discriminator.

    Subclasses build ``self.generator`` and ``self.discriminator`` and define the generator's
    reconstruction terms (:meth:`reconstruction_losses`). ``conditional`` discriminators see the
    T1 with the PET (pix2pix); the others see the PET alone (GLA-GAN).
    """

    generator: nn.Module
    discriminator: nn.Module
    conditional: bool = False
    adversarial: str = "bce"
    adversarial_weight: float = 1.0
    betas: tuple[float, float] = (0.5, 0.999)

    def forward(self, t1: torch.Tensor) -> torch.Tensor:
        return self.generator(t1)

    def training_only_prefixes(self) -> tuple[str, ...]:
        return ("discriminator.",)

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [
            torch.optim.Adam(self.generator.parameters(), lr=lr, betas=self.betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=self.betas),
        ]

    def update_steps(self) -> list[tuple[str, list[int]]]:
        return [("discriminator", [1]), ("generator", [0])]

    def judge(self, t1: torch.Tensor, pet: torch.Tensor) -> torch.Tensor:
        return self.discriminator(torch.cat([t1, pet], dim=1) if self.conditional else pet)

    @abstractmethod
    def reconstruction_losses(self, pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The generator's paired terms (weighted), e.g. {"l1": ...}; summed with the adversarial term."""

    def training_views(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """What the generator and discriminator see in training: the volumes (3D models) or slice stacks (2D)."""
        return [batch]

    def _generated(self, batch: dict[str, torch.Tensor]) -> tuple[list[dict], list[torch.Tensor]]:
        """The views of ``batch`` and the generator's output on each: made once per step, kept for the next update."""
        cached = getattr(self, "_fake", None)
        if cached is not None and cached[0] is batch["t1"]:
            return cached[1], cached[2]
        views = self.training_views(batch)
        fakes = [self.generator(v["t1"]) * v["mask"] for v in views]
        self._fake = (batch["t1"], views, fakes)
        return views, fakes

    def training_losses(self, batch: dict[str, torch.Tensor], step: str = "generator") -> dict[str, torch.Tensor]:
        views, fakes = self._generated(batch)
        if step == "discriminator":
            real = sum(adversarial_loss(self.judge(v["t1"], v["pet"]), True, self.adversarial) for v in views)
            false = sum(
                adversarial_loss(self.judge(v["t1"], f.detach()), False, self.adversarial) for v, f in zip(views, fakes)
            )
            real, false = real / len(views), false / len(views)
            return {"real": real, "fake": false, "loss": 0.5 * (real + false)}
        self._fake = None  # the generator update ends the step
        losses: dict[str, torch.Tensor] = {}
        for view, fake in zip(views, fakes):
            for key, value in self.reconstruction_losses(fake, view).items():
                losses[key] = losses.get(key, 0.0) + value / len(views)
        fooled = sum(adversarial_loss(self.judge(v["t1"], f), True, self.adversarial) for v, f in zip(views, fakes))
        losses["adversarial"] = fooled / len(views)
        losses["loss"] = self.adversarial_weight * losses["adversarial"] + sum(
            v for k, v in losses.items() if k != "adversarial"
        )
        return losses

    @torch.no_grad()
    def synthesize(self, t1, mask, age=None, *, samples=1, temperature=1.0, generator=None):
        return (self(t1) * mask).clamp_min(0.0), None


def receptive_field(kernels: list[int], strides: list[int]) -> int:
    """Receptive field (voxels per axis) of a stack of convolutions."""
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides):
        field += (kernel - 1) * jump
        jump *= stride
    return field
