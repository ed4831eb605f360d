"""Rigid + affine mutual-information registration of a brain-extracted T1 to MNI152, with its checks."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mri2pet_cli.preprocessing.itk import register_affine, to_sitk, transform_to_ras
from mri2pet_cli.preprocessing.qc import registration_checks, registration_problems
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import grid_for_spacing
from mri2pet_cli.space.resample import nonzero_bounds, resample

REGISTRATION_GRID = grid_for_spacing(2.0)


@lru_cache(maxsize=1)
def _registration_target():
    maps = template_maps(REGISTRATION_GRID)
    return to_sitk(maps.t1 * maps.brain_mask, REGISTRATION_GRID.affine), maps


# Second starts when the first registration fails a check: the head pitched forward or back (the
# commonest tilt of clinical scans), then turned left or right.
SECOND_STARTS_DEG = ((20.0, 0.0, 0.0), (-20.0, 0.0, 0.0), (0.0, 0.0, 20.0), (0.0, 0.0, -20.0))


# The moving image is cropped to its mask and this margin: a neck and shoulders or a wide field of view only
# cost smoothing time at each level. 20 mm keeps every fixed point that can matter inside the moving image.
REGISTRATION_MARGIN_MM = 20.0


def crop_to_mask(
    data: np.ndarray, mask: np.ndarray, affine: np.ndarray, margin_mm: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``data`` and ``mask`` cut to the mask's bounding box plus ``margin_mm``, with the affine of the cut."""
    bounds = nonzero_bounds(mask)
    if bounds is None:
        return data, mask, affine
    margin = np.ceil(margin_mm / np.linalg.norm(affine[:3, :3], axis=0)).astype(int)
    low = np.maximum(bounds[0] - margin, 0)
    high = np.minimum(bounds[1] + margin, mask.shape)
    box = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    cropped = affine.copy()
    cropped[:3, 3] = affine[:3, :3] @ low + affine[:3, 3]
    return data[box], mask[box], cropped


def register_to_mni(data: np.ndarray, affine: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, dict]:
    """Affine native -> MNI (RAS 4x4) from a brain-extracted T1, with its quality checks.

    When the first start fails a check, rotated starts are tried and the best result is kept
    (fewest failed checks, then the highest brain overlap); ``checks['starts']`` says how many ran.
    """
    fixed, maps = _registration_target()
    data, mask, affine = crop_to_mask(data, mask, affine, REGISTRATION_MARGIN_MM)
    moving = to_sitk(data * mask, affine)
    best, starts = None, 0
    for start in ((0.0, 0.0, 0.0), *SECOND_STARTS_DEG):
        starts += 1
        transform, info = register_affine(fixed, moving, start_rotation_deg=start)
        native_to_mni, checks = _checked_registration(transform, info, data, affine, mask, maps)
        rank = (len(registration_problems(checks)), -checks["mask_dice_with_template"])
        if best is None or rank < best[0]:
            best = (rank, native_to_mni, checks | {"start_rotation_deg": list(start)})
        if rank[0] == 0:
            break
    _, native_to_mni, checks = best
    checks["starts"] = starts
    return native_to_mni, checks


def _checked_registration(transform, info: dict, data, affine, mask, maps) -> tuple[np.ndarray, dict]:
    mni_to_native = transform_to_ras(transform)
    native_to_mni = np.linalg.inv(mni_to_native)
    grid = REGISTRATION_GRID
    warped_mask = resample(mask.astype(np.float32), affine, grid.shape, grid.affine, world_to_world=mni_to_native) > 0.5
    warped = resample(data * mask, affine, grid.shape, grid.affine, world_to_world=mni_to_native)
    checks = {**info, **registration_checks(warped, warped_mask, maps)}
    checks["scale_factors"] = np.linalg.svd(native_to_mni[:3, :3], compute_uv=False).round(4).tolist()
    return native_to_mni, checks
