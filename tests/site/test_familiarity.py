"""The familiarity score ranks a shifted input above unshifted ones, with thresholds from held-out training scores;
its acquisition block reads the noise of the native T1 whatever the gain and bias field."""

import nibabel as nib
import numpy as np
from scipy import ndimage

from mri2pet_cli.site.acquisition import FEATURES, acquisition_features, feature_vector, noise_relative
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


def acquisition(rng, noise: float | None = None, in_plane: float | None = None) -> np.ndarray:
    """Acquisition values like a training site's: noise 1.5-4 %, 1.0-1.15 mm in plane, 1.0-1.3 mm slices."""
    in_plane = rng.uniform(1.0, 1.15) if in_plane is None else in_plane
    values = {
        "noise_rel": rng.uniform(0.015, 0.04) if noise is None else noise,
        "spacing_small_mm": min(in_plane, slices := rng.uniform(1.0, 1.3)),
        "spacing_mid_mm": in_plane,
        "spacing_large_mm": max(in_plane, slices),
        "wm_to_gm_ratio": rng.uniform(1.4, 1.9),
    }
    return feature_vector(values)


def features(rng, contrast: float = 1.0, **acquired) -> dict[str, np.ndarray]:
    labels = template_maps(TINY_GRID).aal
    return {
        "appearance": t1_features(*tiny_t1(rng, contrast=contrast), labels),
        "acquisition": acquisition(rng, **acquired),
    }


def tiny_reference(rng, n: int) -> dict:
    train = [features(rng) for _ in range(n)]
    blocks = {block: np.array([f[block] for f in train]) for block in ("appearance", "acquisition")}
    return build_reference(blocks, [f"s{i}" for i in range(n)], "tiny test population")


def test_a_shifted_t1_scores_above_training_like_ones():
    rng = np.random.default_rng(0)
    reference = tiny_reference(rng, 60)
    limits = reference["thresholds"]
    assert 0 < limits["unusual"] <= limits["outside"]
    same = [familiarity(features(rng), reference) for _ in range(20)]
    shifted = [familiarity(features(rng, contrast=0.6), reference) for _ in range(10)]
    noisy = [familiarity(features(rng, noise=0.07), reference) for _ in range(10)]
    coarse = [familiarity(features(rng, in_plane=1.3), reference) for _ in range(10)]
    typical = np.median([s["score"] for s in same])
    assert min(s["score"] for s in shifted) > max(s["score"] for s in same)
    assert all(s["verdict"] == "outside" and s["driven_by"] == "appearance" for s in shifted)
    assert all(s["score"] > typical and s["driven_by"] == "acquisition" for s in noisy + coarse)
    assert sum(s["verdict"] != "typical" for s in noisy + coarse) >= 16
    assert sum(s["verdict"] == "typical" for s in same) >= 16
    assert {"score", "thresholds", "verdict", "reference", "blocks", "driven_by"} <= set(same[0])


def test_the_record_names_acquisition_values_outside_training():
    rng = np.random.default_rng(1)
    reference = tiny_reference(rng, 30)
    values = {name: float(np.exp(v)) for name, v in zip(FEATURES, acquisition(rng, noise=0.09))}
    record = familiarity(features(rng, noise=0.09), reference, values)
    assert record["unlike_training"] == ["noise_rel"]
    assert record["acquisition"]["noise_rel"]["value"] == values["noise_rel"]


def test_a_reference_of_the_older_format_gives_no_verdict():
    old = {"kind": "mri2pet familiarity reference", "source": "old", "n_subjects": 10, "mean": [0.0]}
    record = familiarity(features(np.random.default_rng(2)), old)
    assert record["verdict"] is None and "older mri2pet" in record["note"]


def native_t1(noise: float, gain: float = 1.0, bias: bool = False, seed: int = 0) -> nib.Nifti1Image:
    """A 2 mm native T1 over the tiny grid's box (world = MNI), white matter 1, with relative noise."""
    rng = np.random.default_rng(seed)
    maps = template_maps(TINY_GRID)
    anatomy = 0.35 * maps.csf + 0.65 * maps.gm + 1.0 * maps.wm
    fine = ndimage.zoom(anatomy, 3, order=1)  # 16 voxels of 6 mm -> 48 of 2 mm
    affine = TINY_GRID.affine.copy()
    affine[:3, :3] /= 3.0
    affine[:3, 3] -= affine[:3, :3] @ np.ones(3)  # voxel centres of the finer grid inside the same box
    field = 1.0
    if bias:
        x = np.linspace(-1, 1, fine.shape[0])[:, None, None]
        field = 1.0 + 0.3 * x
    data = gain * field * np.maximum(fine, 0.05) * (1.0 + rng.normal(0, noise, fine.shape))
    return nib.Nifti1Image(data.astype(np.float32), affine)


def test_the_noise_is_read_whatever_the_gain_and_bias_field():
    mask = template_maps(TINY_GRID).brain_mask
    for noise in (0.02, 0.05):
        plain = noise_relative(native_t1(noise), np.eye(4), mask, TINY_GRID)
        shaded = noise_relative(native_t1(noise, gain=900.0, bias=True, seed=1), np.eye(4), mask, TINY_GRID)
        assert abs(plain / noise - 1.0) < 0.2 and abs(shaded / noise - 1.0) < 0.2
    native = native_t1(0.03)
    values = acquisition_features(native, native.affine, np.eye(4), mask, TINY_GRID, 1.5)
    assert values["spacing_small_mm"] == values["spacing_large_mm"] == 2.0 and values["wm_to_gm_ratio"] == 1.5
