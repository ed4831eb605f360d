"""DUAL-GLOW uncertainty calibration (issue 17): fit the std factor on validation, report test coverage.

    python benchmarks/dualglow_calibration.py --data runs/cohort-v2 [--card weights/dual-glow.json --write]

Draws ``--samples`` PETs at T = 1 for each validation and test subject of the card's split. The point
estimate is the T = 0 decode (as `synthesize` writes it). Fits the factor on the validation voxels
(`mri2pet_cli.uncertainty`), then reports on the test split, before and after scaling: the 90 % interval
coverage of voxel errors and of AAL regional errors (region std = std of the region's mean across draws),
and the std-|error| correlation at voxel and region level. ``--write`` stores the factor in the card
(the weights file and its sha256 are unchanged). Writes benchmarks/results/dualglow_calibration.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mri2pet_cli.atlas import template_maps
from mri2pet_cli.dataset import load_arrays, prepare_dataset
from mri2pet_cli.evaluation import predict
from mri2pet_cli.grid import default_grid
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.uncertainty import Z90, interval_coverage, std_scale_for_coverage
from mri2pet_cli.weights import load_model


def draws_of(model, arrays, samples: int, temperature: float):
    """Per subject: the T = 0 point estimate and ``samples`` draws at ``temperature`` (seeds 0..samples-1)."""
    out = []
    for i in range(len(arrays.ids)):
        args = (model, arrays.t1[i : i + 1], arrays.mask[i : i + 1], arrays.age[i : i + 1])
        point = predict(*args)[0][0]
        draws = np.stack([predict(*args, temperature=temperature, seed=s)[0][0] for s in range(samples)])
        out.append((point, draws))
    return out


def region_errors(point, draws, truth, mask, labels):
    regions = [r for r in np.unique(labels[mask]) if r > 0]
    err, std = [], []
    for r in regions:
        sel = mask & (labels == r)
        err.append(point[sel].mean() - truth[sel].mean())
        std.append(np.std([d[sel].mean() for d in draws], ddof=1))
    return np.array(err), np.array(std)


def collect(results, arrays, labels):
    voxel_err, voxel_std, reg_err, reg_std = [], [], [], []
    for (point, draws), truth, mask in zip(results, arrays.pet, arrays.mask > 0):
        voxel_err.append((point - truth)[mask])
        voxel_std.append(draws.std(axis=0, ddof=1)[mask])
        e, s = region_errors(point, draws, truth, mask, labels)
        reg_err.append(e)
        reg_std.append(s)
    return [np.concatenate(v) for v in (voxel_err, voxel_std, reg_err, reg_std)]


def summary(voxel_err, voxel_std, reg_err, reg_std, scale: float) -> dict:
    return {
        "voxel_coverage_90": interval_coverage(voxel_err, voxel_std, scale),
        "region_coverage_90": interval_coverage(reg_err, reg_std, scale),
        "voxel_std_abs_error_r": float(np.corrcoef(voxel_std, np.abs(voxel_err))[0, 1]),
        "region_std_abs_error_r": float(np.corrcoef(reg_std, np.abs(reg_err))[0, 1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--card", type=Path, default=None, help="default: the shipped weights/dual-glow.json")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--write", action="store_true", help="store the fitted factor in the card")
    args = parser.parse_args()
    torch.set_num_threads(2)

    weights = None if args.card is None else args.card.with_suffix(".pt")
    model, card, files = load_model("dual-glow", weights)
    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    split = card["training_data"]["split"]
    labels = template_maps(default_grid()).aal
    parts = {}
    for name in ("validation", "test"):
        arrays = load_arrays([by_id[s] for s in split[name]])
        parts[name] = collect(draws_of(model, arrays, args.samples, args.temperature), arrays, labels)
        print(f"{name}: {len(arrays.ids)} subjects drawn", flush=True)
    scale = std_scale_for_coverage(parts["validation"][0], parts["validation"][1])
    result = {
        "samples": args.samples,
        "temperature": args.temperature,
        "interval": f"point estimate (T = 0) +- {Z90:.3f} x std of the draws",
        "std_scale": scale,
        "n": {name: len(split[name]) for name in parts},
        "validation": {"before": summary(*parts["validation"], 1.0), "after": summary(*parts["validation"], scale)},
        "test": {"before": summary(*parts["test"], 1.0), "after": summary(*parts["test"], scale)},
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "dualglow_calibration.json"
    write_text_atomic(json.dumps(result, indent=2) + "\n", out)
    if args.write:
        card["uncertainty_calibration"] = {
            "std_scale": round(scale, 4),
            "samples": args.samples,
            "temperature": args.temperature,
            "fitted_on": f"validation split ({len(split['validation'])} subjects), voxel errors in the brain mask",
            "test_after": result["test"]["after"],
            "test_before": result["test"]["before"],
            "command": "python benchmarks/dualglow_calibration.py --data runs/cohort-v2 --write",
        }
        write_text_atomic(json.dumps(card, indent=2), files.card)


if __name__ == "__main__":
    main()
