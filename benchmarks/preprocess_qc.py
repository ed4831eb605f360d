"""Registration QC on scans it must pass and scans it must refuse (issues 11 and 12).

    python benchmarks/preprocess_qc.py runs/qc-sets [--per-variety 2]

Positives: v2 simulated subjects with each scan variety switched on alone (neck, origin offset,
thick slices, low contrast / contrast-enhanced, cut field of view, motion), all at once, and
none; the MNI152 template itself (nilearn) put in a scanner pose. Negatives: a T2-like contrast
(the T1 inverted inside the head), a PET given as a T1, a non-head (a smooth random blob), and a
T1 whose registration is deliberately wrong (20 degrees and 12 mm off). Prints every check of
every scan and the pass rates; writes benchmarks/results/preprocess_qc.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.preprocessing.head import extract_brain_deepbet
from mri2pet_cli.preprocessing.pipeline import preprocess
from mri2pet_cli.preprocessing.qc import check_registration, registration_checks
from mri2pet_cli.preprocessing.registration import REGISTRATION_GRID
from mri2pet_cli.simulation.cohort import simulate_cohort, subject_paths
from mri2pet_cli.simulation.geometry import rigid
from mri2pet_cli.simulation.scan_variety import VARIETIES
from mri2pet_cli.space.atlas import _nilearn_data_dir, template_maps
from mri2pet_cli.space.resample import resample

RESULTS = Path(__file__).parent / "results"
CHECKS = (
    "mask_dice_with_template",
    "t1_rank_correlation_with_template",
    "wm_to_gm_ratio",
    "t1_correlation_with_template",
)


def run(path: Path, **kwargs) -> dict:
    try:
        result = preprocess(path, **kwargs)
        return {"passed": True, **{k: round(float(result.checks[k]), 3) for k in CHECKS}}
    except Mri2PetError as exc:
        return {"passed": False, "reason": exc.message}


def positives(folder: Path, per_variety: int) -> dict[str, Path]:
    out = {}
    for i, variety in enumerate(("none", *VARIETIES, "all")):
        cohort = folder / f"pos-{variety}"
        if not (cohort / "participants.tsv").exists():
            simulate_cohort(cohort, per_variety, seed=500 + i, variety=variety)
        for k in range(per_variety):
            out[f"sim {variety} #{k + 1}"] = subject_paths(cohort, f"sub-{k + 1:03d}")["t1"]
    mni = nib.load(str(_nilearn_data_dir() / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"))
    posed = nib.Nifti1Image(np.asarray(mni.dataobj, dtype=np.float32), rigid([8, -5, 12], [30, -60, 45]) @ mni.affine)
    out["MNI152 2009a template, posed"] = folder / "mni152_posed.nii.gz"
    nib.save(posed, str(out["MNI152 2009a template, posed"]))
    return out


def negatives(folder: Path, t1: Path, pet: Path) -> dict[str, Path]:
    img = nib.load(str(t1))
    data = np.asarray(img.dataobj, dtype=np.float32)
    head = data > 0.1 * np.percentile(data, 99)
    t2 = np.where(head, np.percentile(data[head], 99) - data, 0.0) * head
    rng = np.random.default_rng(0)
    from scipy import ndimage

    blob = ndimage.gaussian_filter(rng.normal(0, 1, data.shape).astype(np.float32), 12)
    blob = np.maximum(blob - blob.mean(), 0) * 1000
    out = {"T2-like contrast": folder / "neg_t2.nii.gz", "non-head blob": folder / "neg_blob.nii.gz"}
    nib.save(nib.Nifti1Image(t2.astype(np.float32), img.affine), str(out["T2-like contrast"]))
    nib.save(nib.Nifti1Image(blob.astype(np.float32), img.affine), str(out["non-head blob"]))
    out["PET given as T1"] = pet
    return out


def misregistered(t1: Path) -> dict:
    """The QC of a right registration turned wrong on purpose (20 degrees, 12 mm)."""
    result = preprocess(t1)
    wrong = rigid([20, 0, 0], [0, 12, 0]) @ result.native_to_mni
    img = nib.as_closest_canonical(nib.load(str(t1)))
    data = np.asarray(img.dataobj, dtype=np.float32)
    mask = extract_brain_deepbet(nib.Nifti1Image(data, img.affine))
    grid = REGISTRATION_GRID
    inverse = np.linalg.inv(wrong)
    warped = resample(data * mask, img.affine, grid.shape, grid.affine, world_to_world=inverse)
    warped_mask = resample(mask.astype(np.float32), img.affine, grid.shape, grid.affine, world_to_world=inverse) > 0.5
    checks = registration_checks(warped, warped_mask, template_maps(grid))
    checks["scale_factors"] = [1.0, 1.0, 1.0]
    try:
        check_registration(checks, str(t1))
        verdict = {"passed": True}
    except Mri2PetError as exc:
        verdict = {"passed": False, "reason": exc.message}
    return {**verdict, **{k: round(float(checks[k]), 3) for k in CHECKS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-variety", type=int, default=2)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    pos = positives(args.folder, args.per_variety)
    results = {"positive": {}, "negative": {}}
    for name, path in pos.items():
        results["positive"][name] = run(path)
        print("positive", name, results["positive"][name], flush=True)
    base = args.folder / "pos-none"
    neg = negatives(args.folder, subject_paths(base, "sub-001")["t1"], subject_paths(base, "sub-001")["pet"])
    for name, path in neg.items():
        results["negative"][name] = run(path)
        print("negative", name, results["negative"][name], flush=True)
    results["negative"]["misregistered T1 (20 deg, 12 mm)"] = misregistered(subject_paths(base, "sub-001")["t1"])
    print("negative misregistered", results["negative"]["misregistered T1 (20 deg, 12 mm)"], flush=True)
    summary = {
        "positives_passed": f"{sum(r['passed'] for r in results['positive'].values())}/{len(results['positive'])}",
        "negatives_refused": f"{sum(not r['passed'] for r in results['negative'].values())}/{len(results['negative'])}",
    }
    results["summary"] = summary
    print(json.dumps(summary))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "preprocess_qc.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
