"""The pairs-only age effect: a partial-volume model recovers uptake slopes that atrophy hides from a plain
regression of regional PET on age."""

from __future__ import annotations

import numpy as np
import pytest

from mri2pet_cli.models.age_effect import (
    PairsAgeEffect,
    blur,
    compartment_names,
    compartments,
    fit_pairs_age_effect,
    subject_uptakes,
)
from mri2pet_cli.space.atlas import aal_names

SPACING = 2.5
FWHM = 6.0
CSF_T1, GM_T1, WM_T1 = 0.2, 0.6, 1.0


def value_of(name: str) -> int:
    return next(v for v, n in aal_names().items() if n == name)


def phantom(age: float) -> tuple[np.ndarray, ...]:
    """A slab brain: CSF | a frontal grey-matter band | white matter | a precuneus band | CSF, with crisp tissue
    (so the 3-class mixture segments it exactly). Grey matter thins with age (atrophy: grey matter -> CSF),
    frontal uptake falls 0.1 SUVR per decade with the anatomy fixed, precuneus uptake does not change."""
    shape = (40, 24, 24)
    labels = np.zeros(shape, dtype=np.int16)
    tissue = np.full(shape, 2, dtype=np.int8)  # 0 CSF, 1 GM, 2 WM
    thickness = int(round(5 - (age - 60.0) / 10.0))  # 5 voxels (12.5 mm) at 60, 2 at 90
    tissue[:4] = 0
    tissue[4 : 4 + thickness] = 1
    tissue[4 + thickness : 9] = 0  # lost grey matter is CSF
    labels[4 : 4 + thickness] = value_of("Frontal_Sup_L")
    tissue[26:34] = 1
    labels[26:34] = value_of("Precuneus_L")
    tissue[34:] = 0
    t1 = np.choose(tissue, [CSF_T1, GM_T1, WM_T1]).astype(np.float32)
    decades = (age - 70.0) / 10.0
    uptake = np.choose(tissue, [0.05, 1.0, 0.9]).astype(np.float32)
    uptake[labels == value_of("Frontal_Sup_L")] = 1.6 - 0.1 * decades
    uptake[labels == value_of("Precuneus_L")] = 1.5
    pet = blur(uptake[None], FWHM, SPACING)[0]
    mask = np.ones(shape, dtype=bool)
    mask[:, :2] = mask[:, -2:] = False  # a masked border, as brains have
    return t1, pet, mask, labels


def frontal_mean(volume: np.ndarray, labels: np.ndarray) -> float:
    return float(volume[labels == value_of("Frontal_Sup_L")].mean())


def test_compartments_partition_the_mask():
    t1, _pet, mask, labels = phantom(70.0)
    parts = compartments(t1, mask, labels)
    assert parts.shape[0] == len(compartment_names())
    np.testing.assert_allclose(parts.sum(axis=0)[mask], 1.0, atol=1e-5)
    assert parts[:, ~mask].max() == 0.0


def test_gtm_recovers_the_uptake_slope_that_a_plain_regression_misses():
    ages = np.array([60.0, 64, 68, 72, 76, 80, 84, 88, 62, 74, 86, 90])
    pairs = [phantom(a) for a in ages]
    uptakes = np.stack([subject_uptakes(t1, pet, mask, labels, FWHM, SPACING) for t1, pet, mask, labels in pairs])
    effect = fit_pairs_age_effect(uptakes, ages, None, FWHM)
    names = compartment_names()
    frontal = names.index("grey matter: Frontal_Sup")
    precuneus = names.index("grey matter: Precuneus")
    assert effect.slope_per_decade[frontal] == pytest.approx(-0.1, abs=0.02)
    assert effect.slope_per_decade[precuneus] == pytest.approx(0.0, abs=0.02)

    # the naive slope of the measured regional PET mixes in the thinning (partial volume with CSF)
    observed = np.array([frontal_mean(pet, labels) for _t1, pet, _mask, labels in pairs])
    naive = np.polyfit((ages - 70) / 10, observed, 1)[0]
    assert naive < -0.15

    # the subject's own anatomy, fixed, carries the change: the map reproduces the PET of ten more years
    t1, pet, mask, labels = phantom(70.0)
    change = effect.per_decade_map(t1, mask, labels, SPACING)
    assert frontal_mean(change, labels) == pytest.approx(
        -0.1
        * frontal_mean(blur((labels == value_of("Frontal_Sup_L"))[None].astype(np.float32), FWHM, SPACING)[0], labels),
        abs=0.02,
    )
    assert abs(float(change[labels == value_of("Precuneus_L")].mean())) < 0.02


def test_diagnosis_covariate_keeps_disease_out_of_the_age_slope():
    rng = np.random.default_rng(0)
    ages = rng.uniform(60, 90, 40)
    diagnoses = ["AD" if a > 75 and i % 2 else "CN" for i, a in enumerate(ages)]
    # one compartment: no age effect, disease lowers it by 0.3; AD are the older subjects
    uptakes = (1.5 - 0.3 * np.array([d == "AD" for d in diagnoses]) + rng.normal(0, 0.01, 40))[:, None]
    assert fit_pairs_age_effect(uptakes, ages, None, FWHM).slope_per_decade[0] < -0.05
    assert fit_pairs_age_effect(uptakes, ages, diagnoses, FWHM).slope_per_decade[0] == pytest.approx(0, abs=0.02)


def test_arrays_round_trip():
    effect = PairsAgeEffect(np.linspace(-0.1, 0.1, len(compartment_names())), 7.5, 33)
    again = PairsAgeEffect.from_arrays(**effect.to_arrays())
    np.testing.assert_allclose(again.slope_per_decade, effect.slope_per_decade, atol=1e-7)
    assert (again.pet_fwhm_mm, again.n_pairs) == (7.5, 33)


def test_painted_map_equals_the_sum_of_blurred_compartments():
    t1, _pet, mask, labels = phantom(75.0)
    effect = PairsAgeEffect(np.random.default_rng(1).normal(0, 0.1, len(compartment_names())), FWHM, 10)
    parts = compartments(t1, mask, labels)
    expected = np.tensordot(effect.slope_per_decade, blur(parts, FWHM, SPACING), axes=1) * mask
    np.testing.assert_allclose(effect.per_decade_map(t1, mask, labels, SPACING), expected, atol=1e-5)
