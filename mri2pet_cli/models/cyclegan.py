"""CycleGAN in 3D (Zhu et al. 2017; seed 001) for labs whose T1s and PETs are not paired.

Choices the papers leave open on this grid, also in the card (``card_notes``):
- Generators: CycleGAN's ResNet generator in 3D: c7s1-k, d2k, d4k, ``blocks`` residual blocks, u2k,
  uk, c7s1-1, instance normalisation, reflection padding. 6 blocks (CycleGAN: 6 at 128 px, 9 at 256;
  after two down-samplings our grid is 16 x 20 x 16, so 6 blocks already see the whole brain); k = ``base``
  16 (CycleGAN: 64) so that it trains on a CPU. Outputs sigmoid x ``suvr_max`` (PET) or x ``t1_max`` (T1).
- Discriminators: PatchGAN on one modality, instance normalisation, ``patch_layers`` 2 (34 voxels =
  85 mm; CycleGAN's 70 x 70 at 3 layers would cover most of the brain on this grid).
- Losses: LSGAN; cycle consistency (L1) weight 10; identity weight 0 (the CycleGAN paper uses 0.5 x
  lambda to keep colours between photos and paintings; across modalities it asks G_T1->PET(PET) = PET and
  pulls the PET generator towards passing T1 contrast through; the v2 weights, trained with 0.5, correlate
  with the T1 at r 0.30-0.33 where the real PET does at 0.07-0.10); all L1 terms inside the brain masks.
  Image pools of 50 fakes per discriminator. Adam 2e-4, beta1 0.5. The generators step first, then the
  discriminators on the pool.
- ``pairing``: "independent" (default) draws every T1 and PET of a step from independent orders of the
  training subjects; "disjoint-halves" takes T1s from one half of the training subjects and PETs from the
  other, so that no pair is ever seen; "paired" gives each T1 its own PET (the loss never uses the pair).
- The shipped file holds all four networks (the reverse generator and both judges too, 2.3x the size),
  so that a later run (`--init-weights`) continues the whole game; synthesis uses only ``to_pet``.
- The pools are not in the checkpoint: a resumed run starts them empty. Subjects with only a T1 or only
  a PET cannot train it yet: `mri2pet preprocess` puts a PET into MNI space through its own T1.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mri2pet_cli.models.base import Synthesizer, documented_choices
from mri2pet_cli.models.losses import adversarial_loss, masked_l1
from mri2pet_cli.models.pix2pix import patch_discriminator
from mri2pet_cli.models.registry import register

PAIRINGS = ("independent", "disjoint-halves", "paired")


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad3d(1),
            nn.Conv3d(width, width, 3),
            nn.InstanceNorm3d(width),
            nn.ReLU(True),
            nn.ReflectionPad3d(1),
            nn.Conv3d(width, width, 3),
            nn.InstanceNorm3d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-k, d2k, d4k, R x residual, u2k, uk, c7s1-1; output in [0, out_max]."""

    def __init__(self, base: int, blocks: int, out_max: float) -> None:
        super().__init__()
        self.out_max = out_max
        layers: list[nn.Module] = [nn.ReflectionPad3d(3), nn.Conv3d(1, base, 7), nn.InstanceNorm3d(base), nn.ReLU(True)]
        for width in (base, 2 * base):
            layers += [nn.Conv3d(width, 2 * width, 3, stride=2, padding=1), nn.InstanceNorm3d(2 * width), nn.ReLU(True)]
        layers += [ResidualBlock(4 * base) for _ in range(blocks)]
        for width in (4 * base, 2 * base):
            layers += [
                nn.ConvTranspose3d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm3d(width // 2),
                nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad3d(3), nn.Conv3d(base, 1, 7)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_max * torch.sigmoid(self.net(x))


class ImagePool:
    """CycleGAN's history of generated images: half the time an older fake is shown to the discriminator."""

    def __init__(self, size: int) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image[None]
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                slot = int(torch.randint(len(self.images), ()))
                out.append(self.images[slot])
                self.images[slot] = image
            else:
                out.append(image)
        return torch.cat(out)


@register(
    "cyclegan-3d",
    summary="CycleGAN in 3D for unpaired T1s and PETs: ResNet generators both ways, LSGAN, cycle 10",
    conditioning="none",
    training="unpaired",
    paper="Zhu et al. 2017 (CycleGAN); seed 001 (slides on pix2pix and CycleGAN)",
)
class CycleGan3D(Synthesizer):
    name = "cyclegan-3d"
    betas = (0.5, 0.999)

    def __init__(
        self,
        base: int = 16,
        blocks: int = 6,
        patch_layers: int = 2,
        discriminator_base: int = 16,
        cycle_weight: float = 10.0,
        identity_weight: float = 0.0,
        pool_size: int = 50,
        pairing: str = "independent",
        suvr_max: float = 3.0,
        t1_max: float = 2.0,
    ) -> None:
        super().__init__()
        if pairing not in PAIRINGS:
            raise ValueError(f"pairing must be one of {PAIRINGS}")
        self.options = {
            "base": base,
            "blocks": blocks,
            "patch_layers": patch_layers,
            "discriminator_base": discriminator_base,
            "cycle_weight": cycle_weight,
            "identity_weight": identity_weight,
            "pool_size": pool_size,
            "pairing": pairing,
            "suvr_max": suvr_max,
            "t1_max": t1_max,
        }
        self.to_pet = ResnetGenerator(base, blocks, suvr_max)
        self.to_t1 = ResnetGenerator(base, blocks, t1_max)
        self.judge_pet, self.receptive_field = patch_discriminator(1, discriminator_base, patch_layers, norm="norm")
        self.judge_t1, _ = patch_discriminator(1, discriminator_base, patch_layers, norm="norm")
        self.pools = {"pet": ImagePool(pool_size), "t1": ImagePool(pool_size)}
        self._fakes: tuple | None = None

    def config(self) -> dict:
        return dict(self.options)

    def forward(self, t1: torch.Tensor) -> torch.Tensor:
        return self.to_pet(t1)

    def training_only_prefixes(self) -> tuple[str, ...]:
        return ("to_t1.", "judge_pet.", "judge_t1.")

    def shipped_training_prefixes(self) -> tuple[str, ...]:
        return self.training_only_prefixes()  # a later run continues the whole game, not one generator

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        generators = list(self.to_pet.parameters()) + list(self.to_t1.parameters())
        judges = list(self.judge_pet.parameters()) + list(self.judge_t1.parameters())
        return [
            torch.optim.Adam(generators, lr=lr, betas=self.betas),
            torch.optim.Adam(judges, lr=lr, betas=self.betas),
        ]

    def update_steps(self) -> list[tuple[str, list[int]]]:
        return [("generator", [0]), ("discriminator", [1])]

    def draw_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        pairing = self.options["pairing"]
        if pairing == "paired":
            return rng.permutation(n), None
        if pairing == "independent":
            return rng.permutation(n), rng.permutation(n)
        half = n // 2  # disjoint halves: no step ever holds a T1 and the PET of the same subject
        t1_order, pet_order = rng.permutation(half), half + rng.permutation(n - half)
        return t1_order, np.resize(pet_order, len(t1_order))

    def training_losses(self, batch: dict[str, torch.Tensor], step: str = "generator") -> dict[str, torch.Tensor]:
        t1, t1_mask, pet = batch["t1"], batch["mask"], batch["pet"]
        pet_mask = batch.get("pet_mask", t1_mask)
        if step == "discriminator":
            fake_pet, fake_t1 = self._fakes if self._fakes is not None else self._translate(t1, t1_mask, pet, pet_mask)
            self._fakes = None
            out = {}
            for name, judge, real, fake in (
                ("pet", self.judge_pet, pet, fake_pet),
                ("t1", self.judge_t1, t1, fake_t1),
            ):
                shown = self.pools[name].query(fake)
                out[name] = 0.5 * (
                    adversarial_loss(judge(real), True, "lsgan") + adversarial_loss(judge(shown), False, "lsgan")
                )
            out["loss"] = out["pet"] + out["t1"]
            return out
        fake_pet, fake_t1 = self._translate(t1, t1_mask, pet, pet_mask)
        self._fakes = (fake_pet.detach(), fake_t1.detach())
        cycle = masked_l1(self.to_t1(fake_pet) * t1_mask, t1, t1_mask) + masked_l1(
            self.to_pet(fake_t1) * pet_mask, pet, pet_mask
        )
        identity = t1.new_zeros(())
        if self.options["identity_weight"] > 0:  # two generator passes saved where the term is off
            identity = masked_l1(self.to_pet(pet) * pet_mask, pet, pet_mask) + masked_l1(
                self.to_t1(t1) * t1_mask, t1, t1_mask
            )
        losses = {
            "adversarial_pet": adversarial_loss(self.judge_pet(fake_pet), True, "lsgan"),
            "adversarial_t1": adversarial_loss(self.judge_t1(fake_t1), True, "lsgan"),
            "cycle": self.options["cycle_weight"] * cycle,
            "identity": self.options["identity_weight"] * self.options["cycle_weight"] * identity,
        }
        losses["loss"] = sum(losses.values())
        return losses

    def _translate(self, t1, t1_mask, pet, pet_mask) -> tuple[torch.Tensor, torch.Tensor]:
        return self.to_pet(t1) * t1_mask, self.to_t1(pet) * pet_mask

    @torch.no_grad()
    def synthesize(self, t1, mask, age=None, *, samples=1, temperature=1.0, generator=None):
        return (self.to_pet(t1) * mask).clamp_min(0.0), None

    def card_notes(self) -> dict:
        return {
            "pairing_in_training": self.options["pairing"],
            "discriminator_receptive_field_voxels": self.receptive_field,
            "choices": documented_choices(__doc__),
        }
