"""DUAL-GLOW (Sun et al., ICCV 2019; seeds/000): two 3D Glow flows, hierarchical relation networks,
a conditional Gaussian prior, and age conditioning with discriminators and gradient reversal.

(Over 400 lines: one model whose paper leaves many choices open; the docstring and ``card_notes`` write each
choice down, about 110 lines of the file.)

- f_m (T1) and f_p (PET): multi-scale 3D Glow, L levels x K steps (actnorm, LU 1x1x1 conv, affine coupling).
- Relation networks (eq. 6): at each lower level i a 3D CNN maps z_m,i to the mean and log-std of z_p,i.
- Top level with age (eqs. 16-17): z_p,L ~ N(mu, sigma) from the lower T1 latents z'_m (squeezed to the
  top resolution) and the age c. Choice: z'_m first passes a small CNN (the T1 context); a convolutional
  age discriminator behind gradient reversal (weight ``context_adversary_weight``) pushes age out of that
  context, so the prior must take the age from c and cannot read it off the T1's atrophy. This is the
  paper's exclusion idea applied where the prior reads z'_m: the flow latents themselves cannot lose
  information (the flow is invertible), and pooled discriminators on them could not see spatial atrophy.
  Choice: the age enters as a learned embedding; with probability ``age_dropout`` during training it is
  replaced by a learned "age unknown" vector, which is what the model uses when no age is given.
  The top prior mean also gets a direct linear term: a learned per-voxel map (the top latent's shape) times
  (age - 70) / 10, zero where the age is unknown.
- Age discriminators (weight 0.01 each): an MLP on the top level of f_m and of f_p keeps age there;
  MLPs behind a gradient-reversal layer on the lower levels of f_m push it out. Choice: the paper's
  "classification" of a continuous age uses five bins (<60, 60-70, 70-80, 80-90, >=90).
- Objective (eq. 12/16): -log p(z_p | z'_m, c) - log|det dz_p/dx_p| - lambda (log p(z_m) + log|det dz_m/dx_m|),
  lambda = 0.001, per dimension, with uniform dequantisation (1/256 of the scaled range).
- Intensities (a choice; the paper leaves it open): each flow models its image minus the training-set mean
  image (stored with the weights; a fixed shift, log-det 0), divided by a fixed scale. The prior mean then
  decodes to the mean training PET at the start of training, and the flows learn the subject's deviation.
- Squeeze (a choice): a 3D Haar squeeze with 1x1x1 convolutions that start as channel reversals, so each
  level's latent starts as that level's finest detail (``squeeze="plain"``: Glow's squeeze, random rotations).
- Conditional mean (v3, ``mean_network="unet"``; the issue-17 design freedom): the PET flow models
  (PET - m(T1, age)) / scale, with m a 3D U-Net of the T1 plus a per-voxel image-space age slope times
  (age - 70) / 10 (zero where the age is unknown). A shift by a function of the conditioning inputs has
  log-det 0, so the likelihood stays exact and sampling is m + the flow's draw. ``mean_init`` names a
  registered model whose shipped weights start the U-Net (training only); ``mean_trainable=False`` keeps it
  fixed (the CPU-trained v3 weights: the flows and age paths learn the residual around the `unet` model
  trained on the same split). v1/v2 weights (``mean_network="none"``) centre on the mean training PET.
- Age-only effect (v4, ``age_only_effect=True``): "this brain at another age". The age at the scan
  conditions everything above (what a person of that age with this T1 looks like, learned from pairs);
  a PET for another age adds a stored map x (age - scan age) / 10, the metabolic change of those years
  with the anatomy fixed. The map in the shipped v4/v5 weights was measured on the simulator's renderings
  (an evaluation device: a lab has no such renderings), so training no longer makes one: a model never
  reads the simulator. A run that starts from weights carrying the map keeps it; a fresh run with
  ``age_only_effect=True`` is refused. Learning the age effect from pairs only is the DUAL-GLOW issue's work.
- v5 (issue 17), three options of the likelihood and its priors:
  ``pet_conditioned_priors``: each lower PET prior also reads the half its split sends upwards (the coarser
  PET latents are made of it), through a zero-ended CNN added to the T1 relation network's mean and log-std:
  Glow's split prior p(z_i | h_i), conditioned on z_m,i and the age as before. A draw then decodes top-down,
  so a coarse draw moves the finer levels' means with it and samples vary coherently by region.
  ``masked_likelihood``: the objective counts the latents and log-determinants only at positions whose block
  touches the brain mask (``flows.level_positions``), and bits/dim are per brain voxel: the background, 61 %
  of the grid and zero in every image, no longer dominates the likelihood.
  ``log_std_limit`` L > 0: every prior log-std is soft-clamped, L tanh(s / L), so no prior can collapse or
  explode; the flows stay exact.
  ``select_by="val_nll"``: the training run keeps the epoch with the best validation likelihood (bits per
  brain voxel at T = 0, no dequantisation noise) instead of the best validation MAE.
- v6 (the DUAL-GLOW issue), ``mean_age="pairs"``: the mean's age path is learned from the training pairs
  alone (``models/age_effect.py``), never from the simulator: m(T1, age) = U-Net(T1) + A(T1) x (age - a(T1))
  / 10, where A(T1) is the subject's own tissue painted with each compartment's uptake change per decade (a
  partial-volume regression over the pairs, PET PSF ``pet_fwhm_mm``) and a(T1) the age the T1 looks. With the
  T1 fixed, ``--age`` moves the PET by A(T1) per decade: the age-only effect as pairs can estimate it.
  Each training run refits it on its own pairs (>= 10 with an age; fewer keep the initial weights' path),
  and the v4/v5 simulator-measured map is dropped from initial weights.
- v7 (the DUAL-GLOW issue), ``mean_trainable=True``: the mean network trains jointly with the flows. The
  likelihood alone moves the centre only as far as the flow cannot absorb the shift, so ``mean_l1_weight``
  w > 0 adds w x the masked L1 of m(T1, age) against the PET (a choice: the paper has no mean network; L1 is
  the loss `unet` trains with). The T = 0 decode is m plus the flow's most likely residual.
- Paper size: 4 levels x 16 steps on V100s. Default here (2 CPU cores): 3 levels x 4 steps, width 32;
  ``full_size_config()`` gives the paper's.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mri2pet_cli.console import stage
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.models.age_effect import DEFAULT_PET_FWHM_MM, PairsAgeModel, fit_pairs_age_model
from mri2pet_cli.models.base import Synthesizer
from mri2pet_cli.models.flows import (
    GradientReversal,
    MultiScaleFlow,
    conv_features,
    gaussian_log_prob,
    level_positions,
    squeeze3d,
    zero_ended_cnn,
)
from mri2pet_cli.models.losses import masked_l1
from mri2pet_cli.models.registry import register
from mri2pet_cli.models.unet import build_unet_layers, unet_forward
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid

AGE_BINS = (60.0, 70.0, 80.0, 90.0)
AGE_CENTER, AGE_SPREAD = 70.0, 10.0
AGE_SLOPE_LR_SCALE = 10.0
MIN_PAIRS_FOR_AGE = 10
SUBJECT_TERMS_CACHE = 128  # per-subject age maps kept: a training split (64 x 80 x 64, 1.3-2.6 MB each)


# What the authors' TensorFlow release (github.com/haolsun/dual-glow, master, 2019-09) does for each of the
# card's choices, read from its model.py, utils.py, tfops.py and train.py (the card's "authors' release" column).
AUTHORS_RELEASE = {
    "intensities": "volumes scaled offline to [0, 1] (1st-99th percentile), then x - 0.5; U(0, 1/256) "
    "dequantisation noise in training; no mean image subtracted",
    "age_input": "one continuous value (age / 100) added through a zero-initialised linear map; no embedding, "
    "no 'age unknown', no condition dropout",
    "age_slope": "yes: (W y + b) exp(3 logs), zero-initialised, added to every PET prior mean (per channel, not "
    "per voxel)",
    "t1_context": "each PET prior reads the same level's MRI latent through one 5x5x5 convolution (added to the "
    "mean only); no gradient reversal or discriminator on it in the release",
    "age_classes": "regression, not bins: an L2 loss (weight 0.01) of a small convolutional regressor on the "
    "whole PET latent; the development branch also had reversed L1 regressors on the MRI levels",
    "coupling_scale": "sigmoid(h + 2)",
    "squeeze": "Glow's space-to-depth squeeze; 1x1x1 convolution from a random orthogonal matrix, not LU",
    "precision": "float32 throughout (the 1x1x1 log-determinant in float64)",
    "age_levels": "every PET prior (split and top) gets the age; the MRI flow does not",
    "top_reads_top_t1": "yes",
    "mean_network": "none: the flows model the images themselves",
    "age_only_effect": "none",
    "mean_age": "none: the age enters the priors only",
    "mean_trainable": "no mean network: the flows model the images themselves",
    "mean_l1_weight": "no: the loss is the flows' negative log-likelihood plus the age regressor's L2",
    "pet_conditioned_priors": "no: a split prior's log-std is fixed at 0 and its mean reads the MRI latent and the "
    "age, not the upward half",
    "masked_likelihood": "no: every voxel of the 48 x 64 x 48 volume counts",
    "log_std_limit": "no clamp (split priors have log-std 0)",
    "select_by": "the checkpoint with the lowest full validation loss (checked every 5 epochs)",
    "size": "4 levels x (1, 4, 8, 4) steps, width 512; Adamax, lr 1e-3 with a 10-epoch warm-up, batch 1, 200 "
    "epochs; 726 training subjects",
}


def full_size_config() -> dict:
    """The paper's size (4 levels x 16 steps); needs a GPU and a grid divisible by 16."""
    return {"levels": 4, "steps": 16, "hidden": 128, "relation_hidden": 128}


def relation_net(cin: int, cout: int, hidden: int) -> nn.Sequential:
    """Mean and log-std of ``cout`` latent channels; ends at zero, so the prior starts as N(0, I)."""
    return zero_ended_cnn(cin, 2 * cout, hidden)


def age_classes(age: torch.Tensor) -> torch.Tensor:
    return torch.bucketize(age, torch.tensor(AGE_BINS, device=age.device, dtype=age.dtype))


class SpatialAgeDiscriminator(nn.Module):
    """Two strided 3D convolutions, then global pooling and a linear map to the age bins; behind gradient
    reversal. Unlike a pooled MLP it can see where tissue is lost, not only how much signal there is."""

    def __init__(self, channels: int, hidden: int = 32) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv3d(channels, hidden, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv3d(hidden, hidden, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.classify = nn.Linear(hidden, len(AGE_BINS) + 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        reversed_features = GradientReversal.apply(features.to(self.classify.weight.dtype))
        return self.classify(self.convs(reversed_features).mean(dim=(2, 3, 4)))


class AgeDiscriminator(nn.Module):
    """Global average pool, then a small MLP over the five age bins; optionally behind gradient reversal."""

    def __init__(self, channels: int, reverse: bool) -> None:
        super().__init__()
        self.reverse = reverse
        self.mlp = nn.Sequential(nn.Linear(channels, 32), nn.ReLU(inplace=True), nn.Linear(32, len(AGE_BINS) + 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        pooled = z.mean(dim=(2, 3, 4)).to(self.mlp[0].weight.dtype)
        if self.reverse:
            pooled = GradientReversal.apply(pooled)
        return self.mlp(pooled)


@register(
    "dual-glow",
    summary="DUAL-GLOW conditional 3D flow, age-conditioned, samples + uncertainty",
    conditioning="age",
    age_required=False,
    training="paired",
    paper="Sun et al., DUAL-GLOW, ICCV 2019 (seeds/000)",
    # the flows fit a few pairs of another site fast: at 2e-4 the T = 0 decode broke on 5 far-site pairs
    # (held-out MAE 0.27, base 0.096; docs/your-site.md); at 5e-5 it gained 3 %
    adapt_lr=5e-5,
)
class DualGlow(Synthesizer):
    name = "dual-glow"

    def __init__(
        self,
        levels: int = 3,
        steps: int = 4,
        hidden: int = 32,
        relation_hidden: int = 32,
        age_embedding: int = 16,
        lam: float = 0.001,
        classification_weight: float = 0.01,
        context_adversary_weight: float = 0.05,
        age_dropout: float = 0.2,
        t1_scale: float = 1.5,
        pet_scale: float = 3.0,
        n_bins: int = 256,
        checkpoint: bool = False,
        squeeze: str = "haar",
        age_levels: str = "all",
        top_reads_top_t1: bool = True,
        mean_network: str = "none",
        mean_base: int = 16,
        mean_levels: int = 4,
        mean_init: str | None = None,
        mean_trainable: bool = False,
        mean_l1_weight: float = 0.0,
        age_only_effect: bool = False,
        pet_conditioned_priors: bool = False,
        masked_likelihood: bool = False,
        log_std_limit: float = 0.0,
        select_by: str = "val_mae",
        mean_age: str = "learned",
        pet_fwhm_mm: float = DEFAULT_PET_FWHM_MM,
    ) -> None:
        super().__init__()
        self._config = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.levels, self.lam, self.cls_weight = levels, lam, classification_weight
        self.context_weight = context_adversary_weight
        self.age_dropout, self.t1_scale, self.pet_scale, self.n_bins = age_dropout, t1_scale, pet_scale, n_bins
        self.flow_m = MultiScaleFlow(1, levels, steps, hidden, checkpoint, squeeze)
        self.flow_p = MultiScaleFlow(1, levels, steps, hidden, checkpoint, squeeze)
        if age_levels not in ("all", "top"):
            raise ValueError("age_levels must be 'all' (every split prior, v2) or 'top' (v1)")
        self.age_everywhere, self.top_reads_top_t1 = age_levels == "all", top_reads_top_t1
        if select_by not in ("val_mae", "val_nll"):
            raise ValueError("select_by must be 'val_mae' or 'val_nll'")
        self.masked_likelihood, self.log_std_limit, self.select_by = masked_likelihood, log_std_limit, select_by
        channels = self.flow_m.latent_channels
        age_in = age_embedding if self.age_everywhere else 0
        self.relations = nn.ModuleList([relation_net(c + age_in, c, relation_hidden) for c in channels[:-1]])
        # v5: each lower PET prior also reads what its split sent upwards (zero-ended: starts as v4's prior)
        self.pet_relations = nn.ModuleList(
            [relation_net(rest, c, relation_hidden) for c, rest in zip(channels[:-1], self.flow_p.rest_channels)]
            if pet_conditioned_priors
            else []
        )
        lower_at_top = sum(c * 8 ** (levels - 1 - i) for i, c in enumerate(channels[:-1]))
        # features of the T1 latents at the top resolution (the T1 context): the lower ones squeezed up,
        # and (v2, as the authors' release) the top T1 latent itself
        self.top_context = conv_features(lower_at_top + (channels[-1] if top_reads_top_t1 else 0), relation_hidden)
        self.top_prior = relation_net(relation_hidden + age_embedding, channels[-1], relation_hidden)
        self.disc_context = SpatialAgeDiscriminator(relation_hidden)
        self.age_mlp = nn.Sequential(nn.Linear(1, age_embedding), nn.Tanh(), nn.Linear(age_embedding, age_embedding))
        self.unknown_age = nn.Parameter(torch.zeros(age_embedding))
        self.disc_m = nn.ModuleList([AgeDiscriminator(c, reverse=i < levels - 1) for i, c in enumerate(channels)])
        self.disc_p_top = AgeDiscriminator(channels[-1], reverse=False)
        # per-voxel slope of the top PET prior mean per decade of age; its shape is the top latent's (set
        # with the grid in fit_data_statistics); zero at the start
        self.age_slope = nn.Parameter(torch.zeros(0))
        # v2: the same direct age path at every lower level (shapes set in fit_data_statistics)
        self.age_slopes = nn.ParameterList(
            [nn.Parameter(torch.zeros(0)) for _ in channels[:-1]] if self.age_everywhere else []
        )
        # mean training images on the model grid; empty until fit_data_statistics (then a constant centre)
        self.register_buffer("t1_mean", torch.zeros(0))
        self.register_buffer("pet_mean", torch.zeros(0))
        # v3: the PET flow models the residual around a conditional mean image m(T1, age) (a U-Net and a
        # per-voxel age slope); a shift, so the likelihood stays exact
        if mean_network not in ("none", "unet"):
            raise ValueError("mean_network must be 'none' (the mean training PET) or 'unet'")
        self.mean_net: nn.Module | None = None
        self.mean_init, self.mean_trainable, self.mean_levels = mean_init, mean_trainable, mean_levels
        if mean_l1_weight and not (mean_trainable and mean_network == "unet"):
            raise ValueError("mean_l1_weight trains the mean network: it needs mean_network='unet', mean_trainable")
        self.mean_l1_weight = mean_l1_weight
        if mean_network == "unet":
            self.mean_net = nn.Module()
            build_unet_layers(self.mean_net, mean_base, mean_levels)
            self.mean_net.requires_grad_(mean_trainable)
            self.mean_age_slope = nn.Parameter(torch.zeros(0))  # grid-shaped, set in fit_data_statistics
        # v4: SUVR change per decade of age with the anatomy fixed, stored in the weights (grid-shaped)
        self.age_only_effect = age_only_effect
        self.register_buffer("age_only_slope", torch.zeros(0))
        # v6: the mean's age path fitted from the training pairs (models/age_effect.py), a flat vector
        if mean_age not in ("learned", "pairs"):
            raise ValueError("mean_age must be 'learned' (a per-voxel slope, v3-v5) or 'pairs' (v6)")
        if mean_age == "pairs" and mean_network != "unet":
            raise ValueError("mean_age 'pairs' shifts the conditional mean: it needs mean_network 'unet'")
        self.mean_age, self.pet_fwhm_mm = mean_age, pet_fwhm_mm
        self.register_buffer("pairs_age", torch.zeros(0, dtype=torch.float64))
        self._subject_terms_cache: dict[bytes, tuple[np.ndarray, float]] = {}

    def fit_data_statistics(self, t1, pet, mask, age=None, diagnosis=None) -> None:
        self.t1_mean = (t1 * mask).mean(dim=0, keepdim=True).to(self.t1_mean.dtype)
        self.pet_mean = (pet * mask).mean(dim=0, keepdim=True).to(self.pet_mean.dtype)
        top = (1, self.flow_p.latent_channels[-1], *(n // 2**self.levels for n in pet.shape[2:]))
        self.age_slope.data = torch.zeros(top, device=self.age_slope.device, dtype=self.age_slope.dtype)
        for i, slope in enumerate(self.age_slopes):
            shape = (1, self.flow_p.latent_channels[i], *(n // 2 ** (i + 1) for n in pet.shape[2:]))
            slope.data = torch.zeros(shape, device=slope.device, dtype=slope.dtype)
        if self.mean_net is not None:
            if self.mean_age == "learned":
                self.mean_age_slope.data = torch.zeros((1, 1, *pet.shape[2:]), device=pet.device, dtype=pet.dtype)
            if self.mean_init:
                self._init_mean_from(self.mean_init)
        if self.mean_age == "pairs":
            self._pairs_fit = self._fit_pairs_age(t1, pet, mask, age, diagnosis)
            if self._pairs_fit is not None:  # a copy: loading initial weights resizes the buffer in place
                self.pairs_age = self._pairs_fit.clone().to(self.pairs_age.device)

    def _fit_pairs_age(self, t1, pet, mask, age, diagnosis) -> torch.Tensor | None:
        """v6: the age path learned from the training pairs (T1, PET, age, and diagnosis where known); None
        with fewer than ``MIN_PAIRS_FOR_AGE`` aged pairs (``before_training`` decides)."""
        ages = np.full(t1.shape[0], np.nan) if age is None else np.asarray(age, dtype=np.float64)
        self._aged_pairs = int(np.isfinite(ages).sum())
        if self._aged_pairs < MIN_PAIRS_FOR_AGE:
            return None
        labels = self._grid_labels(t1.shape[2:])
        arrays = [v[:, 0].float().cpu().numpy() for v in (t1, pet, mask)]
        fitted = fit_pairs_age_model(*arrays, ages, diagnosis, labels, default_grid().spacing, fwhm_mm=self.pet_fwhm_mm)
        return torch.from_numpy(fitted.to_vector())

    def _settle_pairs_age(self) -> None:
        """v6: this run's own pairs give the age path; with too few aged pairs, initial weights' path is kept."""
        fitted = getattr(self, "_pairs_fit", None)
        if fitted is not None:
            self.pairs_age = fitted.clone().to(self.pairs_age.device)  # over what initial weights carried
        elif self.pairs_age.numel():
            stage(
                f"dual-glow: {getattr(self, '_aged_pairs', 0)} training pairs have an age "
                f"({MIN_PAIRS_FOR_AGE} needed to learn the age path): keeping the initial weights' age path"
            )
        else:
            raise Mri2PetError(
                f"mean_age 'pairs' learns the age effect from the pairs' ages: {getattr(self, '_aged_pairs', 0)} "
                f"training pairs have an age ({MIN_PAIRS_FOR_AGE} needed)"
            )

    @staticmethod
    def _grid_labels(shape) -> np.ndarray:
        grid = default_grid()
        if tuple(shape) != tuple(grid.shape):
            raise Mri2PetError(f"mean_age 'pairs' segments on the model grid {grid.shape}; these images are {shape}")
        return template_maps(grid).aal

    def _pairs_age_shift(self, t1: torch.Tensor, mask: torch.Tensor, age: dict[str, torch.Tensor]) -> torch.Tensor:
        """v6: each subject's age-only map per decade x (age - the age its T1 looks) / 10; 0 where the age is
        unknown. Computed on the CPU from the T1 (a segmentation and one blur, about 0.2 s a subject), kept for
        the same T1, mask and fitted path (a training run meets each T1 once an epoch)."""
        vector = self.pairs_age.cpu().numpy()
        fitted = PairsAgeModel.from_vector(vector)
        labels = self._grid_labels(t1.shape[2:])
        shifts = []
        for i in range(t1.shape[0]):
            if not bool(age["known"][i]):
                shifts.append(np.zeros(t1.shape[2:], dtype=np.float32))
                continue
            t1_i, mask_i = t1[i, 0].detach().float().cpu().numpy(), mask[i, 0].cpu().numpy()
            key = hashlib.blake2b(vector.tobytes() + t1_i.tobytes() + mask_i.tobytes(), digest_size=16).digest()
            if key not in self._subject_terms_cache:  # each epoch meets the same T1s again
                if len(self._subject_terms_cache) >= SUBJECT_TERMS_CACHE:
                    self._subject_terms_cache.pop(next(iter(self._subject_terms_cache)))
                self._subject_terms_cache[key] = fitted.subject_terms(t1_i, mask_i, labels, default_grid().spacing)
            per_decade, looks = self._subject_terms_cache[key]
            decades = float(age["scaled"][i]) - (looks - AGE_CENTER) / AGE_SPREAD
            shifts.append(per_decade * decades)
        return torch.from_numpy(np.stack(shifts)[:, None]).to(device=t1.device, dtype=t1.dtype)

    def _init_mean_from(self, name: str) -> None:
        """Start the mean network from a registered model's shipped weights (a U-Net of the same size).

        Read as a state dict (verified against its card), not built through the registry, which imports
        this module."""
        from mri2pet_cli.models.weights import find_weights, load_checkpoint

        files = find_weights(name)
        checkpoint, _card = load_checkpoint(files)
        try:
            self.mean_net.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as exc:
            raise Mri2PetError(f"{files.weights}: not a U-Net of the mean network's size ({str(exc)[:100]})") from None

    def before_training(self) -> None:
        if self.mean_age == "pairs":
            self._settle_pairs_age()
            if self.mean_age_slope.numel():  # a v3-v5 learned slope from initial weights would count age twice
                stage("dual-glow: the initial weights' learned age slope is replaced by the pairs' age path")
                self.mean_age_slope.data = torch.zeros(0, device=self.mean_age_slope.device)
        if self.mean_init and not self.mean_trainable and self.mean_net is not None:
            # the frozen mean is the named model's shipped weights, also when the run starts from weights
            # that carry an older copy (the flows then learn the residual around today's mean)
            self._init_mean_from(self.mean_init)
        if not self.age_only_effect and self.age_only_slope.numel():
            stage("dual-glow: dropping the initial weights' age-only map (measured on the simulator; v4/v5)")
            self.age_only_slope = torch.zeros(0, device=self.age_only_slope.device)
        if self.age_only_effect and not self.age_only_slope.numel():
            raise Mri2PetError(
                "age_only_effect: the age-only map is not measured by training (it came from the simulator, which "
                "a model never reads); start from weights that carry one (--init-weights) or set it false"
            )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # these have the training grid's shape, known only from the weights; .data keeps the parameter
        # object, so an optimizer built before loading still holds it
        state_dict.setdefault(prefix + "pairs_age", torch.zeros(0, dtype=torch.float64))  # weights before v6
        names = ("t1_mean", "pet_mean", "age_slope", "age_only_slope", "pairs_age")
        names += ("mean_age_slope",) if self.mean_net is not None else ()
        sized = {name: getattr(self, name) for name in names}
        sized |= {f"age_slopes.{i}": slope for i, slope in enumerate(self.age_slopes)}
        for name, tensor in sized.items():
            if prefix + name in state_dict:
                tensor.data = torch.empty_like(state_dict[prefix + name], dtype=tensor.dtype, device=tensor.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def config(self) -> dict:
        return dict(self._config)

    def card_notes(self) -> dict:
        shipped = {k: v for k, v in self._config.items() if k != "checkpoint"}
        return {
            "configs": {
                "default (these weights; 2 CPU cores)": shipped,
                "full size (the paper's 4 levels x 16 steps; needs a GPU and a grid divisible by 16)": {
                    **shipped,
                    **full_size_config(),
                },
            },
            "choices": {
                "intensities": "each flow models (image - mean training image) / scale; the means ship in the weights",
                "age_input": "learned embedding of (age - 70) / 10; a learned 'age unknown' vector for 20 % of "
                "training samples and whenever no age is given",
                "age_slope": "the top-level prior mean adds a learned per-voxel map times (age - 70) / 10 (zero "
                "at the start and when the age is unknown): a direct path for the age effect; it learns at 10x "
                "the learning rate",
                "t1_context": "the top-level prior reads the lower T1 latents through a small CNN; a convolutional "
                "age discriminator behind gradient reversal (weight context_adversary_weight) keeps age out of it, "
                "so the age comes from the age input, not from the T1's atrophy",
                "age_classes": "five bins: < 60, 60-70, 70-80, 80-90, >= 90 (classification weight 0.01)",
                "coupling_scale": "s = 2 tanh(raw / 2)",
                "squeeze": "3D Haar squeeze (orthonormal, log-det 0); 1x1x1 convolutions start as channel reversals",
                "precision": "under bf16 autocast the 1x1x1 convolutions (W formed and applied) and the Haar "
                "squeeze run in float32, so the log-determinant belongs to the map applied and synthesis inverts "
                "it (tests, bit for bit); the coupling and relation networks still round to bf16, which changes "
                "their outputs by bf16 steps: the shipped v2 weights were trained in float32 (TF32 convolutions)",
                "age_levels": "v2 ('all'): every split prior reads the age embedding and has its own per-voxel "
                "age slope, as the authors' release conditions every prior; v1 ('top'): the top prior only",
                "top_reads_top_t1": "v2: the top prior's T1 context includes the top T1 latent (authors' release); "
                "v1 read only the lower T1 latents",
                "mean_network": "v3 ('unet'): the PET flow models the residual around m(T1, age), a 3D U-Net of the "
                "T1 plus a per-voxel image-space age slope; the shift has log-det 0, so the likelihood stays exact; "
                "'none' (v1/v2): the mean training PET",
                "age_only_effect": "v4: a PET for another age than the scan age (--scan-age) adds a measured map x "
                "(age - scan age) / 10: the simulator's metabolic change with the anatomy fixed, averaged over the "
                "training subjects' renderings at 60 and 90 (pairs cannot separate it from atrophy the T1 does "
                "not show: benchmarks/age_identifiability.py). Without --scan-age the age is the age at the scan",
                "pet_conditioned_priors": "v5: each lower PET prior also reads the half of its level that the split "
                "sends upwards (a zero-ended CNN added to the T1 relation network's mean and log-std: Glow's split "
                "prior, as in the authors' release); a draw decodes top-down, so coarse draws move the finer means",
                "masked_likelihood": "v5: latents and log-determinants count only at latent positions whose block "
                "touches the brain mask; bits/dim per brain voxel (the background is 61 % of the grid)",
                "log_std_limit": "v5: prior log-std soft-clamped, L tanh(s / L) (0: none)",
                "mean_age": "v6 'pairs': the conditional mean is m(T1) + A(T1) x (age - a(T1)) / 10, both learned "
                "from the training pairs alone (models/age_effect.py): A(T1) is the subject's own tissue (3-class "
                "mixture of its T1, grey matter split by AAL region) painted with each compartment's uptake change "
                "per decade and blurred by the stated PET PSF (pet_fwhm_mm), the changes fitted by a partial-volume "
                "(GTM) regression of the pairs' uptakes on age with diagnosis covariates; a(T1) is the age the T1 "
                "looks (ridge on regional grey matter), because the T1-only U-Net already predicts the PET of that "
                "age. With the T1 fixed, --age moves the PET by A(T1) per decade; --scan-age S --age A conditions "
                "the flows on S and the mean on A. 'learned' (v3-v5): a per-voxel slope learned by gradient",
                "mean_trainable": "v7: the mean network's U-Net trains with the flows (v3-v6 kept it fixed at the "
                "shipped unet); the pairs age path A(T1) is refitted when a run starts and then fixed",
                "mean_l1_weight": "v7: 10 x the L1 of the mean m(T1, age) against the PET inside the brain, added "
                "to the flows' negative log-likelihood; with the likelihood alone the mean drifts to where the "
                "flow absorbs it and the T = 0 decode gets worse (docs/models.md, 'A jointly trained mean')",
                "select_by": "'val_mae' (v7 and v1-v4): the run keeps the epoch with the lowest validation MAE of "
                "the T = 0 decode; 'val_nll' (v5, v6): the lowest validation bits per brain voxel (T = 0, no "
                "dequantisation noise)",
            },
            "authors_release": AUTHORS_RELEASE,
            "sampling": "the PET is always the decode of the prior mean (T = 0, deterministic, the estimate "
            "that is scored); --samples N > 1 adds the voxel-wise standard deviation of N draws at T = 1 "
            "(default; unbiased estimator)",
        }

    def configure_optimizers(self, lr: float) -> list[torch.optim.Optimizer]:
        # AdaMax (section 4.1). The age slope is one linear map whose best value is far from 0; at the shared
        # rate it had moved a tenth of the way after 9 epochs, so it learns 10x faster (the loop reads lr_scale)
        slopes = [self.age_slope, *self.age_slopes] + ([self.mean_age_slope] if self.mean_net is not None else [])
        slope_ids = {id(p) for p in slopes}
        rest = [p for p in self.parameters() if id(p) not in slope_ids and p.requires_grad]
        groups = [
            {"params": rest},
            {"params": slopes, "lr": lr * AGE_SLOPE_LR_SCALE, "lr_scale": AGE_SLOPE_LR_SCALE},
        ]
        return [torch.optim.Adamax(groups, lr=lr, betas=(0.9, 0.999))]

    # -- scaling between SUVR / normalised T1 and the flows' [-0.5, 0.5) range
    def _centre(self, mean: torch.Tensor, scale: float, like: torch.Tensor) -> torch.Tensor | float:
        if mean.numel() == 0:
            return 0.5 * scale
        if mean.shape[2:] != like.shape[2:]:
            trained, given = tuple(mean.shape[2:]), tuple(like.shape[2:])
            raise Mri2PetError(f"these DUAL-GLOW weights were trained on a {trained} grid, not {given}")
        return mean.to(like.dtype)

    def _to_flow(self, x: torch.Tensor, mean: torch.Tensor, scale: float, dequantize: bool) -> torch.Tensor:
        y = (x - self._centre(mean, scale, x)) / scale
        if dequantize:
            y = y + torch.rand_like(y) / self.n_bins
        return y

    def _from_flow(self, y: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
        return (y - 0.5 / self.n_bins) * scale + self._centre(mean, scale, y)

    def _pet_centre(self, t1: torch.Tensor, mask: torch.Tensor, age: dict[str, torch.Tensor]):
        """What the PET flow is centred on: the mean training PET, or (v3) m(T1, age) inside the mask."""
        if self.mean_net is None:
            return self.pet_mean
        with torch.set_grad_enabled(self.mean_trainable and torch.is_grad_enabled()):
            mean = unet_forward(self.mean_net, t1, self.mean_levels)
        if self.pairs_age.numel():
            mean = mean + self._pairs_age_shift(t1, mask, age)
        return self._shift_by_age(mean, age, self.mean_age_slope) * mask

    def _age_inputs(self, age: torch.Tensor | None, batch: int, device, drop: bool) -> dict[str, torch.Tensor]:
        """Embedding per sample, (age - 70) / 10 (0 where unknown) and a bool 'age known' mask.

        NaN, None and (in training, with probability ``age_dropout``) dropped ages are unknown.
        """
        unknown = self.unknown_age.expand(batch, -1)
        if age is None:
            zeros = torch.zeros(batch, device=device, dtype=unknown.dtype)
            return {"vector": unknown, "scaled": zeros, "known": zeros.bool()}
        age = age.to(device=device, dtype=self.unknown_age.dtype).reshape(batch)
        known = torch.isfinite(age)
        if drop and self.age_dropout > 0:
            known = known & (torch.rand(batch, device=device) >= self.age_dropout)
        scaled = torch.where(known, torch.nan_to_num((age - AGE_CENTER) / AGE_SPREAD), 0.0)
        embedded = self.age_mlp(scaled.unsqueeze(1))
        return {"vector": torch.where(known.unsqueeze(1), embedded, unknown), "scaled": scaled, "known": known}

    @staticmethod
    def _age_map(age: dict[str, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """The age embedding broadcast over the voxels of ``like``."""
        return age["vector"].to(like.dtype)[:, :, None, None, None].expand(-1, -1, *like.shape[2:])

    @staticmethod
    def _shift_by_age(mean: torch.Tensor, age: dict[str, torch.Tensor], slope: torch.Tensor) -> torch.Tensor:
        """The direct linear path for the age effect: slope x (age - 70) / 10 (0 where the age is unknown or
        the slope not yet sized by fit_data_statistics)."""
        if not slope.numel():
            return mean
        return mean + age["scaled"].to(mean.dtype)[:, None, None, None, None] * slope

    def _priors(self, z_m: list[torch.Tensor], age: dict[str, torch.Tensor]) -> tuple[list, torch.Tensor]:
        """(mean, log-std) of every PET latent given the T1 latents (and age at the top), and the T1 context."""
        priors = []
        for i, net in enumerate(self.relations):
            features = z_m[i]
            if self.age_everywhere:  # v2: every split prior sees the age (the authors' release)
                features = torch.cat([features, self._age_map(age, features)], dim=1)
            mean, log_std = net(features).to(z_m[i].dtype).chunk(2, dim=1)
            if self.age_everywhere:
                mean = self._shift_by_age(mean, age, self.age_slopes[i])
            priors.append((mean, log_std))
        lower = []
        for i, z in enumerate(z_m[:-1]):
            for _ in range(self.levels - 1 - i):
                z = squeeze3d(z)
            lower.append(z)
        top = z_m[-1]
        context = self.top_context(torch.cat(lower + [top] if self.top_reads_top_t1 else lower, dim=1))
        mean, log_std = (
            self.top_prior(torch.cat([context, self._age_map(age, context)], dim=1)).to(top.dtype).chunk(2, dim=1)
        )
        mean = self._shift_by_age(mean, age, self.age_slope)
        priors.append((mean, log_std))
        return priors, context

    def _limited(self, log_std: torch.Tensor) -> torch.Tensor:
        """v5: log-std soft-clamped to (-L, L); unchanged where no limit is set."""
        limit = self.log_std_limit
        return log_std if limit <= 0 else limit * torch.tanh(log_std / limit)

    def _lower_prior(self, level: int, prior: tuple, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A lower level's prior given what its PET split sent upwards (v5), log-std limited."""
        mean, log_std = prior
        if self.pet_relations:
            d_mean, d_log_std = self.pet_relations[level](rest).to(mean.dtype).chunk(2, dim=1)
            mean, log_std = mean + d_mean, log_std + d_log_std
        return mean, self._limited(log_std)

    def log_likelihoods(
        self, t1, pet, age=None, *, mask=None, dequantize=True, drop_age=False
    ) -> dict[str, torch.Tensor]:
        """Per-sample log p(x_p | x_m, c) and log p(x_m) in the flows' scaled space, and the latents.

        With ``masked_likelihood`` both count only latent positions that touch the mask; ``dims`` is then
        the number of mask voxels per sample (else every voxel of the grid)."""
        age_in = self._age_inputs(age, t1.shape[0], t1.device, drop_age)
        mask = torch.ones_like(t1) if mask is None else mask
        x_m = self._to_flow(t1, self.t1_mean, self.t1_scale, dequantize)
        centre = self._pet_centre(t1, mask, age_in)
        x_p = self._to_flow(pet, centre, self.pet_scale, dequantize)
        positions = level_positions(mask, self.levels) if self.masked_likelihood else None
        z_m, logdet_m = self.flow_m(x_m, positions)
        z_p, logdet_p, rests = self.flow_p(x_p, positions, with_rests=True)
        raw, context = self._priors(z_m, age_in)
        priors = [self._lower_prior(i, prior, rest) for i, (prior, rest) in enumerate(zip(raw[:-1], rests))]
        priors.append((raw[-1][0], self._limited(raw[-1][1])))
        at = positions or [None] * self.levels
        log_p = sum(gaussian_log_prob(z, m, s, w) for z, (m, s), w in zip(z_p, priors, at)) + logdet_p
        zero = torch.zeros((), device=t1.device, dtype=z_m[0].dtype)
        log_m = sum(gaussian_log_prob(z, zero, zero, w) for z, w in zip(z_m, at)) + logdet_m
        dims = mask.flatten(1).gt(0).sum(dim=1).to(log_p.dtype) if self.masked_likelihood else t1[0].numel()
        known = age_in["known"]
        return {
            "log_p": log_p,
            "log_m": log_m,
            "dims": dims,
            "z_m": z_m,
            "z_p": z_p,
            "context": context,
            "known_age": known,
            "centre": centre,
        }

    def bits_per_dim(self, log_p: torch.Tensor, dims) -> torch.Tensor:
        """Bits per voxel of the PET, discretised at ``n_bins`` levels of the scaled range."""
        return (-log_p + dims * math.log(self.n_bins)) / (dims * math.log(2.0))

    @torch.no_grad()
    def validation_score(self, t1, pet, mask, age) -> float | None:
        """v5 (``select_by="val_nll"``): mean bits per voxel on validation at T = 0 without dequantisation
        noise (per brain voxel with ``masked_likelihood``); None: the run selects by validation MAE."""
        if self.select_by != "val_nll":
            return None
        out = self.log_likelihoods(t1 * mask, pet * mask, age, mask=mask, dequantize=False)
        return float(self.bits_per_dim(out["log_p"], out["dims"]).mean())

    def training_losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        t1, pet = batch["t1"] * batch["mask"], batch["pet"] * batch["mask"]
        out = self.log_likelihoods(t1, pet, batch.get("age"), mask=batch["mask"], dequantize=True, drop_age=True)
        dims = out["dims"]
        nll = -(out["log_p"] + self.lam * out["log_m"]) / dims
        losses = {"nll": nll.mean(), "bpd": self.bits_per_dim(out["log_p"], dims).mean()}
        loss = losses["nll"]
        if self.mean_l1_weight:  # v7: the jointly trained mean also learns the PET itself
            losses["mean_l1"] = masked_l1(out["centre"], pet, batch["mask"])
            loss = loss + self.mean_l1_weight * losses["mean_l1"]
        age = batch.get("age")
        if age is not None and self.cls_weight > 0:
            known = torch.isfinite(age.float())
            if known.any():
                target = age_classes(age.float()[known])
                logits = [d(z[known]) for d, z in zip(self.disc_m, out["z_m"])]
                logits.append(self.disc_p_top(out["z_p"][-1][known]))
                cls = sum(F.cross_entropy(lg.float(), target) for lg in logits)
                context_cls = F.cross_entropy(self.disc_context(out["context"][known]).float(), target)
                losses["age_cls"], losses["age_cls_context"] = cls, context_cls
                loss = loss + self.cls_weight * cls + self.context_weight * context_cls
        losses["loss"] = loss
        return losses

    def supports_scan_age(self) -> bool:
        return bool(self.age_only_slope.numel() or self.pairs_age.numel())

    def _age_only_shift(self, age, scan_age) -> torch.Tensor:
        """The measured age-only change from the scan age to ``age``."""
        if not self.age_only_slope.numel():
            raise Mri2PetError("these DUAL-GLOW weights have no measured age-only effect (a scan age needs v4 weights)")
        if age is None or not bool(torch.isfinite(age).all() and torch.isfinite(scan_age).all()):
            raise Mri2PetError("an age-only change needs both the age of the PET and the age at the scan")
        decades = ((age - scan_age).to(self.age_only_slope) / AGE_SPREAD).reshape(-1, 1, 1, 1, 1)
        return decades * self.age_only_slope

    @torch.no_grad()
    def conditional_mean(self, t1, mask, age=None) -> torch.Tensor:
        """m(T1, age) alone, what the PET flow is centred on (issue 36's ablation: the decode against its mean)."""
        inputs = self._age_inputs(age, t1.shape[0], t1.device, drop=False)
        return (self._pet_centre(t1 * mask, mask, inputs) * mask).clamp_min(0.0)

    @torch.no_grad()
    def synthesize(self, t1, mask, age=None, *, samples=1, temperature=1.0, generator=None, scan_age=None):
        """One draw at ``temperature`` (the API's default for one sample is T = 0, the prior mean's decode);
        with ``samples`` > 1 the PET is the T = 0 decode and the std is that of the draws.

        ``scan_age`` (v4): the age at which the T1 was taken, when the PET is wanted for another ``age``:
        the model is conditioned on the scan age and the measured age-only change is added.
        """
        age_in = self._age_inputs(age if scan_age is None else scan_age, t1.shape[0], t1.device, drop=False)
        x_m = self._to_flow(t1 * mask, self.t1_mean, self.t1_scale, dequantize=False)
        z_m, _ = self.flow_m(x_m)
        priors, _ = self._priors(z_m, age_in)
        if scan_age is not None and self.pairs_age.numel():  # v6: m(T1, age) moves by the age-only map
            if age is None or not bool(torch.isfinite(age).all()):
                raise Mri2PetError("an age-only change needs both the age of the PET and the age at the scan")
            centre = self._pet_centre(t1 * mask, mask, self._age_inputs(age, t1.shape[0], t1.device, drop=False))
        else:
            centre = self._pet_centre(t1 * mask, mask, age_in)
            if scan_age is not None:
                centre = centre + self._age_only_shift(age, scan_age) * mask
        draws = [self._decode(priors, centre, mask, temperature, generator) for _ in range(samples)]
        if samples == 1:
            return draws[0], None
        return self._decode(priors, centre, mask, 0.0, generator), torch.stack(draws).std(dim=0, unbiased=True)

    def _decode(self, priors, centre, mask, temperature: float, generator) -> torch.Tensor:
        def draw(prior):
            mean, log_std = prior
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            return mean + temperature * torch.exp(log_std) * noise

        if self.pet_relations:  # v5: top-down, each lower prior given the coarser latents already drawn
            top = draw((priors[-1][0], self._limited(priors[-1][1])))
            x_p = self.flow_p.inverse([top], draw=lambda i, rest: draw(self._lower_prior(i, priors[i], rest)))
        else:
            limited = [(mean, self._limited(log_std)) for mean, log_std in priors]
            x_p = self.flow_p.inverse([draw(prior) for prior in limited])
        pet = self._from_flow(x_p, centre, self.pet_scale)
        return (pet * mask).clamp_min(0.0)
