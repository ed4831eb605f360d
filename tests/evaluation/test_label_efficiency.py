"""Label-efficiency curves against the strongest T1-only rivals, with the sample-size rule."""

import numpy as np
import pytest

from mri2pet_cli.evaluation import classification
from mri2pet_cli.evaluation import label_efficiency as le


def toy_sets(n_per_class: int, seed: int = 0):
    """A 'PET' that separates the classes well, and T1 tissue features (with a missing region) that barely do."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_per_class)
    pet = rng.normal(size=(2 * n_per_class, 8))
    pet[:, 0] += 2.5 * labels
    tissue = rng.normal(size=(2 * n_per_class, 6))
    tissue[:, 0] += 0.3 * labels
    tissue[::4, 1] = np.nan  # a region outside some masks: the imputer and the trees take it
    age = rng.normal(75, 6, 2 * n_per_class)
    sets = {"synthetic PET: toy": (pet, "logistic"), **le.rival_sets(tissue, age, large_regions=tissue[:, :3])}
    return sets, labels


def test_a_draw_is_stratified_leaves_subjects_to_score_and_is_refused_when_too_big():
    labels = np.repeat([0, 1], [30, 10])
    rng = np.random.default_rng(0)
    drawn = le.stratified_draw(labels, 20, rng)
    assert len(drawn) == 20 and len(set(drawn)) == 20
    assert np.sum(labels[drawn] == 1) == 5 and np.sum(labels[drawn] == 0) == 15
    assert le.stratified_draw(labels, 38, rng) is None and le.stratified_draw(labels, 3, rng) is None


def test_curves_find_the_better_features_and_withhold_verdicts_on_few_subjects():
    sets, labels = toy_sets(50)
    rows = le.curves(sets, labels, sizes=(10,), draws=2, seed=1, folds=3, repeats=1)
    by = {(r["labelled_n"], r["features"]): r for r in rows}
    assert {r["labelled_n"] for r in rows} == {"10", "all"}
    best = by[("all", "synthetic PET: toy")]
    assert best["best_t1_only"] in le.T1_RIVALS and best["difference_low"] > 0
    assert best["verdict"] == "better than the best T1-only classifier"  # 50 per class scored out of fold
    for rival in le.T1_RIVALS:
        assert "verdict" not in by[("all", rival)] and 0.4 < by[("all", rival)]["auc"] < 0.9
    assert by[("10", "synthetic PET: toy")]["scored_per_class"] == 45
    few_sets, few_labels = toy_sets(20)
    few = le.curves(few_sets, few_labels, sizes=(10,), draws=2, seed=1, folds=3, repeats=1)
    assert {r["verdict"] for r in few if "verdict" in r} == {le.TOO_FEW}


@pytest.mark.parametrize("low,high,expected", [(0.01, 0.1, "better"), (-0.1, -0.01, "worse"), (-0.1, 0.1, "no")])
def test_verdict_reads_the_interval(low, high, expected):
    assert le.verdict(low, high, 40).startswith(expected)
    assert le.verdict(low, high, 29) == le.TOO_FEW


def test_the_boosted_trees_rival_learns_from_twenty_labelled_subjects():
    """With 20 labels the trees must split (a constant classifier scores AUC 0.5 on every draw)."""
    rng = np.random.default_rng(3)
    labels = np.repeat([0, 1], 40)
    tissue = rng.normal(size=(80, 6))
    tissue[:, 0] += 2.0 * labels
    features, kind = le.rival_sets(tissue, rng.normal(75, 6, 80))[le.T1_RIVALS[1]]
    drawn = le.stratified_draw(labels, 20, np.random.default_rng(0))
    scores = le.fit_and_score(features, kind, labels, drawn, seed=0)
    unseen = np.setdiff1d(np.arange(80), drawn)
    assert np.ptp(scores[unseen]) > 0
    assert classification.rank_auc(labels[unseen] == 1, scores[unseen]) > 0.75


def test_large_region_features_see_grey_matter_turned_into_csf():
    """Four blocks (GM fraction, GM posterior, CSF fraction, CSF posterior) over the table's large regions; a
    region whose grey matter becomes CSF reads less grey matter and more CSF in both kinds of measure."""
    from mri2pet_cli.evaluation import features
    from mri2pet_cli.space.atlas import template_maps
    from mri2pet_cli.space.grid import default_grid

    grid = default_grid()
    maps = template_maps(grid)
    labels, mask = maps.aal, maps.brain_mask
    t1 = np.where(labels > 0, 0.6, 1.0)  # grey matter in the atlas regions, white matter elsewhere
    t1[maps.csf > 0.5] = 0.25
    t1 = ((t1 + np.random.default_rng(0).normal(0, 0.02, mask.shape)) * mask).astype(np.float32)
    regions = features.large_region_masks(labels)
    healthy = features.t1_large_region_features(t1, mask, labels)
    atrophied = t1.copy()
    atrophied[regions[0] & mask] = 0.25  # the first region's grey matter becomes CSF
    thinned = features.t1_large_region_features(atrophied, mask, labels)
    k = len(regions)
    assert healthy.shape == (4 * k,)
    for block in (0, 1):  # grey matter falls
        assert thinned[block * k] < healthy[block * k] - 0.3
    for block in (2, 3):  # CSF rises
        assert thinned[block * k] > healthy[block * k] + 0.3
