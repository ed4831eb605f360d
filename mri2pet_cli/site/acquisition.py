"""What the scanner did to a T1, read from the image: noise, voxel size and grey/white contrast.

Image quality metrics of the kind MRIQC computes to tell sites and protocols apart (Esteban et al. 2017,
PLoS ONE 12:e0184661): the regional appearance of the model-grid T1 (``familiarity.t1_features``) hides
them, because resampling to the 2.5 mm grid averages the noise away and anatomy dominates its variance.

- **Noise** (relative to the local signal): in deep white matter (MNI template WM > 0.95, inside the brain
  mask), the robust SD (1.4826 x MAD) of the difference of log intensities between each native voxel and its
  neighbour along each axis, divided by sqrt(2); the median over the three axes. Logs make it free of the
  gain and of a smooth bias field; deep white matter is flat, so what is left is noise.
- **Voxel size**: the three native spacings, sorted (mm), from the affine.
- **Contrast**: white-matter over grey-matter median on the registered T1 (the preprocessing's
  ``wm_to_gm_ratio``): 1.5 T and spin-echo T1s have less.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from mri2pet_cli.space.grid import ModelGrid

FEATURES = ("noise_rel", "spacing_small_mm", "spacing_mid_mm", "spacing_large_mm", "wm_to_gm_ratio")
DEEP_WM_PROBABILITY = 0.95


def deep_white_matter(mask: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """Model-grid voxels deep in white matter: template WM above 0.95 inside the brain mask, one voxel in."""
    from mri2pet_cli.space.atlas import template_maps

    deep = (template_maps(grid).wm > DEEP_WM_PROBABILITY) & (mask > 0)
    return ndimage.binary_erosion(deep)


def noise_relative(raw: nib.Nifti1Image, native_to_mni: np.ndarray, mask: np.ndarray, grid: ModelGrid) -> float:
    """Noise SD over signal in deep white matter of the native T1 (see the module docstring); NaN if unreadable."""
    data = np.asarray(raw.dataobj, dtype=np.float32)
    if data.ndim != 3:
        return float("nan")
    ijk = np.argwhere(deep_white_matter(mask, grid)).astype(np.float64)
    if len(ijk) == 0:
        return float("nan")
    # every native voxel near each deep grid voxel: 27 points a third of a grid voxel apart, duplicates dropped
    offsets = np.stack(np.meshgrid(*[np.array([-1.0, 0.0, 1.0]) / 3.0] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    ijk = (ijk[:, None, :] + offsets[None]).reshape(-1, 3)
    # rounded as the preprocessing sidecar stores it: a fresh and a cached run read the same voxels
    grid_to_native = np.linalg.inv(raw.affine) @ np.linalg.inv(np.round(native_to_mni, 8)) @ grid.affine
    points = np.unique(np.rint(nib.affines.apply_affine(grid_to_native, ijk)).astype(np.int64), axis=0)
    shape = np.array(data.shape)
    estimates = []
    for axis in range(3):
        step = np.zeros(3, dtype=np.int64)
        step[axis] = 1
        inside = np.all((points >= 0) & (points + step < shape), axis=1)
        here, there = points[inside], points[inside] + step
        a, b = data[tuple(here.T)], data[tuple(there.T)]
        valid = (a > 0) & (b > 0)
        if valid.sum() < 50:
            continue
        diff = np.log(b[valid]) - np.log(a[valid])
        mad = np.median(np.abs(diff - np.median(diff)))
        estimates.append(1.4826 * mad / np.sqrt(2.0))
    return float(np.median(estimates)) if estimates else float("nan")


def acquisition_features(
    raw: nib.Nifti1Image | None,
    native_affine: np.ndarray,
    native_to_mni: np.ndarray,
    mask: np.ndarray,
    grid: ModelGrid,
    wm_to_gm_ratio: float,
) -> dict[str, float]:
    """The acquisition features (``FEATURES``) of one T1 from its raw image (None: noise unknown, NaN), the
    native affine, its registration and model-grid mask, and the registered T1's contrast."""
    spacing = sorted(float(z) for z in np.sqrt((np.asarray(native_affine)[:3, :3] ** 2).sum(axis=0)))
    noise = float("nan") if raw is None else noise_relative(raw, native_to_mni, mask, grid)
    values = [noise, *spacing, float(wm_to_gm_ratio)]
    return {name: round(value, 6) for name, value in zip(FEATURES, values)}


def feature_vector(features: dict[str, float]) -> np.ndarray:
    """Logs of the features (ratios and sizes vary multiplicatively), in ``FEATURES`` order."""
    return np.log(np.maximum([features[name] for name in FEATURES], 1e-6))
