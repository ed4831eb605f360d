"""Simulator v2: the literature FDG pattern, its effects, the real-scan variety, versions, counterfactual truth."""

import dataclasses

import numpy as np
import pytest

from mri2pet_cli.simulation.anatomy import render_subject
from mri2pet_cli.simulation.cohort import (
    counterfactual_subjects,
    on_model_grid,
)
from mri2pet_cli.simulation.fdg_model import AD_REFERENCE_SEVERITY, row_suvr
from mri2pet_cli.simulation.fdg_reference import REGIONS, scored_regions
from mri2pet_cli.simulation.population import BRAIN_CENTER_MNI, draw_subject
from mri2pet_cli.simulation.scan_variety import VARIETIES, motion_ringing, variety_probabilities
from mri2pet_cli.simulation.scanner import native_t1, native_to_mni
from mri2pet_cli.space.grid import default_grid

NONE = variety_probabilities("none")


def cn(index: int, age: float = 70.0, **changes):
    base = draw_subject(31, index, 2, NONE)
    return dataclasses.replace(base, diagnosis="CN", severity=0.0, age=age, brain_age=age, **changes)


def measured(volumes) -> dict[str, float]:
    grid = default_grid()
    return row_suvr(on_model_grid(volumes.pet_mni, grid), on_model_grid(volumes.labels, grid, order=0))


@pytest.fixture(scope="module")
def cn_70():
    """Two CN people at 70 with the population pattern (their own regional variation left out)."""
    return [measured(render_subject(cn(i), variation=False)) for i in (0, 1)]


def test_cn_pattern_follows_the_literature(cn_70):
    for suvr in cn_70:
        scored = scored_regions()
        ranked = sorted(scored, key=lambda r: suvr[r.name], reverse=True)
        top, bottom = {r.name for r in ranked[:8]}, {r.name for r in ranked[-4:]}
        assert {"posterior cingulate", "precuneus", "calcarine"} <= top
        assert {"hippocampus", "amygdala", "parahippocampal"} <= bottom
        # most of the cortex 10-40 % above the cerebellar cortex, after the blur
        for name in ("frontal superior", "frontal middle", "parietal inferior", "precuneus", "lateral occipital"):
            assert 1.08 < suvr[name] < 1.5, (name, suvr[name])
    # the two people's mean within one reference SD of the literature mean (the fit was on other people)
    for r in scored_regions():
        mean = np.mean([suvr[r.name] for suvr in cn_70])
        assert abs(mean - r.suvr_mean) < r.suvr_sd, (r.name, mean, r.suvr_mean)


def test_age_lowers_frontal_and_cingulate_more_than_occipital():
    young = measured(render_subject(cn(0, age=60.0)))
    old = measured(render_subject(cn(0, age=85.0)))
    change = {k: (old[k] / young[k] - 1) * 100 / 2.5 for k in young}  # per decade
    for name in ("frontal superior", "frontal middle", "anterior cingulate", "insula"):
        assert -6.0 < change[name] < -1.0, (name, change[name])
    assert change["calcarine"] > change["anterior cingulate"] + 1.0


def test_ad_lowers_posterior_cingulate_and_parietal_but_spares_sensorimotor():
    base = cn(2, age=75.0)
    healthy = measured(render_subject(base))
    ad = measured(render_subject(dataclasses.replace(base, diagnosis="AD", severity=AD_REFERENCE_SEVERITY)))
    effect = {k: (ad[k] / healthy[k] - 1) * 100 for k in healthy}
    table = {r.name: r.ad_pct for r in REGIONS}
    for name in ("posterior cingulate", "precuneus", "angular", "parietal inferior", "lateral temporal"):
        assert effect[name] < -8.0
        assert abs(effect[name] - table[name]) < 6.0, (name, effect[name], table[name])
    assert abs(effect["precentral"]) < 4.0 and abs(effect["calcarine"]) < 4.0


def test_variety_draws_are_recorded_and_switchable():
    everything = draw_subject(0, 3, 2, variety_probabilities("all"))
    assert set(everything.extras["variety"]) >= set(VARIETIES) - {"neck"}  # a cerebellum cut drops the neck
    assert draw_subject(0, 3, 2, NONE).extras["variety"] == {}
    only = draw_subject(0, 3, 2, variety_probabilities("thick_slices,neck"))
    assert set(only.extras["variety"]) == {"thick_slices", "neck"}
    assert max(only.t1_spacing_mm) >= 3.0 and min(only.t1_spacing_mm) <= 1.0


@pytest.fixture(scope="module")
def neck_thick_offset():
    s = draw_subject(0, 5, 2, variety_probabilities("neck,thick_slices,origin_offset"))
    return s, native_t1(s, render_subject(s))


def test_neck_is_below_the_brain(neck_thick_offset):
    s, img = neck_thick_offset
    data = np.asarray(img.dataobj, dtype=np.float32)
    ijk = np.indices(img.shape).reshape(3, -1)
    mni = (native_to_mni(s) @ img.affine)[:3] @ np.vstack([ijk, np.ones(ijk.shape[1])])
    neck = (mni[2] < -120) & (np.abs(mni[0]) < 30) & (np.abs(mni[1] + 25) < 30)
    assert neck.sum() > 1000
    assert np.median(data.reshape(-1)[neck]) > 0.2 * np.percentile(data, 99)


def test_thick_slices_and_origin_offset(neck_thick_offset):
    s, img = neck_thick_offset
    zooms = sorted(img.header.get_zooms()[:3])
    assert zooms[-1] >= 3.0 and zooms[0] <= 1.0
    head_centre_world = np.linalg.inv(native_to_mni(s)) @ np.append(BRAIN_CENTER_MNI, 1.0)
    assert np.linalg.norm(head_centre_world[:3]) > 40.0


def test_cut_field_of_view_leaves_out_the_top_of_the_head():
    s = draw_subject(0, 0, 2, variety_probabilities("cut_fov"))
    s.extras["variety"]["cut_fov"] = {"where": "top", "cut_mm": 10.0}
    img = native_t1(s, render_subject(s))
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in img.shape], indexing="ij")).reshape(3, -1)
    world = img.affine[:3] @ np.vstack([corners, np.ones(8)])
    top_world = (np.linalg.inv(native_to_mni(s)) @ np.array([0.0, -20.0, 78.0, 1.0]))[2]
    assert world[2].max() < top_world


def test_motion_ringing_spreads_signal_along_one_axis():
    block = np.zeros((32, 32, 32), dtype=np.float32)
    block[8:24, 8:24, 8:24] = 1.0
    rung = motion_ringing(block, 1, 0.3, 0.5, np.random.default_rng(0))
    outside = np.ones_like(block, dtype=bool)
    outside[8:24, :, 8:24] = False  # ghosts stay in the rows of the object along the phase axis
    assert rung[8:24, :8, 8:24].mean() > 0.005
    assert rung[outside].max() < 1e-4


def test_versions_are_reproducible_and_differ(tmp_path):
    for version in (1, 2):
        a, b = draw_subject(9, 1, version), draw_subject(9, 1, version)
        assert a == b
        np.testing.assert_array_equal(render_subject(a).pet_mni, render_subject(b).pet_mni)
    assert draw_subject(9, 1, 1).age == draw_subject(9, 1, 2).age  # same demographics


def test_version_1_is_unchanged():
    """Fingerprint of a v1 subject taken before v2 was written: v1 cohorts stay as they were."""
    s = draw_subject(5, 0, 1)
    v = render_subject(s)
    assert float(v.pet_mni.sum(dtype=np.float64)) == pytest.approx(4440252.7116, rel=1e-6)
    assert float(v.t1_mni.sum(dtype=np.float64)) == pytest.approx(607240.6696, rel=1e-6)
    assert float(np.asarray(native_t1(s, v).dataobj).sum(dtype=np.float64)) == pytest.approx(698151836.42, rel=1e-6)


def test_age_only_keeps_the_anatomy_and_aged_moves_it():
    subject = cn(1, age=72.0)
    age_only, aged = counterfactual_subjects(subject, 90.0)
    base, fixed, moved = render_subject(subject), render_subject(age_only), render_subject(aged)
    np.testing.assert_array_equal(base.t1_mni, fixed.t1_mni)
    assert not np.array_equal(base.pet_mni, fixed.pet_mni)
    assert not np.array_equal(base.t1_mni, moved.t1_mni)
    assert not np.array_equal(fixed.pet_mni, moved.pet_mni)
