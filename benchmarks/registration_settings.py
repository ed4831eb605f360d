"""Registration settings against the simulator's truth: seconds and error per setting (issue 12).

    python benchmarks/registration_settings.py runs/cohort-v2 --first 100 --n 16

For N subjects of a v2 cohort (N4 and deepbet once per subject), the registration to MNI is run
with each setting, on one thread as preprocess runs it. Errors are mean distances over the true
brain voxels between the estimated MNI position and (a) the simulator's true affine, (b) the best
affine of the simulated anatomy (least squares over the full mapping with its nonlinear warp; the
true affine is about 1.9 mm from it, so no affine can reach (a) below that). Writes
benchmarks/results/registration_settings.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np

import mri2pet_cli.preprocessing.itk as itk
from mri2pet_cli.preprocessing import registration as pre
from mri2pet_cli.preprocessing.head import extract_brain_deepbet, slices_below_head
from mri2pet_cli.preprocessing.inputs import bids_subjects
from mri2pet_cli.preprocessing.qc import registration_problems
from mri2pet_cli.simulation.cohort import subject_paths

sys.path.insert(0, str(Path(__file__).parent))
from preprocess_accuracy import displacement_errors  # noqa: E402

BEFORE = {"gradient_filter": True, "min_step_factor": 0.1, "crop": False}
SETTINGS = {
    "before: gradient filter, min steps 1e-3 / 1e-4, whole field of view": BEFORE,
    "cropped to the brain + 20 mm": BEFORE | {"crop": True},
    "cropped, central-difference gradients": BEFORE | {"crop": True, "gradient_filter": False},
    "cropped, central differences, min steps 1e-2 / 1e-3 (now)": {},
    "cropped, central differences, min steps 3e-2 / 3e-3": {"min_step_factor": 3.0},
}


def prepare(folder: Path, sid: str) -> dict:
    img = nib.as_closest_canonical(nib.load(str(folder / sid / "anat" / f"{sid}_T1w.nii.gz")))
    data = np.asarray(img.dataobj, dtype=np.float32)
    data = np.maximum(data - np.percentile(data, 0.5), 0)
    corrected = itk.n4_bias_correct(data, img.affine, first_slice=slices_below_head(data, img.affine))
    paths = subject_paths(folder, sid)
    truth_mask = nib.load(str(paths["truth_mask"]))
    return {
        "subject": sid,
        "data": corrected,
        "affine": img.affine,
        "mask": extract_brain_deepbet(nib.Nifti1Image(corrected, img.affine)),
        "true": np.asarray(json.loads(paths["truth_json"].read_text())["native_to_mni"]),
        "true_mask": np.asarray(truth_mask.dataobj) > 0,
        "mask_affine": truth_mask.affine,
        "warp": nib.load(str(paths["truth_warp"])).get_fdata(dtype=np.float32),
    }


@contextmanager
def setting(gradient_filter: bool = False, min_step_factor: float = 1.0, crop: bool = True):
    saved = (itk.MOVING_GRADIENT_FILTER, itk.RIGID_MIN_STEP, itk.AFFINE_MIN_STEP, pre.REGISTRATION_MARGIN_MM)
    itk.MOVING_GRADIENT_FILTER = gradient_filter
    itk.RIGID_MIN_STEP, itk.AFFINE_MIN_STEP = saved[1] * min_step_factor, saved[2] * min_step_factor
    pre.REGISTRATION_MARGIN_MM = saved[3] if crop else 1e9
    try:
        yield
    finally:
        itk.MOVING_GRADIENT_FILTER, itk.RIGID_MIN_STEP, itk.AFFINE_MIN_STEP, pre.REGISTRATION_MARGIN_MM = saved


def run(subjects: list[dict], **options) -> dict:
    rows = []
    with setting(**options):
        for s in subjects:
            start = time.perf_counter()
            estimate, checks = pre.register_to_mni(s["data"], s["affine"], s["mask"])
            seconds = time.perf_counter() - start
            errors = displacement_errors(estimate, s["true"], s["true_mask"], s["mask_affine"], s["warp"])
            rows.append(
                {
                    "subject": s["subject"],
                    "seconds": round(seconds, 3),
                    "true_affine_mm": round(errors["mean_mm"], 4),
                    "best_affine_mm": round(errors["best_affine_mean_mm"], 4),
                    "failed_checks": len(registration_problems(checks)),
                    "starts": checks["starts"],
                }
            )
    return {
        "seconds": float(np.mean([r["seconds"] for r in rows])),
        "true_affine_mean_mm": float(np.mean([r["true_affine_mm"] for r in rows])),
        "true_affine_worst_subject_mm": max(r["true_affine_mm"] for r in rows),
        "best_affine_mean_mm": float(np.mean([r["best_affine_mm"] for r in rows])),
        "best_affine_worst_subject_mm": max(r["best_affine_mm"] for r in rows),
        "subjects_failing_a_check": sum(r["failed_checks"] > 0 for r in rows),
        "subjects": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--first", type=int, default=0, help="skip this many subjects")
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    chosen = bids_subjects(args.data)[args.first : args.first + args.n]
    subjects = [prepare(args.data, s.subject_id) for s in chosen]
    results = {}
    for name, options in SETTINGS.items():
        results[name] = run(subjects, **options)
        summary = {k: round(v, 3) for k, v in results[name].items() if k != "subjects"}
        print(f"{name}: {summary}", flush=True)
    out = Path(__file__).parent / "results" / "registration_settings.json"
    record = {
        "n": len(subjects),
        "data": f"{args.data} (simulator v2), {chosen[0].subject_id}..{chosen[-1].subject_id}",
        "settings": results,
    }
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
