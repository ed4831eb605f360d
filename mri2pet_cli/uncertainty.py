"""Calibrated sample standard deviations for sampling models (DUAL-GLOW).

The std of a flow's draws is a relative measure: its size depends on how well the learned prior's
spread matches the real errors. A model card may carry ``uncertainty_calibration``: one factor,
fitted on the validation split, that makes the Gaussian 90 % interval (point estimate +- 1.645 std)
cover 90 % of the validation voxel errors (std scaling, e.g. Laves et al., MIDL 2020). It holds for
the sample count and temperature it was fitted with, so it is applied only there.
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
