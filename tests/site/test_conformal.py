"""Split-conformal intervals reach their nominal coverage on exchangeable data (a statistical test, fixed seed)."""

import math

import numpy as np
import pytest

from mri2pet_cli.site.conformal import conformal_quantile, coverage_of, regional_half_widths


def test_the_quantile_is_the_right_order_statistic_and_infinite_when_too_few():
    scores = np.arange(1.0, 21.0)  # 20 scores: ceil(21 x 0.9) = 19th
    assert conformal_quantile(scores, 0.9) == 19.0
    assert conformal_quantile(np.arange(1.0, 9.0), 0.9) == math.inf  # 8 scores cannot give 90 %
    assert conformal_quantile(np.array([np.nan, *range(1, 21)], dtype=float), 0.9) == 19.0


@pytest.mark.parametrize("normalised", [False, True])
def test_intervals_cover_ninety_percent_over_many_calibration_draws(normalised):
    rng = np.random.default_rng(0)
    coverages = []
    for _ in range(300):
        # 20 calibration + 200 test subjects, 5 regions with their own error sizes and a bias
        sd = rng.uniform(0.02, 0.1, 5)
        bias = rng.normal(0, 0.03, 5)
        stds = sd * rng.uniform(0.5, 1.5, (220, 5))  # the model's own std, where it has one
        errors = bias + rng.standard_t(5, (220, 5)) * (stds if normalised else sd)
        synthetic = rng.uniform(1.0, 1.5, (220, 5))
        real = synthetic + errors
        widths = regional_half_widths(real[:20], synthetic[:20], stds[:20] if normalised else None)
        if normalised:
            inside = np.abs(real[20:] - synthetic[20:]) <= widths * stds[20:]
            coverages.append(inside.mean())
        else:
            coverages.append(coverage_of(real[20:], synthetic[20:], widths))
    mean = float(np.mean(coverages))
    assert 0.89 <= mean <= 0.92  # theory: 19/21 = 0.905
    assert np.std(coverages) > 0.01  # single draws scatter: that is why the benchmark averages over splits


def test_a_site_with_larger_errors_is_under_covered_by_another_sites_calibration():
    rng = np.random.default_rng(1)
    home = rng.normal(0, 0.03, (25, 4))
    far = rng.normal(0.02, 0.06, (200, 4))
    widths = regional_half_widths(home, np.zeros_like(home))
    assert coverage_of(far, np.zeros_like(far), widths) < 0.75
