"""Issue 33: every shipped model on the v3 test split with bootstrap 95 % intervals, and its regional error where
a clinician reads an FDG scan for Alzheimer's disease.

    python benchmarks/model_intervals.py [--cohort runs/cohort-v3] [--models all] [--out FILE.json]
    python benchmarks/model_intervals.py --cohort runs/cohort-v4 --split benchmarks/splits/v4_n200_seed0.json \
        --out benchmarks/results/model_intervals_v3_weights_on_v4.json   # the shipped weights on version 4

- Image metrics (brain mask, SUVR): each subject's MAE and SSIM, then the mean with a percentile bootstrap
  95 % interval over subjects (2,000 resamples, seed 0). The mean training PET baseline (seeds' baseline)
  is scored the same way.
- AD-signature regions (posterior cingulate, precuneus, inferior parietal, temporal: AAL, left and right
  together): each subject's regional mean SUVR of the synthetic against the real PET; mean absolute error and
  bias (synthetic - real) with bootstrap intervals, over the AD test subjects and over all of them.

Predictions are cached beside the cohort's preprocessing (`evaluation/cache.py`): a rerun costs seconds.
The cohort is the simulator's (not patient data):
`mri2pet simulate runs/cohort-v3 --n 200 --seed 0 --sim-version 3 --jobs 2`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPLIT = ROOT / "benchmarks" / "splits" / "v3_n200_seed0.json"
AD_SIGNATURE = {
    "posterior cingulate": ("Cingulum_Post",),
    "precuneus": ("Precuneus",),
    "inferior parietal": ("Parietal_Inf",),
    "temporal": ("Temporal_Sup", "Temporal_Mid", "Temporal_Inf"),
}
RESAMPLES = 2000


def bootstrap(values: np.ndarray, seed: int = 0) -> dict:
    """Mean and percentile bootstrap 95 % interval of the mean over subjects."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (RESAMPLES, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci95": [float(low), float(high)], "n": len(values)}


def regional(volumes: np.ndarray, masks: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each AD-signature region's mean SUVR per subject (inside each subject's brain mask)."""
    from mri2pet_cli.space.atlas import region_labels

    out = {}
    for name, prefixes in AD_SIGNATURE.items():
        region = np.isin(labels, region_labels(prefixes))
        out[name] = np.array([volumes[i][region & (masks[i] > 0)].mean() for i in range(len(volumes))])
    return out


def model_rows(synthetic: np.ndarray, arrays, labels: np.ndarray, ad: np.ndarray) -> dict:
    from mri2pet_cli.evaluation.scoring import score

    rows = score(synthetic, arrays)
    real = regional(arrays.pet, arrays.mask, labels)
    synth = regional(synthetic, arrays.mask, labels)
    regions = {}
    for region in AD_SIGNATURE:
        error = synth[region] - real[region]
        regions[region] = {
            "mae_ad": bootstrap(np.abs(error[ad])),
            "bias_ad": bootstrap(error[ad]),
            "mae_all": bootstrap(np.abs(error)),
        }
    return {
        "mae": bootstrap([r["mae"] for r in rows]),
        "ssim": bootstrap([r["ssim"] for r in rows]),
        "psnr": bootstrap([r["psnr"] for r in rows]),
        "ad_signature_regions": regions,
    }


def main() -> None:
    from mri2pet_cli.evaluation.cache import cache_root, cached_predict
    from mri2pet_cli.models.registry import load_model, model_names
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset, read_split
    from mri2pet_cli.preprocessing.normalise import model_output_to_suvr
    from mri2pet_cli.space.atlas import template_maps
    from mri2pet_cli.space.grid import default_grid

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", type=Path, default=ROOT / "runs" / "cohort-v3")
    parser.add_argument("--split", type=Path, default=SPLIT, help="the cohort's split file (default: v3's)")
    parser.add_argument("--models", default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_intervals_v3.json")
    args = parser.parse_args()
    models = model_names() if args.models == "all" else args.models.split(",")

    split = read_split(args.split, args.cohort)
    records, _ = prepare_dataset(args.cohort, jobs=2, only=split["test"])
    arrays = load_arrays(records)
    train_records, _ = prepare_dataset(args.cohort, jobs=2, only=split["train"])
    train_pet = load_arrays(train_records).pet
    grid = default_grid()
    labels = template_maps(grid).aal
    ad = np.array([d == "AD" for d in arrays.diagnosis])
    result = {
        "split": str(args.split.resolve().relative_to(ROOT)),
        "n_test": len(arrays.ids),
        "n_ad": int(ad.sum()),
        "models": {},
    }
    for name in models:
        model, card, _ = load_model(name)
        raw = cached_predict(model, card, arrays, cache_root(records[0].preproc_dir), device=resolve_device("cpu"))
        synthetic = np.stack([model_output_to_suvr(raw[i], grid, arrays.mask[i] > 0)[0] for i in range(len(raw))])
        result["models"][name] = model_rows(synthetic, arrays, labels, ad)
        result["models"][name]["cohort_version"] = card.get("training_data", {}).get("simulation", {}).get("version")
        m = result["models"][name]
        print(f"{name}: MAE {m['mae']['mean']:.3f} {np.round(m['mae']['ci95'], 3)}, SSIM {m['ssim']['mean']:.3f}")
    baseline = np.repeat(train_pet.mean(axis=0)[None], len(arrays.ids), axis=0) * arrays.mask
    result["models"]["baseline: mean training PET"] = model_rows(baseline, arrays, labels, ad)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
