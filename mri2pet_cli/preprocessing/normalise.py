"""Intensity units: the T1 over its white-matter median, the PET (real or synthetic) in SUVR.

SUVR: division by the mean of the cerebellar cortex (AAL Cerebelum_* inside the brain mask, template GM
probability > 0.3).
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.errors import ProcessingError
from mri2pet_cli.space.atlas import reference_labels, template_maps
from mri2pet_cli.space.grid import ModelGrid


def normalise_t1(t1_grid: np.ndarray, mask_grid: np.ndarray, grid: ModelGrid) -> tuple[np.ndarray, float]:
    """Divide by the median in the MNI white-matter region (WM = 1); zero outside the brain."""
    wm = (template_maps(grid).wm > 0.9) & mask_grid
    if wm.sum() < 50:
        raise ProcessingError("too little white matter inside the brain mask to normalise the T1")
    level = float(np.median(t1_grid[wm]))
    if level <= 0:
        raise ProcessingError("white matter has no signal: cannot normalise the T1")
    return np.where(mask_grid, t1_grid / level, 0.0).astype(np.float32), level


def reference_mask(grid: ModelGrid, brain: np.ndarray) -> np.ndarray:
    """Voxels of the SUVR reference region: cerebellar cortex inside the brain."""
    maps = template_maps(grid)
    return np.isin(maps.aal, reference_labels()) & (maps.gm > 0.3) & brain


def to_suvr(pet: np.ndarray, grid: ModelGrid, brain: np.ndarray) -> tuple[np.ndarray, float]:
    ref = reference_mask(grid, brain)
    level = float(pet[ref].mean()) if ref.any() else 0.0
    if not level > 0:
        raise ProcessingError("the PET has no signal in the cerebellum (SUVR reference region)")
    return (pet / level).astype(np.float32), level


def model_output_to_suvr(output: np.ndarray, grid: ModelGrid, brain: np.ndarray) -> tuple[np.ndarray, float]:
    """A model's PET as SUVR: zero outside the brain, divided again by its own reference level."""
    return to_suvr(np.where(brain, output, 0.0), grid, brain)
