"""Simulator v3 and v4: ageing and AD that the literature would sign, atrophy and hypometabolism apart."""

import json

import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.errors import UnknownNameError
from mri2pet_cli.simulation import ageing
from mri2pet_cli.simulation.cohort import subject_paths, truth_age_paths
from mri2pet_cli.simulation.fdg_model import calibrated_model
from mri2pet_cli.simulation.fdg_reference import CORRECTED_AGE, GREY_MATTER_LOSS, REGIONS
from mri2pet_cli.simulation.population import (
    ATROPHY_LAG_BY_VERSION,
    DEFAULT_VERSION,
    atrophy_severity,
    draw_subject,
    parse_diagnosis_mix,
)

NON_CORTICAL = ("caudate", "putamen", "pallidum", "thalamus", "vermis")


def test_version_4_is_the_default_and_shares_demographics_with_versions_2_and_3():
    assert DEFAULT_VERSION == 4
    for i in range(20):
        v2, v3, v4 = draw_subject(1, i, 2), draw_subject(1, i, 3), draw_subject(1, i, 4)
        assert (v2.age, v2.diagnosis, v2.severity, v2.scanner) == (v3.age, v3.diagnosis, v3.severity, v3.scanner)
        assert (v3.age, v3.diagnosis, v3.severity, v3.scanner, v3.brain_age) == (
            v4.age,
            v4.diagnosis,
            v4.severity,
            v4.scanner,
            v4.brain_age,
        )
        assert v3.extras["version"] == 3 and v4.extras["version"] == 4 and "atrophy_severity" in v3.extras
        assert "atrophy_severity" not in v2.extras and atrophy_severity(v2) == v2.severity


def test_version_4_differs_from_3_only_in_how_far_atrophy_lags_hypometabolism():
    assert ATROPHY_LAG_BY_VERSION[3] < ATROPHY_LAG_BY_VERSION[4] < 1.0  # atrophy still below hypometabolism
    moved = 0
    for i in range(60):
        v3, v4 = draw_subject(4, i, 3), draw_subject(4, i, 4)
        assert {k: v for k, v in v3.extras.items() if k not in ("version", "atrophy_severity")} == {
            k: v for k, v in v4.extras.items() if k not in ("version", "atrophy_severity")
        }
        assert atrophy_severity(v4) >= atrophy_severity(v3)  # the same scatter draw, a larger mean
        moved += atrophy_severity(v4) > atrophy_severity(v3)
    assert moved > 10
    v3_fit, v4_fit = calibrated_model(3), calibrated_model(4)
    assert v4_fit.factor == v3_fit.factor and v4_fit.age_pct_per_decade == v3_fit.age_pct_per_decade
    assert v4_fit.pair_sd_by_row == v3_fit.pair_sd_by_row  # CN are the same: only the AD step is refitted


@pytest.mark.parametrize("version", [3, 4])
def test_atrophy_follows_the_metabolic_severity_without_being_it(version):
    subjects = [draw_subject(2, i, version) for i in range(400)]
    metabolic = np.array([s.severity for s in subjects])
    atrophy = np.array([atrophy_severity(s) for s in subjects])
    dx = np.array([s.diagnosis for s in subjects])
    r = np.corrcoef(metabolic, atrophy)[0, 1]
    assert 0.5 < r < 0.95  # correlated, not determined
    assert atrophy[dx == "AD"].mean() > atrophy[dx == "MCI"].mean() > atrophy[dx == "CN"].mean()
    assert atrophy[dx == "AD"].mean() < metabolic[dx == "AD"].mean()  # hypometabolism exceeds atrophy
    within_ad = np.corrcoef(metabolic[dx == "AD"], atrophy[dx == "AD"])[0, 1]
    # inside a diagnosis the T1 tells much less of the PET's severity (v3 about 0.5, v4 about 0.6)
    assert within_ad < min(r, 0.8)


def test_the_diagnosis_mix_sets_the_cohorts_diagnoses():
    mix = parse_diagnosis_mix("CN=0.5,AD=0.5")
    assert mix == {"CN": 0.5, "MCI": 0.0, "AD": 0.5}
    dx = [draw_subject(3, i, 3, diagnosis_p=mix).diagnosis for i in range(200)]
    assert "MCI" not in dx and 0.38 < dx.count("AD") / 200 < 0.62
    for bad in ("CN=0.5,AD=0.4", "XX=1", "CN=0.5;AD=0.5", "CN=-0.5,AD=1.5"):
        with pytest.raises(UnknownNameError):
            parse_diagnosis_mix(bad)
    with pytest.raises(ValueError, match="version 3"):
        draw_subject(3, 0, 2, diagnosis_p=mix)


@pytest.mark.parametrize("version", [3, 4])
def test_metabolic_age_slopes_have_the_corrected_literatures_signs_and_sizes(version):
    model = calibrated_model(version)
    reference = model.reference_age_pct_per_decade
    assert reference > 0  # the cerebellum's metabolism rises with age after PVC (Bonte 2017)
    for region in REGIONS:
        ratio = model.age_pct_per_decade[region.name] - reference  # against the cerebellar cortex
        if region.name not in NON_CORTICAL:
            assert ratio < 0, region.name
        if region.name in CORRECTED_AGE:
            assert abs(ratio - CORRECTED_AGE[region.name]) <= 1.5, region.name
    assert model.age_pct_per_decade["thalamus"] > reference  # Bonte 2017: thalamus rises
    assert all(v <= 0 for v in model.ad_pct.values())  # AD only lowers metabolism


@pytest.mark.parametrize(
    ("structure", "rate"),
    [
        ("cerebral cortex", ageing.ATROPHY_PER_YEAR["cortex"]),
        ("hippocampus", ageing.ATROPHY_PER_YEAR["medial_temporal"]),
        ("cerebellum", ageing.ATROPHY_PER_YEAR["cerebellum"]),
    ],
)
def test_v3_atrophy_rates_lie_in_the_cited_volumetric_ranges(structure, rate):
    at_70 = 1.0 - rate * (70.0 - ageing.ATROPHY_START_AGE)
    pct_per_decade = -rate * 10.0 / at_70 * 100.0
    low, high = GREY_MATTER_LOSS[structure]["pct_per_decade"]
    assert low <= pct_per_decade <= high


def test_v3_tissue_signal_comes_from_the_corrected_literature():
    cortex = ageing.CORTEX_TO_CEREBELLUM * ageing.UPTAKE["gm"]
    assert ageing.UPTAKE["csf"] / cortex == pytest.approx(0.15)  # Greve 2016
    assert 0.2 <= ageing.UPTAKE["wm"] / cortex < 0.47  # below the uncorrected 0.47 of Huang 1980


def test_the_default_subject_writes_both_severities_into_its_truth(simulated_cohort_latest):
    truth = json.loads(subject_paths(simulated_cohort_latest, "sub-001")["truth_json"].read_text())
    assert truth["cohort_version"] == 4
    assert set(truth["severities"]) == {"metabolic", "atrophy"}
    assert truth["severities"]["metabolic"] == truth["subject"]["severity"]


def test_counterfactual_truth_files(simulated_cohort_latest):
    paths = subject_paths(simulated_cohort_latest, "sub-001")
    truth = json.loads(paths["truth_json"].read_text())
    assert set(truth["truth_ages"]) == {"60", "90"}
    young, old = (truth_age_paths(simulated_cohort_latest, "sub-001", age) for age in (60.0, 90.0))

    def data(p):
        return nib.load(str(p)).get_fdata()

    assert not np.allclose(data(young["age_only_pet"]), data(old["age_only_pet"]))
    assert not np.allclose(data(young["aged_t1"]), data(old["aged_t1"]))
    assert not np.allclose(data(young["aged_pet"]), data(young["age_only_pet"]))
    description = json.loads((simulated_cohort_latest / "dataset_description.json").read_text())
    assert description["mri2pet_simulation"]["version"] == 4
