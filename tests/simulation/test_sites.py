"""Site profiles change what they say and nothing else."""

from dataclasses import asdict

import numpy as np
import pytest

from mri2pet_cli.errors import UnknownNameError
from mri2pet_cli.simulation.population import AGE_RANGE, draw_subject
from mri2pet_cli.simulation.sites import CHANGED_FIELDS, site_profile, site_profiles, site_table


def flat(subject) -> dict:
    fields = asdict(subject)
    extras = fields.pop("extras")
    return fields | {f"extras.{k}": v for k, v in extras.items()}


def test_home_is_the_training_cohort_unchanged():
    for i in range(30):
        assert draw_subject(4, i, 3, site="home") == draw_subject(4, i, 3)


@pytest.mark.parametrize("name", ["near", "far", "clinic", "modern"])
def test_a_site_changes_only_the_fields_its_profile_names(name):
    changes = site_profile(name)["changes"]
    allowed = {"extras.site"} | {f for key in changes for f in CHANGED_FIELDS[key]}
    changed_ever: set[str] = set()
    for i in range(150):
        home, site = flat(draw_subject(5, i, 3)), flat(draw_subject(5, i, 3, site=name))
        changed = {k for k in home.keys() | site.keys() if home.get(k) != site.get(k)}
        changed.discard("extras.atrophy_severity")  # follows the (possibly new) metabolic severity
        assert changed <= allowed, changed - allowed
        changed_ever |= changed
        variety = site["extras.variety"]
        if "low_contrast" not in variety and "t1_scanners" in changes:
            assert site["scanner"] in changes["t1_scanners"]
        if "thick_slices" not in variety and "t1_spacing_mm" in changes:
            assert site["t1_spacing_mm"] == changes["t1_spacing_mm"]
        if "pet_fwhm_mm" in changes:
            assert changes["pet_fwhm_mm"][0] <= site["psf_fwhm_mm"] <= changes["pet_fwhm_mm"][1]
        if "age_range" in changes:
            assert changes["age_range"][0] <= site["age"] <= changes["age_range"][1]
            assert site["brain_age"] - site["age"] == pytest.approx(home["brain_age"] - home["age"], abs=0.06)
    for key in changes:  # each entry does change what it names
        assert changed_ever & set(CHANGED_FIELDS[key]), key


def test_the_far_sites_population_is_its_own_and_the_fewest_diagnoses_change():
    mix = site_profile("far")["changes"]["diagnosis_mix"]
    pairs = [(draw_subject(6, i, 3).diagnosis, draw_subject(6, i, 3, site="far").diagnosis) for i in range(600)]
    far = [b for _, b in pairs]
    for dx, fraction in mix.items():
        assert abs(far.count(dx) / len(far) - fraction) < 0.06
    # more AD and fewer CN than home: no AD turns CN, no CN is kept where an AD was needed
    assert not any(a == "AD" and b != "AD" for a, b in pairs)
    ages = [draw_subject(6, i, 3, site="far").age for i in range(200)]
    assert min(ages) >= site_profile("far")["changes"]["age_range"][0] > AGE_RANGE[0]


def test_sites_need_version_3_and_a_known_name():
    with pytest.raises(ValueError, match="version 3"):
        draw_subject(0, 0, 2, site="far")
    with pytest.raises(UnknownNameError, match="unknown site 'fra'") as info:
        site_profile("fra")
    assert "far" in info.value.hint
    assert set(site_profiles()) >= {"home", "near", "far"}
    assert site_table().count("\n") == len(site_profiles()) + 1


def test_an_explicit_diagnosis_mix_wins_over_the_sites():
    mix = {"CN": 1.0, "MCI": 0.0, "AD": 0.0}
    assert {draw_subject(7, i, 3, diagnosis_p=mix, site="far").diagnosis for i in range(40)} == {"CN"}
    assert np.mean([draw_subject(7, i, 3, site="far").psf_fwhm_mm for i in range(40)]) > 9.0
