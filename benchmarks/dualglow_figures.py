"""DUAL-GLOW figures (issue 5) on the test split recorded in its model card.

    python benchmarks/dualglow_figures.py --data runs/cohort200 [--weights weights/dual-glow.pt]

Prints and writes benchmarks/out/dualglow_figures.{json,png} (and, with --card, into the model card):
- age effect: per test subject, the slope (SUVR per decade) of synthetic PET against the age given
  (60, 70, 80, 90; T1 fixed), in the AD-pattern and frontal regions, against two simulator truths for the
  first --truth-subjects test subjects (about 5 s per rendering): "metabolic" re-renders the same subject
  with only the chronological age changed (anatomy and brain age fixed: the T1 stays as it is), "aged"
  moves the brain age with it (the atrophy of those years too); and the slope across the data set;
- uncertainty: correlation between the voxel-wise std of 8 samples (T = 1) and the absolute error of the
  point estimate (T = 0), and how often the error lies inside the 90 % interval (+- 1.645 std);
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

from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.reporting.uncertainty import interval_coverage
from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, mean_in_labels, region_labels, template_maps
from mri2pet_cli.space.grid import default_grid

AGES = (60.0, 70.0, 80.0, 90.0)
REGIONS = ("ad_pattern", "frontal", "pcc_precuneus", "hippocampus")  # the DUAL-GLOW issue's three + AD pattern
CURVE_STYLES = (
    ("synthetic", "tab:blue", "DUAL-GLOW (T1 fixed, age varied)"),
    ("metabolic", "tab:orange", "truth: age only (T1 unchanged)"),
    ("aged", "tab:green", "truth: age and atrophy"),
)


def region_means(pet: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    inside = labels * (mask > 0)
    return {
        "ad_pattern": mean_in_labels(pet, inside, region_labels(AD_PATTERN_REGIONS)),
        "frontal": mean_in_labels(pet, inside, region_labels(FRONTAL_REGIONS)),
        "pcc_precuneus": mean_in_labels(pet, inside, region_labels(("Cingulum_Post", "Precuneus"))),
        "hippocampus": mean_in_labels(pet, inside, region_labels("Hippocampus")),
    }


def per_decade(x, y) -> float:
    return float(np.polyfit(np.asarray(x), np.asarray(y), 1)[0] * 10)


def curve_slopes(curves: list[list[float]]) -> list[float]:
    """SUVR per decade of each subject's curve over AGES."""
    return [per_decade(AGES, curve) for curve in curves]


def synthetic_age_curves(model, arrays, labels: np.ndarray) -> dict[str, list[list[float]]]:
    """Each subject's regional SUVR at AGES with its T1 fixed (its own age as the scan age where the model
    takes one), one curve per subject and region."""
    curves: dict[str, list[list[float]]] = {region: [] for region in REGIONS}
    for i in range(len(arrays.ids)):
        scan = arrays.age[i : i + 1] if model.supports_scan_age() and np.isfinite(arrays.age[i]) else None
        means = []
        for age in AGES:
            pet, _ = predict(
                model, arrays.t1[i : i + 1], arrays.mask[i : i + 1], np.array([age], np.float32), scan_age=scan
            )
            means.append(region_means(pet[0], arrays.mask[i], labels))
        for region in curves:
            curves[region].append([m[region] for m in means])
    return curves


def true_age_curves(
    data: Path, subject_ids: list[str], labels: np.ndarray, *, brain_ages: bool
) -> dict[str, list[list[float]]]:
    """Regional SUVR of the simulator's noise-free PET (model grid) at each of AGES.

    ``brain_ages``: the brain age (atrophy) moves with the age; otherwise only the chronological age changes.
    The files `simulate --truth-ages` writes are read where they exist; the rest is rendered and stored there.
    """
    from mri2pet_cli.simulation.counterfactual import counterfactual_suvr

    grid = default_grid()
    curves: dict[str, list[list[float]]] = {region: [] for region in REGIONS}
    for subject_id in subject_ids:
        suvrs = [counterfactual_suvr(data, subject_id, age, grid, aged=brain_ages) for age in AGES]
        means = [region_means(suvr, brain, labels) for suvr, brain in suvrs]
        for region in curves:
            curves[region].append([m[region] for m in means])
    return curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", type=Path, default=None)
    parser.add_argument("--max-subjects", type=int, default=25)
    parser.add_argument("--truth-subjects", type=int, default=25, help="as many as the model is scored on")
    parser.add_argument("--card", type=Path, default=None, help="write the figures into this model card")
    parser.add_argument(
        "--heldout",
        action="store_true",
        help="DATA is a cohort the model never saw (another simulator seed): score its first --max-subjects "
        "subjects instead of the card's test split",
    )
    args = parser.parse_args()
    torch.set_num_threads(2)

    model, card, _ = load_model("dual-glow", args.weights)
    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    if args.heldout:
        seed = json.loads((args.data / "dataset_description.json").read_text())["mri2pet_simulation"]["seed"]
        if seed == card["training_data"]["simulation"]["seed"]:
            raise SystemExit(f"{args.data}: simulated with the training cohort's seed {seed}, not held out")
        chosen = sorted(by_id)
    else:
        chosen = [s for s in card["training_data"]["split"]["test"] if s in by_id]
    test = load_arrays([by_id[s] for s in chosen][: args.max_subjects])
    everyone = load_arrays(records)
    labels = template_maps(default_grid()).aal if test.t1.shape[1:] == default_grid().shape else None
    out: dict = {"n_test": len(test.ids), "subjects": "held-out cohort" if args.heldout else "test split"}
    curves: dict = {"synthetic": {region: [] for region in REGIONS}, "metabolic": {}, "aged": {}}

    if labels is not None:
        # weights with a measured age-only effect: the subject's own age as the scan age (--scan-age)
        out["synthetic_series"] = (
            "T1 at the subject's age, age-only change"
            if model.supports_scan_age()
            else ("each age taken as the age at the scan")
        )
        synthetic = curves["synthetic"] = synthetic_age_curves(model, test, labels)
        truth = [region_means(everyone.pet[i], everyone.mask[i], labels) for i in range(len(everyone.ids))]
        known = np.isfinite(everyone.age)
        truth_ids = test.ids[: args.truth_subjects]
        for kind in ("metabolic", "aged"):
            curves[kind] = true_age_curves(args.data, truth_ids, labels, brain_ages=kind == "aged")
        out["age_slope_suvr_per_decade"] = {
            region: {
                "synthetic_within_subject_mean": float(np.mean(curve_slopes(synthetic[region]))),
                "synthetic_within_subject_sd": float(np.std(curve_slopes(synthetic[region]))),
                **{
                    f"truth_{kind}_{stat.__name__}": float(stat(curve_slopes(curves[kind][region])))
                    for kind in ("metabolic", "aged")
                    for stat in (np.mean, np.std)
                },
                "truth_subjects": len(curves["metabolic"][region]),
                "truth_across_subjects": per_decade(
                    everyone.age[known], [t[region] for t, k in zip(truth, known) if k]
                ),
            }
            for region in synthetic
        }

    for row in out.get("age_slope_suvr_per_decade", {}).values():  # the target: +-30 % of age-only truth
        model_slope, true_slope = row["synthetic_within_subject_mean"], row["truth_metabolic_mean"]
        row["ratio_to_age_only_truth"] = model_slope / true_slope if true_slope else None
        row["within_30pct_of_age_only_truth"] = bool(true_slope) and abs(model_slope - true_slope) <= 0.3 * abs(
            true_slope
        )

    timing = {}
    for samples in (1, 8):
        start = time.perf_counter()
        predict(model, test.t1[:3], test.mask[:3], test.age[:3], samples=samples, temperature=1.0)
        timing[samples] = (time.perf_counter() - start) / 3
    out["model_seconds_per_subject_cpu"] = {f"samples_{k}": v for k, v in timing.items()}
    mean, std = predict(model, test.t1, test.mask, test.age, samples=8, temperature=1.0)
    correlations, std_voxels, error_voxels, covered = [], [], [], []
    for i in range(len(mean)):
        m = test.mask[i] > 0
        error = np.abs(mean[i] - test.pet[i])[m]
        covered.append(interval_coverage(error, std[i][m]))  # raw std, a Gaussian 90 % interval
        correlations.append(float(np.corrcoef(std[i][m], error)[0, 1]))
        std_voxels.append(std[i][m])
        error_voxels.append(error)
    out["uncertainty_error_correlation"] = {
        "samples": 8,
        "temperature": 1.0,
        "mean": float(np.mean(correlations)),
        "min": float(np.min(correlations)),
        "per_subject": correlations,
    }
    out["interval_90_coverage"] = {
        "interval": "point estimate (T = 0) +- 1.645 x std of 8 samples at T = 1, voxels in the brain mask",
        "mean": float(np.mean(covered)),
        "per_subject": covered,
    }
    out["uncertainty_error_by_std_decile"] = std_deciles(np.concatenate(std_voxels), np.concatenate(error_voxels))

    with torch.no_grad():
        torch.manual_seed(0)
        bpd, pooled, whole = [], [], []
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
            # what the top prior reads, voxel by voxel: the lower T1 latents z'_m and the T1 context
            whole.append(
                [
                    torch.cat([z.flatten() for z in result["z_m"][:-1]]).numpy(),
                    result["context"].float().flatten().numpy(),
                ]
            )
    out["test_bits_per_dim"] = float(np.mean(bpd))
    known = np.isfinite(everyone.age)
    names = [f"t1_level_{i + 1}" for i in range(len(pooled[0]) - 1)] + ["pet_top_level"]
    out["age_r2_by_latent_level"] = {
        name: age_r2([p[j] for p, k in zip(pooled, known) if k], everyone.age[known]) for j, name in enumerate(names)
    }
    out["age_r2_what_the_top_prior_reads"] = {
        name: age_r2([w[j] for w, k in zip(whole, known) if k], everyone.age[known])
        for j, name in enumerate(("lower_t1_latents_all_voxels", "t1_context_all_voxels"))
    }

    print(json.dumps(out, indent=2))
    target = Path("benchmarks/out/dualglow_figures.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(out, indent=2))
    plot(out, curves, target.with_suffix(".png"))
    if args.card:
        card = json.loads(args.card.read_text())
        card["figures"] = {"command": "python benchmarks/dualglow_figures.py --data DATA --card CARD", **out}
        # the sha256 in the card is the weights', not the card's, so the card may take the figures
        write_text_atomic(json.dumps(card, indent=2), args.card, overwrite=True)


def age_r2(features: list[np.ndarray], age: np.ndarray) -> float:
    """Cross-validated R^2 (5 folds) of a ridge regression from the features to age."""
    ridge = RidgeCV(alphas=np.logspace(-3, 5, 17))
    return float(cross_val_score(ridge, np.stack(features), age, cv=5, scoring="r2").mean())


def std_deciles(std: np.ndarray, error: np.ndarray) -> list[dict[str, float]]:
    """Mean absolute error within each decile of the std map: does a larger std flag a larger error?"""
    edges = np.quantile(std, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(edges, std, side="right") - 1, 0, 9)
    return [
        {"std_mean": float(std[which == d].mean()), "abs_error_mean": float(error[which == d].mean())}
        for d in range(10)
    ]


def plot(out: dict, curves: dict, path: Path) -> None:
    from mri2pet_cli.reporting.figures import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(REGIONS) + 1, figsize=(4.6 * (len(REGIONS) + 1), 4))
    for ax, region in zip(axes[:-1], REGIONS):
        for kind, colour, label in CURVE_STYLES:
            rows = np.asarray(curves[kind].get(region, []))
            if rows.size == 0:
                continue
            change = rows - rows[:, [1]]  # change from each subject's value at 70
            ax.plot(AGES, change.T, color=colour, alpha=0.15, lw=0.8)
            ax.plot(AGES, change.mean(axis=0), color=colour, lw=2.5, label=f"{label}, n={len(rows)}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(title=f"{region.replace('_', ' ')} SUVR change from age 70", xlabel="age given (years)")
        ax.legend(fontsize=7)
    deciles = out["uncertainty_error_by_std_decile"]
    axes[-1].plot([d["std_mean"] for d in deciles], [d["abs_error_mean"] for d in deciles], "o-")
    corr = out["uncertainty_error_correlation"]["mean"]
    axes[-1].set(
        title=f"std map vs |error| (deciles; voxel r = {corr:.2f})",
        xlabel="voxel std of 8 samples (SUVR)",
        ylabel="mean |error| (SUVR)",
    )
    save_figure(fig, path)


if __name__ == "__main__":
    main()
