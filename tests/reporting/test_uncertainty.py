"""The std calibration of sampling models: the fitted factor, the coverage, and where it applies."""

import numpy as np
import pytest

from mri2pet_cli.reporting.uncertainty import (
    Z90,
    calibrated_std,
    chosen_region_shrink,
    interval_coverage,
    region_intervals,
    region_std_scales,
    std_scale_for_coverage,
)


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


def test_region_factors_follow_each_regions_error_size_and_cover_ninety_percent():
    rng = np.random.default_rng(1)
    subjects, regions = 400, 6
    stds = rng.uniform(0.02, 0.04, (subjects, regions))
    truth = np.array([1.0, 1.0, 2.0, 3.0, 5.0, 8.0])  # how much larger each region's errors are than its std
    errors = rng.normal(0.0, truth * stds)
    scales = region_std_scales(errors, stds)
    np.testing.assert_allclose(scales / scales[0], truth, rtol=0.12)
    assert interval_coverage(errors.ravel(), (stds * scales).ravel()) == pytest.approx(0.90, abs=0.005)
    # few subjects: a region's factor is pulled towards the pooled one, not set by three draws
    few = region_std_scales(errors[:3], stds[:3])
    assert np.ptp(few / few.mean()) < np.ptp(truth / truth.mean())


def test_region_intervals_use_the_mean_std_in_the_region_and_only_the_fitted_settings():
    labels = np.zeros((4, 4, 4), np.int16)
    labels[:2], labels[2:] = 3, 7
    std = np.where(labels == 3, 0.01, 0.03).astype(np.float32)
    mask = np.ones_like(labels, bool)
    card = {"uncertainty_calibration": {"samples": 8, "temperature": 1.0, "region_std_scale": {"3": 2.0, "7": 1.0}}}
    half = region_intervals(std, labels, mask, card, 8, 1.0)
    assert half == pytest.approx({3: Z90 * 0.02, 7: Z90 * 0.03})
    assert region_intervals(std, labels, mask, card, 4, 1.0) is None
    assert region_intervals(std, labels, mask, {}, 8, 1.0) is None


def test_region_table_carries_the_intervals_into_the_csv_only_when_given(tmp_path):
    from mri2pet_cli.reporting.report import roi_table, write_roi_csv
    from mri2pet_cli.space.grid import ModelGrid

    grid = ModelGrid(shape=(4, 4, 4), spacing=2.5)
    labels = np.zeros((4, 4, 4), np.int16)
    labels[:2], labels[2:] = 1, 2  # precentral left and right
    pet, mask = np.ones((4, 4, 4), np.float32), np.ones((4, 4, 4), bool)
    with_intervals = roi_table(pet, labels, mask, grid, intervals={1: 0.05})
    rows = {r["label"]: r for r in with_intervals}
    assert rows[1]["interval90_suvr"] == 0.05 and np.isnan(rows[2]["interval90_suvr"])
    text = write_roi_csv(with_intervals, tmp_path / "a.csv", overwrite=False).read_text().splitlines()
    assert text[0].endswith(",interval90_suvr") and text[1].endswith(",0.0500")
    plain = write_roi_csv(roi_table(pet, labels, mask, grid), tmp_path / "b.csv", overwrite=False)
    assert "interval" not in plain.read_text()


def test_shrinkage_is_chosen_by_held_out_subjects():
    rng = np.random.default_rng(2)
    stds = np.full((15, 40), 0.03)
    same = rng.normal(0.0, 2.0 * stds)  # every region errs alike: pool
    differ = rng.normal(0.0, np.linspace(0.5, 6.0, 40) * stds)  # regions differ a lot: keep them apart
    candidates = (0.5, 2, 50)
    assert chosen_region_shrink(same, stds, candidates) == 50
    assert chosen_region_shrink(differ, stds, candidates) < 50


def test_within_region_correlation_scores_who_is_wrong_not_which_region_is_hard():
    from mri2pet_cli.reporting.uncertainty import within_region_correlation

    rng = np.random.default_rng(0)
    hardness = np.array([0.05, 0.1, 0.4])  # regions differ a lot in their typical error
    errors = hardness * rng.uniform(0.5, 1.5, (30, 3))
    fixed = np.broadcast_to(hardness, errors.shape)  # a width per region: right on average, blind per subject
    assert within_region_correlation(fixed, errors) == 0.0
    assert np.corrcoef(fixed.ravel(), errors.ravel())[0, 1] > 0.7  # what pooling over regions would credit it
    tracking = errors * rng.uniform(0.9, 1.1, errors.shape)
    assert within_region_correlation(tracking, -errors) > 0.9  # |error|: the sign does not matter
    errors[0, 0] = np.nan
    assert np.isfinite(within_region_correlation(tracking, errors))
