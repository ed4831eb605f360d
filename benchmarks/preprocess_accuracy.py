"""Preprocessing against the simulator's ground truth (issue 3), and on the real MNI152 template.

    python benchmarks/preprocess_accuracy.py benchmarks/out/cohort100 --n 20 -o benchmarks/out/preproc

For N subjects of a simulated cohort (after the first ``--first``): registration error (mean and max displacement
over true brain voxels between the estimated and the true native-to-MNI affine, and against the
full mapping with the nonlinear part), brain-extraction Dice against the true mask, correlation of
the PET on the grid with the true model-grid PET inside the brain, and seconds per step.
Then the same registration on the MNI152 T1 template itself after a known rotation, shift and
reorientation. Writes preprocess_accuracy.json in the output folder.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.preprocessing.inputs import bids_subjects
from mri2pet_cli.preprocessing.pipeline import preprocess
from mri2pet_cli.preprocessing.qc import dice
from mri2pet_cli.preprocessing.storage import load_preprocessed, output_paths, preprocess_and_save
from mri2pet_cli.simulation.cohort import subject_paths
from mri2pet_cli.simulation.geometry import oriented_affine, rigid


def displacement_errors(estimated: np.ndarray, true: np.ndarray, mask: np.ndarray, affine: np.ndarray, warp=None):
    """Mean and max distance (mm) between estimated and true MNI positions of the true brain voxels."""
    idx = np.argwhere(mask).T
    mni = affine[:3, :3] @ idx + affine[:3, 3:4]
    native = np.linalg.inv(true) @ np.vstack([mni, np.ones(mni.shape[1])])
    estimate = (estimated @ native)[:3]
    err = np.linalg.norm(estimate - mni, axis=0)
    out = {"mean_mm": float(err.mean()), "max_mm": float(err.max())}
    if warp is not None:
        full = mni + warp[tuple(idx)].T  # template position = affine position + nonlinear displacement
        err_full = np.linalg.norm(estimate - full, axis=0)
        out.update({"full_mapping_mean_mm": float(err_full.mean()), "full_mapping_max_mm": float(err_full.max())})
        # The best an affine can do for this anatomy: the least-squares affine of the full mapping.
        # The simulator's smooth warp has a large-scale (affine-like) part, so the true affine is not it.
        homogeneous = np.vstack([mni, np.ones(mni.shape[1])]).T
        best = homogeneous @ np.linalg.lstsq(homogeneous, full.T, rcond=None)[0]
        err_best = np.linalg.norm(estimate - best.T, axis=0)
        residual = np.linalg.norm(best.T - full, axis=0)
        out.update(
            {
                "best_affine_mean_mm": float(err_best.mean()),
                "best_affine_max_mm": float(err_best.max()),
                "true_affine_vs_best_affine_mean_mm": float(np.linalg.norm(best.T - mni, axis=0).mean()),
                "nonlinear_residual_mean_mm": float(residual.mean()),
            }
        )
    return out


def cohort(folder: Path, n: int, out_dir: Path, first: int = 0) -> list[dict]:
    rows = []
    for subject in bids_subjects(folder)[first : first + n]:
        sid = subject.subject_id
        if not output_paths(out_dir, sid)["json"].exists():
            preprocess_and_save(subject, out_dir)
        result = load_preprocessed(out_dir, sid)
        truth_paths = subject_paths(folder, sid)
        truth = json.loads(truth_paths["truth_json"].read_text())
        mask_img = nib.load(str(truth_paths["truth_mask"]))
        true_mask = np.asarray(mask_img.dataobj) > 0
        warp = nib.load(str(truth_paths["truth_warp"])).get_fdata(dtype=np.float32)
        row = {"subject": sid, "diagnosis": truth["subject"]["diagnosis"]}
        row.update(
            displacement_errors(
                result.native_to_mni, np.asarray(truth["native_to_mni"]), true_mask, mask_img.affine, warp
            )
        )
        row["brain_dice"] = dice(result.mask, true_mask)
        true_pet = nib.load(str(truth_paths["truth_pet"])).get_fdata(dtype=np.float32)
        if result.pet is not None:
            row["pet_correlation"] = float(np.corrcoef(result.pet[true_mask], true_pet[true_mask])[0, 1])
        row["timings_s"] = result.timings
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "timings_s"} | {"total_s": result.timings["total"]}))
    return rows


def template_check(out_dir: Path) -> dict:
    """The MNI152 T1 (a real brain) rotated, shifted and stored as LIA; preprocess must undo it."""
    from mri2pet_cli.space.atlas import _load

    src = _load("t1")
    data = np.asarray(src.dataobj, dtype=np.float32)
    pose = rigid([8.0, -12.0, 10.0], [12.0, -15.0, 9.0])  # MNI -> scanner world
    affine, shape = oriented_affine(
        "LIA", [1.0, 1.0, 1.2], (200.0, 240.0, 220.0), pose[:3] @ np.array([0, -18, 12, 1.0])
    )
    from mri2pet_cli.space.resample import resample

    moved = resample(data, src.affine, shape, affine, world_to_world=np.linalg.inv(pose), antialias=False)
    path = out_dir / "mni152_rotated_LIA.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(moved, affine), str(path))
    start = time.perf_counter()
    result = preprocess(path, skull_strip="none")
    seconds = time.perf_counter() - start
    mask = np.asarray(src.dataobj) > 0.2 * 255
    out = displacement_errors(result.native_to_mni, np.linalg.inv(pose), mask, src.affine)
    out.update(
        {
            "seconds": seconds,
            "rotation_deg": [8.0, -12.0, 10.0],
            "shift_mm": [12.0, -15.0, 9.0],
            "orientation": "LIA",
            "skull_strip": "none (the template is already brain-extracted)",
        }
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--first", type=int, default=0, help="skip this many subjects")
    parser.add_argument("-o", "--out-dir", type=Path, default=Path("benchmarks/out/preproc"))
    args = parser.parse_args()

    rows = cohort(args.folder, args.n, args.out_dir, args.first)
    steps = sorted({k for r in rows for k in r["timings_s"]})
    summary = {
        "n": len(rows),
        "registration_mean_mm": float(np.mean([r["mean_mm"] for r in rows])),
        "registration_worst_subject_mean_mm": float(np.max([r["mean_mm"] for r in rows])),
        "registration_max_voxel_mm": float(np.max([r["max_mm"] for r in rows])),
        "full_mapping_mean_mm": float(np.mean([r["full_mapping_mean_mm"] for r in rows])),
        "best_affine_mean_mm": float(np.mean([r["best_affine_mean_mm"] for r in rows])),
        "best_affine_worst_subject_mean_mm": float(np.max([r["best_affine_mean_mm"] for r in rows])),
        "true_affine_vs_best_affine_mean_mm": float(np.mean([r["true_affine_vs_best_affine_mean_mm"] for r in rows])),
        "nonlinear_residual_mean_mm": float(np.mean([r["nonlinear_residual_mean_mm"] for r in rows])),
        "brain_dice_mean": float(np.mean([r["brain_dice"] for r in rows])),
        "brain_dice_min": float(np.min([r["brain_dice"] for r in rows])),
        "pet_correlation_mean": float(np.mean([r["pet_correlation"] for r in rows if "pet_correlation" in r])),
        "pet_correlation_min": float(np.min([r["pet_correlation"] for r in rows if "pet_correlation" in r])),
        "seconds_by_step_mean": {s: float(np.mean([r["timings_s"].get(s, 0.0) for r in rows])) for s in steps},
        "mni152_template": template_check(args.out_dir),
    }
    print(json.dumps(summary, indent=2))
    (args.out_dir / "preprocess_accuracy.json").write_text(json.dumps({"summary": summary, "subjects": rows}, indent=2))


if __name__ == "__main__":
    main()
