"""N4 settings against the simulator's true bias field (issue 12): seconds and residual bias in the brain.

    python benchmarks/n4_accuracy.py runs/cohort-v2 --neck --first 100 --n 5

The v2 simulator multiplies each raw T1 by a smooth bias field drawn from the subject's own random
stream (simulate.bias_field); this script draws it again, fits N4 with each setting on the same
image (above the neck, as `preprocess` does; the seconds include evaluating the field on the full
grid), and reports the standard deviation of
log(true bias) - log(N4 bias) inside the brain (a constant offset does not matter: the T1 is later
normalised by its white matter). "none" is the spread of the true field itself.
Writes benchmarks/results/n4_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.preprocessing import itk
from mri2pet_cli.preprocessing.head import slices_below_head
from mri2pet_cli.simulation.cohort import subject_paths
from mri2pet_cli.simulation.population import Subject
from mri2pet_cli.simulation.scanner import bias_field, t1_grid
from mri2pet_cli.space.resample import resample

sys.path.insert(0, str(Path(__file__).parent))
from synthesize_speed import _variety  # noqa: E402

SETTINGS = {
    "shrink 4 mm, iterations 50/50/30 (before)": (4.0, (50, 50, 30)),
    "shrink 5 mm, iterations 50/50/30 (now)": (5.0, (50, 50, 30)),
    "shrink 6 mm, iterations 50/50/30": (6.0, (50, 50, 30)),
    "shrink 4 mm, iterations 25/25/25": (4.0, (25, 25, 25)),
}


def true_log_bias(truth: dict) -> tuple[np.ndarray, np.ndarray]:
    """The subject's log bias field on its raw T1 grid (as native_t1 draws it) and that grid's affine."""
    rng, affine, shape, center = t1_grid(Subject(**truth["subject"]))
    return np.log(bias_field(rng, affine, shape, center)), affine


def evaluate_subject(data: Path, sid: str) -> dict:
    paths = subject_paths(data, sid)
    truth = json.loads(paths["truth_json"].read_text())
    raw = nib.load(str(paths["t1"]))
    true_log, affine = true_log_bias(truth)
    if not np.allclose(affine, raw.affine, atol=1e-3):
        raise SystemExit(f"{sid}: the redrawn grid does not match the raw T1's")
    ras = nib.as_closest_canonical(raw)
    true_log = nib.orientations.apply_orientation(true_log, nib.orientations.io_orientation(raw.affine))
    data_ras = np.asarray(ras.dataobj, dtype=np.float32)
    data_ras = np.maximum(data_ras - np.percentile(data_ras, 0.5), 0.0)
    mask_img = nib.load(str(paths["truth_mask"]))
    mni_to_native = np.linalg.inv(np.asarray(truth["native_to_mni"]))
    brain = (
        resample(
            np.asarray(mask_img.dataobj, np.float32),
            mask_img.affine,
            ras.shape,
            ras.affine,
            world_to_world=mni_to_native,
        )
        > 0.5
    )
    below = slices_below_head(data_ras, ras.affine)
    row = {"subject": sid, "brain_voxels": int(brain.sum()), "none_sd_percent": 100 * float(np.std(true_log[brain]))}
    for name, (shrink, iterations) in SETTINGS.items():
        start = time.perf_counter()  # fit and evaluation on the full grid, as `preprocess` pays for them
        fitted = itk.n4_log_bias(data_ras, ras.affine, shrink, below, iterations)
        seconds = time.perf_counter() - start
        row[name] = {"seconds": seconds, "residual_sd_percent": 100 * float(np.std((true_log - fitted)[brain]))}
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--first", type=int, default=0, help="skip this many subjects")
    parser.add_argument("--neck", action="store_true", help="only subjects with the neck in view")
    args = parser.parse_args()
    ids = sorted(p.name for p in args.data.glob("sub-*"))[args.first :]
    if args.neck:
        ids = [s for s in ids if "neck" in _variety(args.data, s)]
    rows = []
    for sid in ids[: args.n]:
        rows.append(evaluate_subject(args.data, sid))
        print(json.dumps(rows[-1]), flush=True)
    summary = {"none": float(np.mean([r["none_sd_percent"] for r in rows]))}
    for name in SETTINGS:
        summary[name] = {
            "seconds_mean": float(np.mean([r[name]["seconds"] for r in rows])),
            "residual_sd_percent_mean": float(np.mean([r[name]["residual_sd_percent"] for r in rows])),
        }
    print(json.dumps(summary, indent=2))
    out = Path(__file__).parent / "results" / "n4_accuracy.json"
    out.write_text(json.dumps({"data": str(args.data), "n": len(rows), "summary": summary, "subjects": rows}, indent=2))


if __name__ == "__main__":
    main()
