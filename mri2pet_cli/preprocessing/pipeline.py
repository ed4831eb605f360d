"""Raw T1 (and PET) from any scanner onto the model grid, and the way back.

T1: validate -> reorient to RAS -> N4 bias correction -> brain extraction
(deepbet | template | none) -> rigid + affine MI registration to MNI152 ->
quality checks -> intensity normalisation -> model grid.

Intensity normalisation (named in every model card): the T1 is divided by its
median inside the MNI white-matter region (template WM probability > 0.9) after
registration, so white matter is about 1; voxels outside the brain mask are 0.

PET: rigid MI coregistration to the same subject's T1, then the T1's transform
to the grid, then SUVR: division by the mean of the cerebellar cortex (AAL
Cerebelum_* inside the brain mask, template GM probability > 0.3). Synthetic PET
is given in the same SUVR units.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.console import stage
from mri2pet_cli.errors import ProcessingError
from mri2pet_cli.io import load_volume
from mri2pet_cli.names import check_name
from mri2pet_cli.preprocessing.head import extract_brain_deepbet, mask_from_intensity, slices_below_head, without_neck
from mri2pet_cli.preprocessing.itk import (
    N4_ITERATIONS,
    N4_SHRINK_MM,
    n4_bias_correct,
    register_affine,
    to_sitk,
    transform_to_ras,
)
from mri2pet_cli.preprocessing.normalise import normalise_t1, to_suvr
from mri2pet_cli.preprocessing.qc import (
    BRAIN_VOLUME_ML,
    MIN_PET_GM_CORRELATION,
    QC_MODES,
    registration_error,
    registration_problems,
)
from mri2pet_cli.preprocessing.registration import (
    REGISTRATION_GRID,
    REGISTRATION_MARGIN_MM,
    crop_to_mask,
    register_to_mni,
)
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import ModelGrid, default_grid
from mri2pet_cli.space.resample import resample

SKULL_STRIP_METHODS = ("deepbet", "template", "none")


@dataclass
class Preprocessed:
    """One subject on the model grid, with everything needed to go back to native space."""

    t1: np.ndarray
    mask: np.ndarray
    native_to_mni: np.ndarray  # 4x4, T1 world (RAS mm) -> MNI mm
    native_affine: np.ndarray
    native_shape: tuple[int, int, int]
    grid: ModelGrid
    pet: np.ndarray | None = None  # SUVR
    pet_to_t1: np.ndarray | None = None  # 4x4, PET world -> T1 world
    checks: dict = field(default_factory=dict)
    steps: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def preprocess(
    t1_path: str | Path,
    *,
    pet_path: str | Path | None = None,
    skull_strip: str = "deepbet",
    grid: ModelGrid | None = None,
    qc: str = "strict",
) -> Preprocessed:
    """Raw T1 (and optional PET) -> model grid. Raises Mri2PetError naming the file on failure.

    ``qc``: 'strict' refuses a T1 whose registration fails a check (the error carries the
    model-grid T1 as ``qc_volume`` so that its QC picture can still be drawn); 'warn' goes on and
    lists the failed checks in ``checks['qc_failed']``.
    """
    check_name(skull_strip, SKULL_STRIP_METHODS, "skull-strip method")
    check_name(qc, QC_MODES, "QC mode")
    grid = grid or default_grid()
    name = str(t1_path)
    timings: dict[str, float] = {}
    steps: list[dict] = []
    clock = time.perf_counter()

    def lap(step: str, **params) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = round(now - clock, 3)
        steps.append({"step": step, **params})
        clock = now

    stage("loading")
    native = load_volume(t1_path, what="T1")
    pet_img = None if pet_path is None else load_pet_overlapping(pet_path, native)
    ras = nib.as_closest_canonical(native)
    data = np.asarray(ras.dataobj, dtype=np.float32)
    data = np.maximum(data - np.percentile(data, 0.5), 0.0)
    lap("load_and_reorient", orientation="".join(nib.aff2axcodes(native.affine)), shape=list(native.shape))

    stage("N4 bias correction")
    below_head = slices_below_head(data, ras.affine)
    corrected = n4_bias_correct(data, ras.affine, first_slice=below_head)
    lap(
        "n4_bias_correction",
        shrink_to_mm=N4_SHRINK_MM,
        iterations=list(N4_ITERATIONS),
        slices_below_head_not_fitted=below_head,
    )

    stage(f"brain extraction ({skull_strip})")
    if skull_strip == "deepbet":
        mask = extract_brain_deepbet(nib.Nifti1Image(corrected, ras.affine))
    elif skull_strip == "none":
        mask = mask_from_intensity(corrected)
    else:  # template: register the whole head first, then take the MNI mask back to native space
        head = without_neck(mask_from_intensity(corrected), ras.affine)
        first, _ = register_to_mni(corrected, ras.affine, head)
        maps = template_maps(REGISTRATION_GRID)
        mask = (
            resample(
                maps.brain_mask.astype(np.float32),
                REGISTRATION_GRID.affine,
                ras.shape,
                ras.affine,
                world_to_world=first,
            )
            > 0.5
        )
    brain_ml = float(mask.sum() * np.prod(ras.header.get_zooms()[:3]) / 1000.0)
    lap("brain_extraction", method=skull_strip, brain_volume_ml=round(brain_ml, 1))
    if not BRAIN_VOLUME_ML[0] <= brain_ml <= BRAIN_VOLUME_ML[1]:
        raise ProcessingError(
            f"{name}: brain mask of {brain_ml:.0f} ml is outside the plausible {BRAIN_VOLUME_ML[0]:.0f}-"
            f"{BRAIN_VOLUME_ML[1]:.0f} ml",
            hint="is this a T1 head MRI? for an already brain-extracted image use --skull-strip none",
        )

    stage("registration to MNI")
    # Registration and the grid need only the brain and a margin (the T1 is zeroed outside the mask): the neck
    # and the rest of a long field of view would only cost smoothing time. Cut once for both.
    near_brain, near_mask, near_affine = crop_to_mask(corrected, mask, ras.affine, REGISTRATION_MARGIN_MM)
    native_to_mni, checks = register_to_mni(near_brain, near_affine, near_mask)
    checks["brain_volume_ml"] = round(brain_ml, 1)
    lap("registration", metric="mattes_mi", stages=["rigid", "affine"], levels_mm=[8, 4])

    mni_to_native = np.linalg.inv(native_to_mni)
    to_grid = {"target_shape": grid.shape, "target_affine": grid.affine, "world_to_world": mni_to_native}
    t1_grid = resample(near_brain, near_affine, **to_grid)
    mask_grid = resample(near_mask.astype(np.float32), near_affine, **to_grid) > 0.5
    problems = registration_problems(checks)
    checks["qc_failed"] = problems
    if problems and qc == "strict":
        error = registration_error(name, problems)
        head = resample(corrected, ras.affine, grid.shape, grid.affine, world_to_world=mni_to_native)
        error.qc_volume = head / max(float(np.percentile(head, 99)), 1e-6)
        error.qc_grid = grid
        raise error
    t1_grid, wm_level = normalise_t1(t1_grid, mask_grid, grid)
    checks["wm_level"] = wm_level
    lap("normalise_and_resample", normalisation="white-matter median = 1", grid=grid.describe()["shape"])

    result = Preprocessed(
        t1=t1_grid,
        mask=mask_grid,
        native_to_mni=native_to_mni,
        native_affine=native.affine.copy(),
        native_shape=tuple(native.shape),  # type: ignore[arg-type]
        grid=grid,
        checks=checks,
        steps=steps,
        timings=timings,
    )
    if pet_path is not None:
        _add_pet(result, pet_img, str(pet_path), corrected * mask, ras.affine)
        timings["pet"] = round(time.perf_counter() - clock, 3)
    timings["total"] = round(sum(v for k, v in timings.items() if k != "total"), 3)
    return result


def load_pet_overlapping(pet_path: str | Path, t1: nib.Nifti1Image) -> nib.Nifti1Image:
    """Load the PET (RAS) and check, before any work, that its field of view holds the T1's centre."""
    pet_img = nib.as_closest_canonical(load_volume(pet_path, what="PET"))
    t1_center = t1.affine @ np.append((np.asarray(t1.shape) - 1) / 2.0, 1.0)
    pet_vox = np.linalg.inv(pet_img.affine) @ t1_center
    shape = np.asarray(pet_img.shape, dtype=float)
    if np.any(pet_vox[:3] < -0.1 * shape) or np.any(pet_vox[:3] > 1.1 * shape):
        raise ProcessingError(
            f"{pet_path}: the PET field of view does not overlap the T1's", hint="is it this subject's PET?"
        )
    return pet_img


def _add_pet(result: Preprocessed, pet_img: nib.Nifti1Image, name: str, t1_brain: np.ndarray, t1_affine) -> None:
    """Rigid PET -> T1 coregistration, then onto the grid in SUVR."""
    pet = np.maximum(np.asarray(pet_img.dataobj, dtype=np.float32), 0.0)
    fixed = to_sitk(t1_brain, t1_affine)
    moving = to_sitk(pet, pet_img.affine)
    transform, info = register_affine(fixed, moving, affine_stage=False)
    t1_to_pet = transform_to_ras(transform)
    pet_to_t1 = np.linalg.inv(t1_to_pet)
    grid = result.grid
    mni_to_pet = t1_to_pet @ np.linalg.inv(result.native_to_mni)
    pet_grid = resample(pet, pet_img.affine, grid.shape, grid.affine, world_to_world=mni_to_pet)
    pet_grid = np.where(result.mask, pet_grid, 0.0)
    gm = template_maps(grid).gm
    corr = float(np.corrcoef(pet_grid[result.mask], gm[result.mask])[0, 1])
    result.checks.update({"pet_rigid_metric": info["rigid_metric"], "pet_gm_correlation": corr})
    if not corr >= MIN_PET_GM_CORRELATION:
        raise ProcessingError(
            f"{name}: PET to T1 coregistration failed "
            f"(correlation with grey matter {corr:.2f} < {MIN_PET_GM_CORRELATION})",
            hint="is it an FDG-PET of the same subject?",
        )
    result.pet, level = to_suvr(pet_grid, grid, result.mask)
    result.pet_to_t1 = pet_to_t1
    result.checks["suvr_reference_mean"] = level
    result.steps.append({"step": "pet", "coregistration": "rigid mattes_mi", "suvr_reference": "AAL Cerebelum_* GM"})


def grid_to_native(volume: np.ndarray, result: Preprocessed, order: int = 1) -> np.ndarray:
    """Map a model-grid volume onto the subject's own T1 grid (the inverse of preprocessing)."""
    return resample(
        volume,
        result.grid.affine,
        result.native_shape,
        result.native_affine,
        world_to_world=result.native_to_mni,
        order=order,
        antialias=False,
        only_near_nonzero=True,  # a brain on the native field of view: neck and background stay zero
    )


def native_to_grid(volume: np.ndarray, result: Preprocessed, order: int = 1) -> np.ndarray:
    """Map a volume on the subject's T1 grid onto the model grid with the estimated transform."""
    grid = result.grid
    return resample(
        volume,
        result.native_affine,
        grid.shape,
        grid.affine,
        world_to_world=np.linalg.inv(result.native_to_mni),
        order=order,
    )
