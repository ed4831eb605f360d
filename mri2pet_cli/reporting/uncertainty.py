"""Calibrated sample standard deviations for sampling models (DUAL-GLOW).

The std of a flow's draws is a relative measure: its size depends on how well the learned prior's
spread matches the real errors. A model card may carry ``uncertainty_calibration``: one factor,
fitted on the validation split, that makes the Gaussian 90 % interval (point estimate +- 1.645 std)
cover 90 % of the validation voxel errors (std scaling, e.g. Laves et al., MIDL 2020). It holds for
the sample count and temperature it was fitted with, so it is applied only there.

Regions need their own factors: a region's error is mostly the model's bias there, which the draws do
not see, and it differs between regions (small and deep regions are harder). The card may carry one
factor per AAL region (``region_std_scale``), fitted on the validation split against the mean voxel
std in the region, so the report gives each region a 90 % interval that covers 90 % of the validation
errors across regions and subjects, wider where that region's errors were larger.
"""

from __future__ import annotations

import numpy as np

Z90 = 1.6448536269514722  # standard normal quantile of 0.95: a two-sided 90 % interval


def std_scale_for_coverage(errors: np.ndarray, stds: np.ndarray, coverage: float = 0.90) -> float:
    """The factor s with ``mean(|error| <= Z90 * s * std) == coverage`` over the given voxels."""
    ratio = np.abs(errors) / np.maximum(stds, 1e-12)
    return float(np.quantile(ratio, coverage) / Z90)


def interval_coverage(errors: np.ndarray, stds: np.ndarray, scale: float = 1.0) -> float:
    """Fraction of errors inside the 90 % interval +- Z90 * scale * std."""
    return float(np.mean(np.abs(errors) <= Z90 * scale * stds))


def within_region_correlation(spread: np.ndarray, abs_error: np.ndarray) -> float:
    """Correlation of a (subjects, regions) spread with |error| after centring each region on its means over
    subjects: does the spread say *which subjects* a region is wrong for? A fixed width per region scores 0."""
    ok = np.isfinite(spread) & np.isfinite(abs_error)
    s, e = np.where(ok, spread, np.nan), np.where(ok, np.abs(abs_error), np.nan)
    s, e = s - np.nanmean(s, axis=0), e - np.nanmean(e, axis=0)
    if np.allclose(s[ok], 0.0) or np.allclose(e[ok], 0.0):
        return 0.0  # nothing varies across subjects within a region
    return float(np.corrcoef(s[ok], e[ok])[0, 1])


REGION_SHRINK_SUBJECTS = 5.0  # default pseudo-subjects pulling a region's factor towards the pooled one


def region_mean_std(std: np.ndarray, labels: np.ndarray, mask: np.ndarray, regions: list[int]) -> np.ndarray:
    """Mean voxel std inside each region (NaN where a region has no voxel in the mask)."""
    from mri2pet_cli.space.atlas import roi_means

    means = roi_means(std, labels, mask > 0)
    return np.array([means.get(region, np.nan) for region in regions])


def region_std_scales(
    errors: np.ndarray, stds: np.ndarray, coverage: float = 0.90, shrink: float = REGION_SHRINK_SUBJECTS
) -> np.ndarray:
    """One factor per region (columns of the (subjects, regions) arrays of regional errors and mean voxel
    stds) so that +- Z90 x factor x std covers ``coverage`` of all the errors given.

    A region's relative size is its root mean square of error / std, shrunk towards the pooled one by
    ``shrink`` pseudo-subjects (a validation split has few subjects per region); one common factor
    then sets the pooled coverage.
    """
    ratio_sq = (errors / np.maximum(stds, 1e-12)) ** 2
    valid = np.isfinite(ratio_sq)
    pooled = float(ratio_sq[valid].mean())
    count = valid.sum(axis=0)
    own = np.where(valid, ratio_sq, 0.0).sum(axis=0)
    relative = np.sqrt((own + shrink * pooled) / (count + shrink))
    common = std_scale_for_coverage(errors[valid], (stds * relative)[valid], coverage)
    return common * relative


def chosen_region_shrink(errors: np.ndarray, stds: np.ndarray, candidates=(0.5, 1, 2, 5, 10, 20, 50)) -> float:
    """The shrinkage (pseudo-subjects) whose factors, fitted without each subject in turn, give that
    subject's regional errors the highest Gaussian log-likelihood (leave-one-subject-out)."""

    def held_out_log_likelihood(shrink: float) -> float:
        total = 0.0
        for k in range(len(errors)):
            rest = np.arange(len(errors)) != k
            sigma = stds[k] * region_std_scales(errors[rest], stds[rest], shrink=shrink) / Z90
            ok = np.isfinite(errors[k]) & np.isfinite(sigma)
            total += float(np.sum(-np.log(sigma[ok]) - 0.5 * (errors[k][ok] / sigma[ok]) ** 2))
        return total

    return float(max(candidates, key=held_out_log_likelihood))


def region_intervals(
    std: np.ndarray, labels: np.ndarray, mask: np.ndarray, card: dict, samples: int, temperature: float
) -> dict[int, float] | None:
    """Half-width (SUVR) of each AAL region's 90 % interval, from the uncalibrated std map and the card's
    per-region factors; None where the card has none for these settings."""
    calibration = card.get("uncertainty_calibration") or {}
    scales = calibration.get("region_std_scale")
    if not scales or (calibration["samples"], calibration["temperature"]) != (samples, temperature):
        return None
    regions = sorted(int(k) for k in scales)
    stds = region_mean_std(std, labels, mask, regions)
    return {r: float(Z90 * scales[str(r)] * s) for r, s in zip(regions, stds) if np.isfinite(s)}


def calibrated_std(std: np.ndarray, card: dict, samples: int, temperature: float) -> tuple[np.ndarray, str]:
    """The std scaled by the card's factor where it was fitted for these settings; and a line saying what was done."""
    calibration = card.get("uncertainty_calibration")
    if not calibration:
        return std, "std not calibrated (no calibration in the model card)"
    fitted = (calibration["samples"], calibration["temperature"])
    if (samples, temperature) != fitted:
        return std, (
            f"std not calibrated: the card's factor was fitted for {fitted[0]} samples at temperature {fitted[1]:g}"
        )
    scale = float(calibration["std_scale"])
    return std * scale, f"std calibrated on the validation split (x {scale:.2f}: 90 % intervals cover 90 %)"
