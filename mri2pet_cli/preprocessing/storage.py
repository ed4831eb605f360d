"""Preprocessed subjects on disk (derivatives layout) and back, and the record of a refused T1."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.completion import finished_record, input_sha256, may_replace, output_hashes
from mri2pet_cli.preprocessing.pipeline import Preprocessed, preprocess
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import ModelGrid, default_grid


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
    result: Preprocessed,
    out_dir: str | Path,
    subject_id: str,
    *,
    sources: dict,
    overwrite: bool = False,
    request: dict | None = None,
):
    """Write the model-grid volumes, ITK transforms, QC picture and (last) the JSON sidecar of one subject,
    which records ``request`` and every file's hash (a rerun skips what is finished)."""
    import json

    from mri2pet_cli import __version__
    from mri2pet_cli.io import check_writable, save_volume, write_text_atomic
    from mri2pet_cli.preprocessing.itk import write_transform
    from mri2pet_cli.reporting.figures import registration_qc

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
        # absolute: `synthesize PREP_DIR` finds the raw files from any folder
        "sources": {k: v if isinstance(v, dict) else str(Path(v).resolve()) for k, v in sources.items() if v},
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
    registration_qc(result.t1, template_maps(result.grid).brain_mask, result.grid, subject_id, paths["qc"])
    if request is not None:
        written = [paths[k] for k in wanted] + [paths["qc"]]
        sidecar |= {"request": request, "output_sha256": output_hashes(written, paths["json"].parent)}
    write_text_atomic(json.dumps(sidecar, indent=2, default=float), paths["json"], overwrite=True)
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
    from mri2pet_cli.reporting.figures import registration_qc

    grid = getattr(exc, "qc_grid", None) or default_grid()
    path = output_paths(out_dir, subject_id)["qc"]
    path.parent.mkdir(parents=True, exist_ok=True)
    registration_qc(volume, template_maps(grid).brain_mask, grid, f"{subject_id}: REFUSED by QC", path)


def preprocess_and_save(
    subject, out_dir: str | Path, *, skull_strip: str = "deepbet", overwrite: bool = False, qc: str = "strict"
) -> dict:
    """Preprocess one :class:`~mri2pet_cli.preprocessing.inputs.SubjectInput`, write its files; return its checks."""
    from mri2pet_cli.errors import Mri2PetError

    request = preprocessing_request(subject, skull_strip, qc)
    record_path = output_paths(out_dir, subject.subject_id)["json"]
    if not overwrite and (record := finished_record(record_path, request)) is not None:
        return {"checks": record["checks"], "timings": record["timings_s"], "skipped": True}
    overwrite = may_replace(record_path, request, overwrite)  # a killed run's files, or a redo: written over
    try:
        result = preprocess(subject.t1, pet_path=subject.pet, skull_strip=skull_strip, qc=qc)
    except Mri2PetError as exc:
        if subject.subject_id not in exc.message:
            exc.message = f"{subject.subject_id}: {exc.message}"
        save_refusal_qc(exc, out_dir, subject.subject_id)
        raise
    sources = {"t1": subject.t1, "pet": subject.pet, "dicom": getattr(subject, "dicom", None)}
    save_preprocessed(result, out_dir, subject.subject_id, sources=sources, overwrite=overwrite, request=request)
    return {"checks": result.checks, "timings": result.timings}


def preprocessing_request(subject, skull_strip: str, qc: str) -> dict:
    """What a subject's preprocessing answers: the tool version, the inputs' hashes and the options."""
    from mri2pet_cli import __version__

    return {
        "version": __version__,
        "t1_sha256": input_sha256(subject.t1),
        "pet_sha256": None if subject.pet is None else input_sha256(subject.pet),
        "skull_strip": skull_strip,
        "qc": qc,
    }
