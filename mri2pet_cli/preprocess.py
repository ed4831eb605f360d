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
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from .atlas import reference_labels, template_maps
from .brain_extraction import deepbet_mask
from .console import stage
from .errors import ProcessingError
from .grid import ModelGrid, default_grid, grid_for_spacing
from .io import load_volume
from .itk import N4_ITERATIONS, N4_SHRINK_MM, n4_bias_correct, register_affine, to_sitk, transform_to_ras
from .names import check_name
from .resample import nonzero_bounds, resample

SKULL_STRIP_METHODS = ("deepbet", "template", "none")
QC_MODES = ("strict", "warn")
BRAIN_VOLUME_ML = (700.0, 2400.0)
MIN_MASK_DICE = 0.85
# Contrast-free checks (issue 12): a rank correlation survives any monotone T1 contrast (1.5 T, contrast
# enhanced, any scanner) but not a reversed one (T2, PET); WM brighter than GM is what makes a T1.
# Evidence (benchmarks/results/preprocess_qc.json, the 120-subject v2 cohort): positives rank >= 0.70, WM/GM >= 1.29;
# negatives: T2-like -0.46 / 0.26, PET -0.20 / 0.47, a T1 registered 20 deg and 12 mm off 0.34 (Dice 0.83).
MIN_T1_RANK_CORRELATION = 0.45
MIN_WM_TO_GM_RATIO = 1.08
MIN_PET_GM_CORRELATION = 0.3
REGISTRATION_GRID = grid_for_spacing(2.0)


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


def extract_brain_deepbet(img: nib.Nifti1Image) -> np.ndarray:
    """deepbet's brain mask (bool) for a RAS image."""
    return deepbet_mask(np.asarray(img.dataobj, dtype=np.float32))


def mask_from_intensity(data: np.ndarray) -> np.ndarray:
    """Mask of an already brain-extracted image: non-background, holes filled, largest component."""
    mask = data > 0.02 * np.percentile(data[data > 0], 99) if np.any(data > 0) else data > 0
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(mask)


HEAD_HEIGHT_MM = 200.0  # vertex to the foramen magnum is about 120-150 mm; below 200 mm is neck and shoulders


def without_neck(head: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The head mask without what lies more than 200 mm below its top (a RAS image: the third axis is up).

    A long field of view with neck and shoulders otherwise pulls the centre of mass, where the
    registration starts, far below the brain.
    """
    out = head.copy()
    out[:, :, : _below_top(np.flatnonzero(head.any(axis=(0, 1))), affine)] = False
    return out


def slices_below_head(data: np.ndarray, affine: np.ndarray) -> int:
    """How many of the lowest slices of a RAS image lie more than 200 mm below the top of the head."""
    positive = data[data > 0]
    if positive.size == 0:
        return 0
    head = data > 0.1 * np.percentile(positive, 99)
    return _below_top(np.flatnonzero(head.sum(axis=(0, 1)) >= 50), affine)  # >= 50: not stray bright voxels


def _below_top(head_slices: np.ndarray, affine: np.ndarray) -> int:
    """The number of slices more than 200 mm below the highest of ``head_slices`` (0 without any)."""
    if head_slices.size == 0:
        return 0
    keep = int(np.ceil(HEAD_HEIGHT_MM / abs(float(np.linalg.norm(affine[:3, 2])))))
    return max(0, int(head_slices[-1]) + 1 - keep)


@lru_cache(maxsize=1)
def _registration_target():
    maps = template_maps(REGISTRATION_GRID)
    return to_sitk(maps.t1 * maps.brain_mask, REGISTRATION_GRID.affine), maps


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / total) if total else 0.0


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


def registration_checks(warped: np.ndarray, warped_mask: np.ndarray, maps) -> dict:
    """Quality figures of a T1 brought to MNI: overlap, contrast-free agreement, T1 contrast direction."""
    from scipy import stats

    inside = maps.brain_mask
    gm, wm = (maps.gm > 0.6) & warped_mask, (maps.wm > 0.9) & warped_mask
    gm_level = float(np.median(warped[gm])) if gm.any() else 0.0
    wm_level = float(np.median(warped[wm])) if wm.any() else 0.0
    return {
        "mask_dice_with_template": dice(warped_mask, maps.brain_mask),
        "t1_rank_correlation_with_template": float(stats.spearmanr(warped[inside], maps.t1[inside])[0]),
        "t1_correlation_with_template": float(np.corrcoef(warped[inside], maps.t1[inside])[0, 1]),
        "wm_to_gm_ratio": wm_level / gm_level if gm_level > 0 else 0.0,
    }


def check_registration(checks: dict, name: str) -> None:
    """Raise ProcessingError naming ``name`` when the registration fails a check."""
    problems = registration_problems(checks)
    if problems:
        raise registration_error(name, problems)


def registration_error(name: str, problems: list[str]) -> ProcessingError:
    return ProcessingError(
        f"{name}: registration to MNI failed: " + "; ".join(problems),
        hint="is this a T1-weighted head MRI? --qc warn writes the outputs anyway, with the failed checks",
    )


def registration_check_table(checks: dict) -> list[dict]:
    """Each registration check: what it measures, its value, the rule, pass or fail, and the failure in words."""
    dice_value = checks["mask_dice_with_template"]
    rank = checks["t1_rank_correlation_with_template"]
    ratio = checks["wm_to_gm_ratio"]
    scales = checks["scale_factors"]
    return [
        {
            "check": "brain overlap with the MNI template (Dice)",
            "value": f"{dice_value:.3f}",
            "rule": f">= {MIN_MASK_DICE}",
            "passed": dice_value >= MIN_MASK_DICE,
            "problem": f"brain overlap with the MNI template is {dice_value:.2f} (< {MIN_MASK_DICE})",
        },
        {
            "check": "rank correlation with the MNI T1",
            "value": f"{rank:.3f}",
            "rule": f">= {MIN_T1_RANK_CORRELATION}",
            "passed": rank >= MIN_T1_RANK_CORRELATION,
            "problem": f"rank correlation with the MNI T1 is {rank:.2f} (< {MIN_T1_RANK_CORRELATION})",
        },
        {
            "check": "white / grey matter intensity (T1 contrast)",
            "value": f"{ratio:.2f}",
            "rule": f">= {MIN_WM_TO_GM_RATIO}",
            "passed": ratio >= MIN_WM_TO_GM_RATIO,
            "problem": f"white matter is not brighter than grey matter (WM/GM {ratio:.2f} "
            f"< {MIN_WM_TO_GM_RATIO}): not a T1-weighted contrast",
        },
        {
            "check": "registration scale factors",
            "value": ", ".join(f"{v:.2f}" for v in scales),
            "rule": "0.6-1.5",
            "passed": 0.6 <= min(scales) and max(scales) <= 1.5,
            "problem": f"implausible scaling {scales}",
        },
    ]


def registration_problems(checks: dict) -> list[str]:
    """The registration checks that failed, each in words (empty when all pass)."""
    return [row["problem"] for row in registration_check_table(checks) if not row["passed"]]


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


# ----------------------------------------------------------------------------------------------
# files


def output_paths(out_dir: str | Path, subject_id: str) -> dict[str, Path]:
    folder = Path(out_dir) / subject_id
    return {
        "t1": folder / f"{subject_id}_space-model_desc-preproc_T1w.nii.gz",
        "mask": folder / f"{subject_id}_space-model_desc-brain_mask.nii.gz",
        "pet": folder / f"{subject_id}_space-model_desc-suvr_pet.nii.gz",
        "xfm_t1": folder / f"{subject_id}_from-T1w_to-MNI152_mode-image_xfm.tfm",
        "xfm_pet": folder / f"{subject_id}_from-pet_to-T1w_mode-image_xfm.tfm",
        "json": folder / f"{subject_id}_preproc.json",
        "qc": folder / f"{subject_id}_qc.png",
    }


def save_preprocessed(
    result: Preprocessed, out_dir: str | Path, subject_id: str, *, sources: dict, overwrite: bool = False
):
    """Write the model-grid volumes, ITK transforms, JSON sidecar and QC picture of one subject."""
    import json

    from . import __version__
    from .figures import registration_qc
    from .io import check_writable, save_volume, write_text_atomic
    from .itk import write_transform

    paths = output_paths(out_dir, subject_id)
    wanted = [k for k in paths if k not in ("pet", "xfm_pet") or result.pet is not None]
    for key in wanted:
        check_writable(paths[key], overwrite)
    affine = result.grid.affine
    save_volume(result.t1, paths["t1"], affine=affine, overwrite=overwrite)
    save_volume(result.mask.astype(np.uint8), paths["mask"], affine=affine, dtype=np.uint8, overwrite=overwrite)
    # ITK resampling convention: the "T1w -> MNI" transform maps MNI points to T1 points
    write_transform(np.linalg.inv(result.native_to_mni), paths["xfm_t1"])
    if result.pet is not None and result.pet_to_t1 is not None:
        save_volume(result.pet, paths["pet"], affine=affine, overwrite=overwrite)
        write_transform(np.linalg.inv(result.pet_to_t1), paths["xfm_pet"])
    sidecar = {
        "tool": "mri2pet",
        "version": __version__,
        "subject_id": subject_id,
        "sources": {k: str(v) for k, v in sources.items() if v is not None},
        "grid": result.grid.describe(),
        "native_to_mni_ras": np.round(result.native_to_mni, 8).tolist(),
        "pet_to_t1_ras": None if result.pet_to_t1 is None else np.round(result.pet_to_t1, 8).tolist(),
        "native_affine": np.round(result.native_affine, 8).tolist(),
        "native_shape": list(result.native_shape),
        "t1_normalisation": "divided by the median inside MNI white matter (template WM > 0.9); WM = 1",
        "pet_units": "SUVR, reference: cerebellar cortex (AAL Cerebelum_*, template GM > 0.3)",
        "steps": result.steps,
        "checks": result.checks,
        "timings_s": result.timings,
        "transform_files": "ITK: *_from-T1w_to-MNI152 maps MNI points to T1 points (resampling convention)",
    }
    write_text_atomic(json.dumps(sidecar, indent=2, default=float), paths["json"], overwrite=True)
    registration_qc(result.t1, template_maps(result.grid).brain_mask, result.grid, subject_id, paths["qc"])
    return paths


def load_preprocessed(out_dir: str | Path, subject_id: str) -> Preprocessed:
    """Read back what :func:`save_preprocessed` wrote."""
    import json

    paths = output_paths(out_dir, subject_id)
    meta = json.loads(paths["json"].read_text())
    grid = ModelGrid.from_description(meta["grid"])
    pet = nib.load(str(paths["pet"])).get_fdata(dtype=np.float32) if paths["pet"].exists() else None
    return Preprocessed(
        t1=nib.load(str(paths["t1"])).get_fdata(dtype=np.float32),
        mask=np.asarray(nib.load(str(paths["mask"])).dataobj) > 0,
        native_to_mni=np.asarray(meta["native_to_mni_ras"]),
        native_affine=np.asarray(meta["native_affine"]),
        native_shape=tuple(meta["native_shape"]),  # type: ignore[arg-type]
        grid=grid,
        pet=pet,
        pet_to_t1=None if meta["pet_to_t1_ras"] is None else np.asarray(meta["pet_to_t1_ras"]),
        checks=meta["checks"],
        steps=meta["steps"],
        timings=meta["timings_s"],
    )


def save_refusal_qc(exc: Exception, out_dir: str | Path, subject_id: str) -> None:
    """The QC picture of a T1 refused after registration, so that the reason can be seen."""
    volume = getattr(exc, "qc_volume", None)
    if volume is None:
        return
    from .figures import registration_qc

    grid = getattr(exc, "qc_grid", None) or default_grid()
    path = output_paths(out_dir, subject_id)["qc"]
    path.parent.mkdir(parents=True, exist_ok=True)
    registration_qc(volume, template_maps(grid).brain_mask, grid, f"{subject_id}: REFUSED by QC", path)


def preprocess_and_save(
    subject, out_dir: str | Path, *, skull_strip: str = "deepbet", overwrite: bool = False, qc: str = "strict"
) -> dict:
    """Preprocess one :class:`~mri2pet_cli.subjects.SubjectInput` and write its files; returns its checks."""
    from .errors import Mri2PetError

    try:
        result = preprocess(subject.t1, pet_path=subject.pet, skull_strip=skull_strip, qc=qc)
    except Mri2PetError as exc:
        if subject.subject_id not in exc.message:
            exc.message = f"{subject.subject_id}: {exc.message}"
        save_refusal_qc(exc, out_dir, subject.subject_id)
        raise
    save_preprocessed(
        result, out_dir, subject.subject_id, sources={"t1": subject.t1, "pet": subject.pet}, overwrite=overwrite
    )
    return {"checks": result.checks, "timings": result.timings}
