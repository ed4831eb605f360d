"""DUAL-GLOW figures (issue 5) on the test split recorded in its model card.

    python benchmarks/dualglow_figures.py --data runs/cohort200 [--weights weights/dual-glow.pt]

Prints and writes benchmarks/out/dualglow_figures.json:
- age effect: per test subject, the slope (SUVR per decade) of synthetic PET against the age given
  (60, 70, 80, 90; T1 fixed), in the AD-pattern and frontal regions, against the simulator's ground truth:
  the same subject re-rendered at those ages with everything else (anatomy, brain age, severity) fixed
  (first --truth-subjects test subjects; about 5 s per rendering), and the slope across the data set;
- uncertainty: correlation between the voxel-wise std of 8 samples (T = 0.7) and the absolute error;
- model time on the CPU for 1 and 8 samples; bits per dimension of the test PETs;
- age information per latent level: cross-validated R^2 of a ridge regression from the average-pooled
  latents of each level to age (lower T1 levels should carry little, the top levels much).
Test MAE / PSNR / SSIM / r against the U-Net and the baselines: `mri2pet evaluate --model dual-glow,unet`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_score

from mri2pet_cli.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, mean_in_labels, region_labels, template_maps
from mri2pet_cli.dataset import load_arrays, prepare_dataset
from mri2pet_cli.evaluation import predict
from mri2pet_cli.grid import default_grid
from mri2pet_cli.weights import load_model

AGES = (60.0, 70.0, 80.0, 90.0)


def region_means(pet: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    inside = labels * (mask > 0)
    return {
        "ad_pattern": mean_in_labels(pet, inside, region_labels(AD_PATTERN_REGIONS)),
        "frontal": mean_in_labels(pet, inside, region_labels(FRONTAL_REGIONS)),
    }


def per_decade(x, y) -> float:
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0] * 10)


def true_age_slopes(data: Path, subject_ids: list[str], labels: np.ndarray) -> dict[str, list[float]]:
    """Slope of the simulator's noise-free PET (SUVR, model grid) when only chronological age changes."""
    from dataclasses import replace

    from mri2pet_cli.preprocess import to_suvr
    from mri2pet_cli.resample import resample
    from mri2pet_cli.simulate import SIM_GRID, draw_subject, render_subject

    seed = json.loads((data / "dataset_description.json").read_text())["mri2pet_simulation"]["seed"]
    grid = default_grid()
    slopes: dict[str, list[float]] = {"ad_pattern": [], "frontal": []}
    for subject_id in subject_ids:
        subject = draw_subject(seed, int(subject_id.split("-")[1]) - 1)
        means = []
        for age in AGES:
            volumes = render_subject(replace(subject, age=age))
            pet = resample(volumes.pet_mni, SIM_GRID.affine, grid.shape, grid.affine, order=1, antialias=True)
            brain = resample(volumes.brain.astype(np.float32), SIM_GRID.affine, grid.shape, grid.affine) > 0.5
            suvr, _ = to_suvr(pet, grid, brain)
            means.append(region_means(suvr, brain, labels))
        for region in slopes:
            slopes[region].append(per_decade(AGES, [m[region] for m in means]))
    return slopes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--max-subjects", type=int, default=25)
    parser.add_argument("--truth-subjects", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)

    model, card, _ = load_model("dual-glow", args.weights)
    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    split = card["training_data"]["split"]
    test = load_arrays([by_id[s] for s in split["test"] if s in by_id][: args.max_subjects])
    everyone = load_arrays(records)
    labels = template_maps(default_grid()).aal if test.t1.shape[1:] == default_grid().shape else None
    out: dict = {"n_test": len(test.ids)}

    if labels is not None:
        synthetic = {region: [] for region in ("ad_pattern", "frontal")}
        for i in range(len(test.ids)):
            means = []
            for age in AGES:
                pet, _ = predict(model, test.t1[i : i + 1], test.mask[i : i + 1], np.array([age], np.float32))
                means.append(region_means(pet[0], test.mask[i], labels))
            for region in synthetic:
                synthetic[region].append(per_decade(AGES, [m[region] for m in means]))
        truth = [region_means(everyone.pet[i], everyone.mask[i], labels) for i in range(len(everyone.ids))]
        known = np.isfinite(everyone.age)
        truth_within = true_age_slopes(args.data, test.ids[: args.truth_subjects], labels)
        out["age_slope_suvr_per_decade"] = {
            region: {
                "synthetic_within_subject_mean": float(np.mean(synthetic[region])),
                "synthetic_within_subject_sd": float(np.std(synthetic[region])),
                "truth_within_subject_mean": float(np.mean(truth_within[region])),
                "truth_within_subject_sd": float(np.std(truth_within[region])),
                "truth_subjects": len(truth_within[region]),
                "truth_across_subjects": per_decade(
                    everyone.age[known], [t[region] for t, k in zip(truth, known) if k]
                ),
            }
            for region in synthetic
        }

    correlations, timing = [], {}
    for samples in (1, 8):
        start = time.perf_counter()
        mean, std = predict(model, test.t1[:3], test.mask[:3], test.age[:3], samples=samples, temperature=0.7)
        timing[samples] = (time.perf_counter() - start) / 3
        if std is not None:
            for i in range(len(mean)):
                m = test.mask[i] > 0
                correlations.append(float(np.corrcoef(std[i][m], np.abs(mean[i] - test.pet[i])[m])[0, 1]))
    out["uncertainty_error_correlation"] = {"mean": float(np.mean(correlations)), "per_subject": correlations}
    out["model_seconds_per_subject_cpu"] = {f"samples_{k}": v for k, v in timing.items()}

    with torch.no_grad():
        torch.manual_seed(0)
        bpd, pooled = [], []
        for i in range(len(everyone.ids)):
            t1 = torch.from_numpy(everyone.t1[i : i + 1, None] * everyone.mask[i : i + 1, None])
            pet = torch.from_numpy(everyone.pet[i : i + 1, None] * everyone.mask[i : i + 1, None])
            age = torch.from_numpy(everyone.age[i : i + 1])
            result = model.log_likelihoods(t1, pet, age, dequantize=True)
            if everyone.ids[i] in test.ids:
                bpd.append(float(model.bits_per_dim(result["log_p"], t1[0].numel())))
            levels = [z.mean(dim=(2, 3, 4))[0].numpy() for z in result["z_m"]] + [
                result["z_p"][-1].mean(dim=(2, 3, 4))[0].numpy()
            ]
            pooled.append(levels)
    out["test_bits_per_dim"] = float(np.mean(bpd))
    known = np.isfinite(everyone.age)
    names = [f"t1_level_{i + 1}" for i in range(len(pooled[0]) - 1)] + ["pet_top_level"]
    out["age_r2_by_latent_level"] = {}
    for j, name in enumerate(names):
        x = np.stack([p[j] for p, k in zip(pooled, known) if k])
        score = cross_val_score(RidgeCV(alphas=np.logspace(-3, 3, 13)), x, everyone.age[known], cv=5, scoring="r2")
        out["age_r2_by_latent_level"][name] = float(score.mean())

    print(json.dumps(out, indent=2))
    target = Path("benchmarks/out/dualglow_figures.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
