"""The std calibration of sampling models: the fitted factor, the coverage, and where it applies."""

import numpy as np
import pytest

from mri2pet_cli.uncertainty import Z90, calibrated_std, interval_coverage, std_scale_for_coverage


def test_scale_makes_gaussian_intervals_cover_ninety_percent():
    rng = np.random.default_rng(0)
    std = rng.uniform(0.05, 0.2, 200_000)
    errors = rng.normal(0.0, 2.5 * std)  # the model's std is 2.5 times too small
    assert interval_coverage(errors, std) == pytest.approx(0.49, abs=0.01)  # P(|z| <= 1.645 / 2.5)
    scale = std_scale_for_coverage(errors, std)
    assert scale == pytest.approx(2.5, rel=0.02)
    assert interval_coverage(errors, std, scale) == pytest.approx(0.90, abs=0.002)
    assert Z90 == pytest.approx(1.6448536, abs=1e-7)


def test_card_factor_applies_only_to_the_settings_it_was_fitted_for():
    std = np.full((2, 2, 2), 0.1, np.float32)
    card = {"uncertainty_calibration": {"std_scale": 1.5, "samples": 8, "temperature": 1.0}}
    scaled, note = calibrated_std(std, card, 8, 1.0)
    assert np.allclose(scaled, 0.15) and "calibrated" in note and "x 1.50" in note
    same, note = calibrated_std(std, card, 4, 1.0)
    assert same is std and "not calibrated" in note and "8 samples" in note
    same, note = calibrated_std(std, {}, 8, 1.0)
    assert same is std and "no calibration" in note
