"""Intensity units: the T1 over its white-matter median, the PET (real or synthetic) in SUVR.

SUVR: division by the mean of a reference region inside the brain mask: the cerebellar cortex by default
(AAL Cerebelum_*, template GM probability > 0.3; what every model is trained on), or the pons or the whole
brain (``REFERENCE_REGIONS``).
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.errors import ProcessingError
from mri2pet_cli.names import check_name
from mri2pet_cli.space.atlas import pons_mask, reference_labels, template_maps
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


REFERENCE_REGIONS = {
    "cerebellum": "cerebellar cortex (AAL Cerebelum_*, template GM > 0.3)",
    "pons": "pons (brainstem tissue in MNI x -12..12, y -38..-14, z -42..-22 mm; Minoshima 1995)",
    "whole-brain": "whole brain (template grey + white matter > 0.5)",
}


def reference_mask(grid: ModelGrid, brain: np.ndarray, region: str = "cerebellum") -> np.ndarray:
    """Voxels of the SUVR reference region inside the brain."""
    check_name(region, tuple(REFERENCE_REGIONS), "--ref-region")
    maps = template_maps(grid)
    if region == "pons":
        return pons_mask(grid) & brain
    if region == "whole-brain":
        return ((maps.gm + maps.wm) > 0.5) & brain
    return np.isin(maps.aal, reference_labels()) & (maps.gm > 0.3) & brain


def to_suvr(
    pet: np.ndarray, grid: ModelGrid, brain: np.ndarray, region: str = "cerebellum"
) -> tuple[np.ndarray, float]:
    ref = reference_mask(grid, brain, region)
    level = float(pet[ref].mean()) if ref.any() else 0.0
    if not level > 0:
        raise ProcessingError(f"the PET has no signal in the {region} (SUVR reference region)")
    return (pet / level).astype(np.float32), level


def model_output_to_suvr(
    output: np.ndarray, grid: ModelGrid, brain: np.ndarray, region: str = "cerebellum"
) -> tuple[np.ndarray, float]:
    """A model's PET as SUVR: zero outside the brain, divided again by its own reference level."""
    return to_suvr(np.where(brain, output, 0.0), grid, brain, region)
