"""What every synthesis model provides, so that train / synthesize / evaluate have no special paths."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

import numpy as np
import torch
from torch import nn


def documented_choices(doc: str | None) -> str:
    """The part of a model module's docstring after its "... also in the card (``card_notes``):" line."""
    return (doc or "").split("(``card_notes``):", 1)[1].strip()


class Synthesizer(nn.Module, metaclass=ABCMeta):
    """A T1 -> PET model on the model grid.

    Inputs are batches of the preprocessed T1 (WM = 1, zero outside the brain), the brain mask and,
    for age-conditioned models, the age in years. Outputs are PET in SUVR on the same grid.
    """

    name: str = ""

    @abstractmethod
    def config(self) -> dict:
        """Keyword arguments that rebuild this model (stored with the weights)."""

    def fit_data_statistics(
        self,
        t1: torch.Tensor,
        pet: torch.Tensor,
        mask: torch.Tensor,
        age: np.ndarray | None = None,
        diagnosis: list[str | None] | None = None,
    ) -> None:
        """Called once with the training set (N, 1, D, H, W; ages in years, NaN unknown; diagnoses where the
        participants table has them) before training starts; most models ignore it."""

    def before_training(self) -> None:
        """Called once before the first epoch, after any initial weights are loaded: a model refuses here a
        configuration it cannot train. It gets no data folder: what a model learns comes through its batches."""

    def validation_score(self, t1, pet, mask, age) -> float | None:
        """What a training run selects its best epoch by, lower is better (e.g. a likelihood), for one batch
        of validation subjects; None (the default): by validation MAE."""
        return None

    def supports_scan_age(self) -> bool:
        """Whether ``synthesize`` takes ``scan_age`` (a measured age-only effect from the scan age to the age)."""
        return False

    def training_only_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes of parameters that only training uses (discriminators): not shipped."""
        return ()

    def shipped_training_prefixes(self) -> tuple[str, ...]:
        """Training-only prefixes shipped all the same, so that fine-tuning continues them (CycleGAN)."""
        return ()

    def card_notes(self) -> dict:
        """Model-specific facts for the model card (sizes, choices the paper leaves open)."""
        return {}

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        return [torch.optim.Adam(self.parameters(), lr=lr)]

    def update_steps(self) -> list[tuple[str, list[int]]]:
        """The updates of one training step, in order: (name, indices of the optimisers it steps).

        One update of every optimiser by default; adversarial models return e.g.
        ``[("discriminator", [1]), ("generator", [0])]`` and get the name in ``training_losses``.
        """
        return [("", [])]  # [] = every optimiser

    def draw_pairs(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        """One epoch's order of the ``n`` training subjects' T1s, and of their PETs where they are drawn apart.

        Paired models: the subjects in a random order, each T1 with its own PET (None). Unpaired models
        (CycleGAN) return a second, independent order of PET subjects.
        """
        return rng.permutation(n), None

    @abstractmethod
    def training_losses(self, batch: dict[str, torch.Tensor], step: str = "") -> dict[str, torch.Tensor]:
        """Losses for one batch (and ``step``, see :meth:`update_steps`); "loss" is what is minimised."""

    @abstractmethod
    def synthesize(
        self,
        t1: torch.Tensor,
        mask: torch.Tensor,
        age: torch.Tensor | None = None,
        *,
        samples: int = 1,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Synthetic PET (SUVR) and, for models that sample, a voxel-wise standard deviation."""
