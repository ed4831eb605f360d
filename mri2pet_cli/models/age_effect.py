"""The metabolic effect of age learned from pairs alone: (T1, PET, age), nothing from a simulator.

Why a structured estimator: across subjects, older brains have both less grey matter and lower uptake per
gram; a regression of regional PET on age mixes the two. A partial-volume model separates them (the
geometric transfer matrix, GTM; Rousset et al. 1998, as in Greve et al. 2016's ageing study):

1. each subject's T1 is segmented into CSF, grey- and white-matter fractions (the study's 3-class mixture);
   grey matter is split into compartments by AAL region (left and right merged), plus one white-matter and
   one CSF compartment;
2. each compartment is blurred by a stated PET point-spread function and the compartments' uptakes are
   solved from the PET (symmetric GTM: region-weighted means of the PET against region-weighted means of
   each blurred compartment);
3. over the pairs, each compartment's uptake is regressed on (age - 70) / 10, with diagnosis indicators as
   covariates where the pairs carry diagnoses, so that disease is not read as age.

The slopes (SUVR per decade per compartment) are the model. For one subject, "this brain at another age"
adds sum_j slope_j x blur(compartment_j) per decade: the subject's own anatomy, held fixed, carrying the
uptake change of the years. The estimator is only as good as the segmentation: grey matter that a T1
mixture cannot see (thin cortex mixed with white matter at 2.5 mm) is read as lower uptake
(benchmarks/age_identifiability.py measures how much on simulated cohorts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mri2pet_cli.space.atlas import aal_names
from mri2pet_cli.space.tissue import regional_values, tissue_fractions

AGE_CENTER, AGE_SPREAD = 70.0, 10.0
DEFAULT_PET_FWHM_MM = 8.0  # ADNI's harmonised FDG resolution; a lab states its own scanner's
MIN_COMPARTMENT_ML = 0.5  # smaller compartments are too ill-posed to solve
NON_GREY = ("other grey matter", "white matter", "csf")  # after the regions' grey matter, in this order


def compartment_names() -> list[str]:
    """Grey matter of each AAL region (hemispheres merged), then grey matter outside AAL, white matter, CSF."""
    return list(_label_groups()) + list(NON_GREY)


def _label_groups() -> dict[str, list[int]]:
    """AAL label values of each region's grey-matter compartment, in ``compartment_names()`` order."""
    groups: dict[str, list[int]] = {}
    for value, name in aal_names().items():
        groups.setdefault(f"grey matter: {name.removesuffix('_L').removesuffix('_R')}", []).append(value)
    return dict(sorted(groups.items()))


def compartments(t1: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The subject's tissue compartments (n_compartments x volume), in ``compartment_names()`` order; each voxel's
    fractions sum to 1 inside the mask."""
    return _compartments_from(tissue_fractions(t1, mask), labels)


def _compartments_from(tissue: tuple, labels: np.ndarray) -> np.ndarray:
    csf, gm, wm = tissue
    groups = _label_groups()
    in_aal = np.isin(labels, list(aal_names()))
    out = [gm * np.isin(labels, groups[name]) for name in compartment_names()[: -len(NON_GREY)]]
    out += [gm * ~in_aal, wm, csf]
    return np.stack(out).astype(np.float32)


def blur(volumes: np.ndarray, fwhm_mm: float, spacing_mm: float) -> np.ndarray:
    """Each volume blurred by a Gaussian of the PET's FWHM widened by the grid's voxel (a box of one voxel)."""
    sigma = np.hypot(fwhm_mm, spacing_mm) / (2.0 * np.sqrt(2.0 * np.log(2.0))) / spacing_mm
    return np.stack([ndimage.gaussian_filter(v, sigma, mode="constant") for v in volumes])


def gtm_uptakes(pet: np.ndarray, parts: np.ndarray, blurred: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Each compartment's uptake (the PET's units), solved by the symmetric GTM; NaN where a compartment is
    smaller than ``MIN_COMPARTMENT_ML``."""
    volume = parts.reshape(len(parts), -1).sum(axis=1) * voxel_ml
    keep = volume >= MIN_COMPARTMENT_ML
    weights = parts[keep].reshape(int(keep.sum()), -1)
    weights = weights / weights.sum(axis=1, keepdims=True)
    transfer = weights @ blurred[keep].reshape(int(keep.sum()), -1).T
    observed = weights @ pet.reshape(-1).astype(np.float64)
    out = np.full(len(parts), np.nan)
    out[keep] = np.linalg.lstsq(transfer, observed, rcond=None)[0]
    return out


@dataclass(frozen=True)
class PairsAgeEffect:
    """Uptake change per decade of each compartment (``compartment_names()`` order), fitted on ``n_pairs``."""

    slope_per_decade: np.ndarray
    pet_fwhm_mm: float
    n_pairs: int

    def per_decade_map(self, t1: np.ndarray, mask: np.ndarray, labels: np.ndarray, spacing_mm: float) -> np.ndarray:
        """This subject's PET change per decade with its anatomy fixed (0 outside the mask)."""
        return self.map_from_tissue(tissue_fractions(t1, mask), mask, labels, spacing_mm)

    def map_from_tissue(self, tissue: tuple, mask: np.ndarray, labels: np.ndarray, spacing_mm: float) -> np.ndarray:
        """``per_decade_map`` from a segmentation already made (CSF, grey, white fractions): the blur is linear,
        so the slopes are painted on the tissue first and blurred once."""
        csf, gm, wm = tissue
        other, white, fluid = self.slope_per_decade[-len(NON_GREY) :]
        lookup = np.full(int(max(labels.max(), max(aal_names()))) + 1, other, dtype=np.float32)
        for j, values in enumerate(_label_groups().values()):
            lookup[values] = self.slope_per_decade[j]
        painted = gm * lookup[np.clip(labels, 0, None).astype(np.int64)] + wm * white + csf * fluid
        return (blur(painted[None], self.pet_fwhm_mm, spacing_mm)[0] * (mask > 0)).astype(np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "slope_per_decade": self.slope_per_decade.astype(np.float32),
            "meta": np.array([self.pet_fwhm_mm, self.n_pairs], dtype=np.float32),
        }

    @classmethod
    def from_arrays(cls, slope_per_decade: np.ndarray, meta: np.ndarray) -> PairsAgeEffect:
        return cls(np.asarray(slope_per_decade, dtype=np.float64), float(meta[0]), int(meta[1]))


def subject_uptakes(
    t1: np.ndarray, pet: np.ndarray, mask: np.ndarray, labels: np.ndarray, fwhm_mm: float, spacing_mm: float
) -> np.ndarray:
    """One pair's compartment uptakes (partial-volume corrected)."""
    return _uptakes_from(tissue_fractions(t1, mask), pet, mask, labels, fwhm_mm, spacing_mm)


def _uptakes_from(tissue: tuple, pet, mask, labels, fwhm_mm: float, spacing_mm: float) -> np.ndarray:
    parts = _compartments_from(tissue, labels)
    return gtm_uptakes(pet * (mask > 0), parts, blur(parts, fwhm_mm, spacing_mm), spacing_mm**3 / 1000.0)


def fit_pairs_age_effect(
    uptakes: np.ndarray, ages: np.ndarray, diagnoses: list[str] | None, fwhm_mm: float
) -> PairsAgeEffect:
    """Regress each compartment's uptake (pairs x compartments) on (age - 70) / 10, with diagnosis indicators
    (the first diagnosis in sorted order is the baseline) where ``diagnoses`` are given; NaN uptakes are left
    out of their compartment's fit, and a compartment with fewer than 5 pairs gets slope 0."""
    decades = (np.asarray(ages, dtype=np.float64) - AGE_CENTER) / AGE_SPREAD
    columns = [np.ones_like(decades), decades]
    if diagnoses is not None:
        levels = sorted(set(diagnoses))
        columns += [np.array([d == level for d in diagnoses], dtype=np.float64) for level in levels[1:]]
    design = np.column_stack(columns)
    slopes = np.zeros(uptakes.shape[1])
    for j in range(uptakes.shape[1]):
        rows = np.isfinite(uptakes[:, j])
        if rows.sum() >= max(5, design.shape[1] + 2):
            slopes[j] = np.linalg.lstsq(design[rows], uptakes[rows, j], rcond=None)[0][1]
    return PairsAgeEffect(slopes, float(fwhm_mm), len(decades))


@dataclass(frozen=True)
class AgeFromT1:
    """The age a T1 looks (a ridge regression on its 116 regional grey-matter fractions, fitted on the pairs):
    the "expected age given the T1" that a T1-only mean network has already folded into its PET."""

    intercept: float
    coef: np.ndarray
    feature_mean: np.ndarray

    def predict(self, features: np.ndarray) -> float:
        filled = np.where(np.isfinite(features), features, self.feature_mean)
        return float(self.intercept + self.coef @ (filled - self.feature_mean))


def fit_age_from_t1(features: np.ndarray, ages: np.ndarray) -> AgeFromT1:
    """Ridge with its penalty chosen by leave-one-out (RidgeCV) on standardised features; missing regions take
    the column mean."""
    from sklearn.linear_model import RidgeCV

    mean = np.nanmean(features, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    filled = np.where(np.isfinite(features), features, mean)
    scale = filled.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 30)).fit((filled - mean) / scale, ages)
    return AgeFromT1(float(ridge.intercept_), ridge.coef_ / scale, mean)


@dataclass(frozen=True)
class PairsAgeModel:
    """What DUAL-GLOW's mean adds for age (v6): the subject's per-decade map x (age - the age its T1 looks) / 10.

    A T1-only mean network predicts the PET expected for this T1, which already holds the age such a T1
    usually has; only the difference from that age carries the metabolic effect (Frisch-Waugh: the partial
    effect of age given the T1). With the T1 fixed, moving the age moves the PET by the age-only map.
    """

    effect: PairsAgeEffect
    age_from_t1: AgeFromT1

    def subject_terms(
        self, t1: np.ndarray, mask: np.ndarray, labels: np.ndarray, spacing_mm: float
    ) -> tuple[np.ndarray, float]:
        """The per-decade map and the age the T1 looks, from one segmentation."""
        tissue = tissue_fractions(t1, mask)
        predicted = self.age_from_t1.predict(regional_values(tissue[1], labels, mask))
        return self.effect.map_from_tissue(tissue, mask, labels, spacing_mm), predicted

    def to_vector(self) -> np.ndarray:
        """One flat float vector (a buffer in the weights): fwhm, n pairs, slopes, intercept, coef, feature mean."""
        e, a = self.effect, self.age_from_t1
        head = [e.pet_fwhm_mm, e.n_pairs, len(e.slope_per_decade), a.intercept, len(a.coef)]
        return np.concatenate([head, e.slope_per_decade, a.coef, a.feature_mean]).astype(np.float64)

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> PairsAgeModel:
        fwhm, n_pairs, n_slopes, intercept, n_coef = vector[:5]
        n_slopes, n_coef = int(n_slopes), int(n_coef)
        rest = vector[5:]
        slopes, coef, mean = rest[:n_slopes], rest[n_slopes : n_slopes + n_coef], rest[n_slopes + n_coef :]
        return cls(PairsAgeEffect(slopes, float(fwhm), int(n_pairs)), AgeFromT1(float(intercept), coef, mean))


def fit_pairs_age_model(
    t1: np.ndarray,
    pet: np.ndarray,
    mask: np.ndarray,
    ages: np.ndarray,
    diagnoses: list[str] | None,
    labels: np.ndarray,
    spacing_mm: float,
    fwhm_mm: float = DEFAULT_PET_FWHM_MM,
) -> PairsAgeModel:
    """Fit both parts on training pairs (n, X, Y, Z arrays; subjects without an age are left out)."""
    known = np.isfinite(ages)
    uptakes, features = [], []
    for i in np.flatnonzero(known):
        tissue = tissue_fractions(t1[i], mask[i])
        uptakes.append(_uptakes_from(tissue, pet[i], mask[i], labels, fwhm_mm, spacing_mm))
        features.append(regional_values(tissue[1], labels, mask[i]))
    kept = None if diagnoses is None else [diagnoses[i] for i in np.flatnonzero(known)]
    if kept is not None and any(d is None for d in kept):
        kept = None
    effect = fit_pairs_age_effect(np.stack(uptakes), ages[known], kept, fwhm_mm)
    return PairsAgeModel(effect, fit_age_from_t1(np.stack(features), ages[known]))
