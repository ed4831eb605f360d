"""End-to-end `synthesize` on simulated raw T1s (issue 4): seconds by stage and peak memory.

    python benchmarks/synthesize_speed.py runs/cohort-v2 --n 6 --neck --first 100

Without ``--with-reference`` the subjects' PET is not used (a lab's case: a raw T1 in, the PET and
every report out); ``--neck`` keeps v2 subjects whose T1 has the neck and shoulders in view (a long
full-head field of view, the slowest kind).

Runs in one process on the CPU, like a lab machine without a GPU. The first subject pays for loading
deepbet and the templates; the table reports it apart. Also compares the model in float32 and in bf16
autocast on the same inputs (speed, and the largest and mean absolute difference in SUVR).
Writes benchmarks/results/synthesize_speed_<model>[_neck].json.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from mri2pet_cli.inference.synthesis import SynthesisOptions, cached_model, synthesize
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.inputs import bids_subjects


def _variety(data: Path, sid: str) -> dict:
    truth = data / "derivatives" / "truth" / sid / f"{sid}_truth.json"
    if not truth.exists():
        return {}
    return json.loads(truth.read_text())["subject"].get("extras", {}).get("variety", {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--n", type=int, default=5)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="skip this many subjects")
    parser.add_argument("--with-reference", action="store_true", help="also score against each subject's PET")
    parser.add_argument("--neck", action="store_true", help="only v2 subjects with the neck in view")
    parser.add_argument("--no-precision-check", action="store_true", help="skip the fp32 / bf16 model comparison")
    args = parser.parse_args()
    torch.set_num_threads(2)

    subjects = bids_subjects(args.data)[args.first :]
    if args.neck:
        subjects = [s for s in subjects if "neck" in _variety(args.data, s.subject_id)]
    subjects = subjects[: args.n]
    if not args.with_reference:
        subjects = [replace(s, pet=None) for s in subjects]
    out = Path(tempfile.mkdtemp(prefix="mri2pet-speed-"))
    options = SynthesisOptions(model=args.model, device="cpu", samples=args.samples)
    rows = []
    for subject in subjects:
        start = time.perf_counter()
        record = synthesize(subject, out, options)
        wall = time.perf_counter() - start
        rows.append({"subject": subject.subject_id, "wall_s": wall, **record["timings_s"]})
        print(json.dumps(rows[-1]))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steady = rows[1:] or rows
    stages = [k for k in rows[0] if k not in ("subject",)]
    summary = {
        "model": args.model,
        "with_reference_pet": args.with_reference,
        "t1_shapes": [list(nib.load(str(s.t1)).shape) for s in subjects],
        "samples": args.samples,
        "n": len(rows),
        "first_subject_wall_s": rows[0]["wall_s"],
        "mean_wall_s_after_first": float(np.mean([r["wall_s"] for r in steady])),
        "mean_by_stage_s_after_first": {k: float(np.mean([r.get(k, 0.0) for r in steady])) for k in stages},
        "end_to_end_over_model_time": float(sum(r["wall_s"] for r in steady) / sum(r["model"] for r in steady)),
        "peak_rss_mb": peak_mb,
        "torch_threads": torch.get_num_threads(),
    }

    if args.no_precision_check:
        _write(args, summary, rows)
        return
    # float32 against bf16 autocast, model only, on the preprocessed inputs of these subjects
    from mri2pet_cli.preprocessing.pipeline import preprocess

    model, _, _ = cached_model(args.model, None)
    pre = [preprocess(s.t1) for s in subjects[:3]]
    t1 = np.stack([p.t1 for p in pre])
    mask = np.stack([p.mask for p in pre]).astype(np.float32)
    timing = {}
    outputs = {}
    for precision in ("fp32", "bf16"):
        predict(model, t1[:1], mask[:1], precision=precision)  # warm-up
        start = time.perf_counter()
        outputs[precision], _ = predict(model, t1, mask, precision=precision)
        timing[precision] = (time.perf_counter() - start) / len(t1)
    diff = np.abs(outputs["fp32"] - outputs["bf16"])[mask > 0]
    summary["model_only_s_per_subject"] = timing
    summary["bf16_vs_fp32_suvr_abs_diff"] = {"mean": float(diff.mean()), "max": float(diff.max())}
    _write(args, summary, rows)


def _write(args, summary: dict, rows: list) -> None:
    print(json.dumps(summary, indent=2))
    samples = f"_samples{args.samples}" if args.samples > 1 else ""
    target = Path("benchmarks/results") / f"synthesize_speed_{args.model}{samples}{'_neck' if args.neck else ''}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"summary": summary, "subjects": rows}, indent=2))


if __name__ == "__main__":
    main()
