"""Split-conformal intervals for regional SUVR: calibrated on pairs the model never trained on.

For each region, the scores of n calibration subjects (|real - synthetic| regional SUVR, or that over
the model's own std where it has one) give the half-width q = the ceil((n + 1) c)-th smallest score.
A new subject exchangeable with them then has its real value inside synthetic +- q with probability
at least c (Vovk et al. 2005; Lei et al., JASA 2018), whatever the model. With n = 20 and c = 0.9 that is
the 19th of 20 scores: expected coverage 19/21 = 90.5 %.

Written here (a dozen lines) rather than taken from MAPIE or crepes: those wrap an estimator's fit and
predict, while our predictions are made once per subject by a 3D network and reused for 116 regions.
"""

from __future__ import annotations

import math

import numpy as np

MIN_SUBJECTS = 9  # below ceil((n + 1) 0.9) <= n fails: a 90 % interval needs at least 9 subjects


def conformal_quantile(scores: np.ndarray, coverage: float = 0.90) -> float:
    """The split-conformal quantile of ``scores`` (NaN ignored); inf where too few to reach ``coverage``."""
    scores = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])
    rank = math.ceil((len(scores) + 1) * coverage)
    return float(scores[rank - 1]) if 1 <= rank <= len(scores) else math.inf


def regional_half_widths(
    real: np.ndarray, synthetic: np.ndarray, stds: np.ndarray | None = None, coverage: float = 0.90
) -> np.ndarray:
    """Per region (columns of the (subjects, regions) arrays): the half-width of the ``coverage`` interval.

    With ``stds`` (the model's own per-subject regional std), the result is a factor on that std
    (normalised scores: wider where the model is less sure); without, a half-width in SUVR.
    """
    scores = np.abs(np.asarray(real) - np.asarray(synthetic))
    if stds is not None:
        scores = scores / np.maximum(np.asarray(stds), 1e-6)
    return np.array([conformal_quantile(scores[:, j], coverage) for j in range(scores.shape[1])])


def coverage_of(real: np.ndarray, synthetic: np.ndarray, half_widths: np.ndarray) -> float:
    """Fraction of (subject, region) values inside synthetic +- half-width (NaN ignored)."""
    inside = np.abs(np.asarray(real) - np.asarray(synthetic)) <= np.asarray(half_widths)[None, :]
    valid = np.isfinite(real) & np.isfinite(synthetic)
    return float(inside[valid].mean())
