"""Simulator properties. Subjects are rendered in memory on the simulation grid (a few seconds each)."""

import dataclasses
import json

import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.simulation.anatomy import SIM_GRID, render_subject
from mri2pet_cli.simulation.cohort import subject_paths
from mri2pet_cli.simulation.population import draw_subject
from mri2pet_cli.simulation.scanner import native_pet, native_t1, native_to_mni
from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, mean_in_labels, reference_labels, region_labels


def suvr(volumes, regions) -> float:
    ref = mean_in_labels(volumes.pet_mni, volumes.labels, reference_labels())
    return mean_in_labels(volumes.pet_mni, volumes.labels, region_labels(regions)) / ref


def as_subject(index: int, **changes):
    return dataclasses.replace(draw_subject(11, index), **changes)


@pytest.fixture(scope="module")
def young_old():
    """The same two people rendered at 60 and at 85 (cognitively normal)."""
    out = {}
    for index in (0, 1):
        for age in (60.0, 85.0):
            s = as_subject(index, age=age, brain_age=age, diagnosis="CN", severity=0.0)
            out[index, age] = render_subject(s)
    return out


def test_same_seed_same_subject():
    a, b = draw_subject(3, 5), draw_subject(3, 5)
    assert a == b
    assert draw_subject(4, 5) != a
    va, vb = render_subject(a), render_subject(b)
    np.testing.assert_array_equal(va.pet_mni, vb.pet_mni)
    np.testing.assert_array_equal(native_t1(a, va).get_fdata(), native_t1(b, vb).get_fdata())


def test_ad_subjects_have_lower_pet_in_ad_regions_than_cn_of_same_age():
    for index in (2, 3):
        cn = render_subject(as_subject(index, age=75.0, brain_age=75.0, diagnosis="CN", severity=0.0))
        ad = render_subject(as_subject(index + 10, age=75.0, brain_age=75.0, diagnosis="AD", severity=0.8))
        assert suvr(ad, AD_PATTERN_REGIONS) < 0.9 * suvr(cn, AD_PATTERN_REGIONS)


def test_pet_falls_with_age_in_frontal_regions(young_old):
    for index in (0, 1):
        assert suvr(young_old[index, 85.0], FRONTAL_REGIONS) < 0.97 * suvr(young_old[index, 60.0], FRONTAL_REGIONS)


def test_grey_matter_volume_falls_with_age(young_old):
    for index in (0, 1):
        young, old = young_old[index, 60.0], young_old[index, 85.0]
        assert old.gm_volume_ml < 0.95 * young.gm_volume_ml
        assert old.ventricle_volume_ml > 1.1 * young.ventricle_volume_ml
        # and it shows in the T1 itself: cortex is darker (more CSF in the partial volume)
        cortex = np.isin(young.labels, region_labels(FRONTAL_REGIONS))
        assert old.t1_mni[cortex].mean() < young.t1_mni[cortex].mean()


def test_part_of_pet_is_invisible_in_t1():
    """Chronological age changes PET but, with brain age fixed, not the T1."""
    a = render_subject(as_subject(4, age=60.0, brain_age=70.0))
    b = render_subject(as_subject(4, age=85.0, brain_age=70.0))
    np.testing.assert_allclose(a.t1_mni, b.t1_mni)
    assert suvr(b, FRONTAL_REGIONS) < 0.95 * suvr(a, FRONTAL_REGIONS)


def test_pet_contrast_gm_about_four_times_wm():
    from mri2pet_cli.space.atlas import template_maps

    v = render_subject(as_subject(5))
    maps = template_maps(SIM_GRID)
    gm = v.pet_mni[(maps.gm > 0.9) & np.isin(v.labels, region_labels(("Calcarine", "Lingual")))].mean()
    wm = v.pet_mni[maps.wm > 0.95].mean()
    assert 2.0 < gm / wm < 5.0  # 4x before the PSF blur, less after it


def test_raw_scans_are_native_with_skull(tmp_path):
    s = draw_subject(0, 1)
    v = render_subject(s)
    t1 = native_t1(s, v)
    assert t1.get_data_dtype() == np.int16
    assert not np.allclose(native_to_mni(s), np.eye(4), atol=0.05)
    assert 0.95 <= min(t1.header.get_zooms()) and max(t1.header.get_zooms()) <= 1.31
    assert "".join(nib.aff2axcodes(t1.affine)) == s.t1_orientation
    data = t1.get_fdata()
    head_ml = (data > 0.15 * np.percentile(data, 99)).sum() * np.prod(t1.header.get_zooms()) / 1000
    brain_ml = v.brain.sum() * SIM_GRID.voxel_volume_ml * s.head_scale**3
    assert head_ml > brain_ml + 300  # scalp and skull around the brain
    pet = native_pet(s, v)
    assert pet.shape != t1.shape and not np.allclose(pet.affine, t1.affine)


def test_cohort_layout_and_truth(simulated_cohort_latest):
    """The default simulator's files (the shared one-subject v3 cohort, simulated once per run)."""
    rows = (simulated_cohort_latest / "participants.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["participant_id", "age", "sex", "diagnosis"]  # v3: severity is truth only
    assert len(rows) == 2
    for row in rows[1:]:
        pid, age, sex, dx = row.split("\t")
        assert 55 <= float(age) <= 92 and sex in "FM" and dx in ("CN", "MCI", "AD")
        paths = subject_paths(simulated_cohort_latest, pid)
        assert all(p.exists() for p in paths.values())
        truth = json.loads(paths["truth_json"].read_text())
        assert np.asarray(truth["native_to_mni"]).shape == (4, 4)
        mask = nib.load(str(paths["truth_mask"]))
        assert mask.shape == (64, 80, 64)
        assert 1200 < mask.get_fdata().sum() * 2.5**3 / 1000 < 2400
    description = json.loads((simulated_cohort_latest / "dataset_description.json").read_text())
    assert description["mri2pet_simulation"]["seed"] == 5


def test_a_rerun_after_a_kill_skips_the_subjects_already_rendered(tmp_path, monkeypatch):
    from dataclasses import asdict

    from mri2pet_cli.simulation import cohort
    from mri2pet_cli.space.grid import default_grid

    subject = draw_subject(7, 0, 3)
    paths = subject_paths(tmp_path, subject.participant_id)
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"rendered")
    truth = {"subject": asdict(subject), "truth_ages": {}}
    paths["truth_json"].write_text(json.dumps(truth))

    def no_rendering(*_):
        raise AssertionError("rendered again")

    monkeypatch.setattr(cohort, "render_subject", no_rendering)
    row = cohort.simulate_subject(7, 0, tmp_path, default_grid(), version=3)
    assert row["participant_id"] == subject.participant_id and row["age"] == subject.age
    # another draw, other truth ages or a missing file: rendered anew (here: refused, the files being there)
    assert not cohort.finished_before(draw_subject(8, 0, 3), paths["truth_json"], list(paths.values()), ())
    assert not cohort.finished_before(subject, paths["truth_json"], list(paths.values()), (60.0,))
    paths["pet"].unlink()
    assert not cohort.finished_before(subject, paths["truth_json"], list(paths.values()), ())
