"""DUAL-GLOW uncertainty calibration (issue 17): fit the std factor on validation, report test coverage.

    python benchmarks/dualglow_calibration.py --data runs/cohort-v2 [--card weights/dual-glow.json --write]

Draws ``--samples`` PETs at T = 1 for each validation and test subject of the card's split. The point
estimate is the T = 0 decode (as `synthesize` writes it). Fits the factor on the validation voxels
(`mri2pet_cli.uncertainty`), then reports on the test split, before and after scaling: the 90 % interval
coverage of voxel errors and of AAL regional errors, and the std-|error| correlation at voxel and region
level. Regions two ways: "draws" (std of the region's mean across draws, x the voxel factor) and
"per-region" (mean voxel std in the region x a factor per region fitted on validation,
`uncertainty.region_std_scales`, shrinkage by leave-one-subject-out likelihood on validation;
what the region table of `synthesize --samples` reports).
``--write`` stores the factors in the card (the weights file and its sha256 are unchanged).
Writes benchmarks/results/dualglow_calibration.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.reporting.uncertainty import (
    Z90,
    chosen_region_shrink,
    interval_coverage,
    region_std_scales,
    std_scale_for_coverage,
    within_region_correlation,
)
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid
from mri2pet_cli.space.tissue import region_order, regional_values

REGIONS = region_order()  # the column order of regional_values


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
    """Per AAL region (REGIONS order; NaN where absent): error of the mean, std of the mean across draws,
    and mean voxel std."""
    err = regional_values(point, labels, mask) - regional_values(truth, labels, mask)
    std = np.std([regional_values(d, labels, mask) for d in draws], axis=0, ddof=1)
    return err, std, regional_values(draws.std(axis=0, ddof=1), labels, mask)


def collect(results, arrays, labels) -> dict:
    """Voxel errors and stds (flat), and (subjects, regions) matrices of regional errors and stds."""
    out = {key: [] for key in ("voxel_err", "voxel_std", "region_err", "region_draw_std", "region_mean_std")}
    for (point, draws), truth, mask in zip(results, arrays.pet, arrays.mask > 0):
        out["voxel_err"].append((point - truth)[mask])
        out["voxel_std"].append(draws.std(axis=0, ddof=1)[mask])
        for key, value in zip(("region_err", "region_draw_std", "region_mean_std"), region_errors(
            point, draws, truth, mask, labels
        )):  # fmt: skip
            out[key].append(value)
    return {k: np.concatenate(v) if k.startswith("voxel") else np.stack(v) for k, v in out.items()}


def correlation(std: np.ndarray, err: np.ndarray) -> float:
    ok = np.isfinite(std) & np.isfinite(err)
    return float(np.corrcoef(std[ok], np.abs(err[ok]))[0, 1])


def summary(part: dict, scale: float, region_scales: np.ndarray) -> dict:
    region_err = part["region_err"]
    ok = np.isfinite(region_err)
    per_region = part["region_mean_std"] * region_scales
    return {
        "voxel_coverage_90": interval_coverage(part["voxel_err"], part["voxel_std"], scale),
        "voxel_std_abs_error_r": correlation(part["voxel_std"], part["voxel_err"]),
        "region_coverage_90_draws": interval_coverage(region_err[ok], part["region_draw_std"][ok], scale),
        "region_std_abs_error_r_draws": correlation(part["region_draw_std"], region_err),
        "region_coverage_90": interval_coverage(region_err[ok], per_region[ok]),
        "region_std_abs_error_r": correlation(per_region, region_err),
        "region_std_abs_error_r_within_regions": within_region_correlation(per_region, region_err),
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
    validation = parts["validation"]
    scale = std_scale_for_coverage(validation["voxel_err"], validation["voxel_std"])
    shrink = chosen_region_shrink(validation["region_err"], validation["region_mean_std"])
    region_scales = region_std_scales(validation["region_err"], validation["region_mean_std"], shrink=shrink)
    ones = np.ones(len(REGIONS))
    result = {
        "samples": args.samples,
        "temperature": args.temperature,
        "interval": f"point estimate (T = 0) +- {Z90:.3f} x std of the draws",
        "std_scale": scale,
        "n": {name: len(split[name]) for name in parts},
        "region_shrink_subjects": shrink,
        "region_std_scale": {
            "median": float(np.median(region_scales)),
            "min": float(region_scales.min()),
            "max": float(region_scales.max()),
        },  # fmt: skip
        "validation": {
            "before": summary(validation, 1.0, ones),
            "after": summary(validation, scale, region_scales),
        },
        "test": {"before": summary(parts["test"], 1.0, ones), "after": summary(parts["test"], scale, region_scales)},
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "dualglow_calibration.json"
    write_text_atomic(json.dumps(result, indent=2) + "\n", out)
    if args.write:
        card["uncertainty_calibration"] = {
            "std_scale": round(scale, 4),
            "region_std_scale": {str(r): round(float(f), 4) for r, f in zip(REGIONS, region_scales)},
            "region_shrink_subjects": shrink,
            "samples": args.samples,
            "temperature": args.temperature,
            "fitted_on": f"validation split ({len(split['validation'])} subjects): voxel errors in the brain mask "
            "(std_scale) and AAL regional mean errors against the mean voxel std (region_std_scale)",
            "test_after": result["test"]["after"],
            "test_before": result["test"]["before"],
            "command": f"python benchmarks/dualglow_calibration.py --data {args.data} --write",
        }
        write_text_atomic(json.dumps(card, indent=2), files.card)


if __name__ == "__main__":
    main()
