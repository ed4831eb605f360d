"""The familiarity score ranks a shifted input above unshifted ones, with thresholds from held-out training scores."""

import numpy as np
from scipy import ndimage

from mri2pet_cli.site.familiarity import build_reference, familiarity, t1_features
from mri2pet_cli.space.atlas import template_maps
from tests.fake_data import TINY_GRID


def tiny_t1(rng, contrast: float = 1.0, noise: float = 0.02):
    maps = template_maps(TINY_GRID)
    anatomy = 0.35 * maps.csf + 0.65 * maps.gm + 1.0 * maps.wm
    texture = ndimage.gaussian_filter(rng.normal(0, 1, TINY_GRID.shape), 1.0)
    t1 = anatomy * rng.normal(1.0, 0.03) + 0.03 * texture + rng.normal(0, noise, TINY_GRID.shape)
    t1 = 1.0 + (t1 - 1.0) * contrast  # contrast: grey and CSF closer to white matter below 1
    brain = (maps.gm + maps.wm + maps.csf) > 0.5
    return np.where(brain, t1, 0.0).astype(np.float32), brain


def test_a_shifted_t1_scores_above_training_like_ones():
    rng = np.random.default_rng(0)
    labels = template_maps(TINY_GRID).aal
    train = np.array([t1_features(*tiny_t1(rng), labels) for _ in range(40)])
    reference = build_reference(train, [f"s{i}" for i in range(40)], "tiny test population")
    limits = reference["thresholds"]
    assert 0 < limits["unusual"] <= limits["outside"]
    same = [familiarity(t1_features(*tiny_t1(rng), labels), reference) for _ in range(10)]
    shifted = [familiarity(t1_features(*tiny_t1(rng, contrast=0.6), labels), reference) for _ in range(10)]
    noisy = [familiarity(t1_features(*tiny_t1(rng, noise=0.08), labels), reference) for _ in range(10)]
    assert min(s["score"] for s in shifted) > max(s["score"] for s in same)
    assert min(s["score"] for s in noisy) > np.median([s["score"] for s in same])
    assert sum(s["verdict"] == "typical" for s in same) >= 8
    assert all(s["verdict"] == "outside" for s in shifted)
    assert {"score", "thresholds", "verdict", "reference"} <= set(same[0])
