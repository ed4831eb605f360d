"""Can paired (T1, PET, age) data give the age-only effect? (issue 17; docs/models.md, DUAL-GLOW v4)

    python benchmarks/age_identifiability.py --data runs/cohort-v2 [--split runs/unet-v2/split.json]

On a simulated cohort (the simulator's hidden brain age and severity are in its truth files):
1. how well the T1 predicts age and brain age: cross-validated R^2 (10 folds, all subjects) of a ridge
   regression on the 116 regional grey-matter fractions (the study's "MRI only" features);
2. on the training split, the residual of the shipped `unet` (PET - unet(T1)) in the frontal and
   AD-pattern regions, regressed on age alone, on age adjusted for what the T1 gives (the
   cross-validated predicted age; the region's own grey-matter fraction), and on age adjusted for the
   hidden brain age and severity (the oracle). Only the oracle recovers the age-only slope.
Writes benchmarks/results/age_identifiability.json.

    python benchmarks/age_identifiability.py --part reference --data runs/cohort-v3 \
        --split benchmarks/splits/v3_n200_seed0.json

3. (issue 36) the pairs-only reference estimator (`mri2pet_cli.models.age_effect`: tissue maps segmented
   from each training T1, a stated PSF, a partial-volume (GTM) fit of each compartment's uptake, regressed on
   age with diagnosis covariates) against the age-only truth of the held-out (test) subjects, the
   counterfactual renderings at 60 and 90 (truth is read only here, to measure). Beside it: the naive slope
   (regional SUVR on age and diagnosis), the same GTM fit with the noise-free simulated T1's tissue and each
   subject's true PSF ("known maps"), and the oracle (regional SUVR on age, adjusted for the hidden brain age
   and severity). Writes benchmarks/results/age_identifiability_v3.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mri2pet_cli.evaluation.features import grey_matter_features, region_order
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.age_effect import DEFAULT_PET_FWHM_MM
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.simulation.counterfactual import truth_subject
from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, region_labels, template_maps
from mri2pet_cli.space.grid import default_grid

REGIONS = {"frontal": FRONTAL_REGIONS, "ad_pattern": AD_PATTERN_REGIONS}
TARGET_REGIONS = {  # the DUAL-GLOW issue's three slopes
    "frontal": FRONTAL_REGIONS,
    "posterior cingulate + precuneus": ("Cingulum_Post", "Precuneus"),
    "hippocampus": ("Hippocampus",),
}
TRUTH_AGES = (60.0, 90.0)
WITHIN = 0.30  # the issue's +-30 % of the truth
BOOTSTRAP = 200


def regional(volume: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {
        name: float(volume[np.isin(labels, region_labels(prefixes)) & (mask > 0)].mean())
        for name, prefixes in TARGET_REGIONS.items()
    }


def linear_age_slope(values: np.ndarray, ages: np.ndarray, covariates: list[np.ndarray]) -> float:
    design = np.column_stack([(ages - 70.0) / 10.0, *covariates]) if covariates else ((ages - 70.0) / 10.0)[:, None]
    return float(LinearRegression().fit(design, values).coef_[0])


def pairs_only_reference(data: Path, split: dict, fwhms: list[float]) -> dict:
    """Slopes per decade (SUVR and % of the subject's regional SUVR) of each estimator against the held-out
    subjects' age-only truth."""
    import nibabel as nib

    from mri2pet_cli.models.age_effect import blur, compartments, fit_pairs_age_effect, subject_uptakes
    from mri2pet_cli.simulation.cohort import subject_paths
    from mri2pet_cli.simulation.counterfactual import counterfactual_suvr
    from mri2pet_cli.simulation.population import atrophy_severity

    grid = default_grid()
    labels = template_maps(grid).aal
    records, _ = prepare_dataset(data)
    by_id = {r.subject_id: r for r in records}
    train_ids, test_ids = split["train"], split["test"]
    train = load_arrays([by_id[s] for s in train_ids])
    test = load_arrays([by_id[s] for s in test_ids])
    dx = [by_id[s].diagnosis for s in train_ids]
    dummies = [np.array([d == level for d in dx], dtype=float) for level in sorted(set(dx))[1:]]

    # truth: each held-out subject's regional SUVR at 60 and 90 with its anatomy fixed (measuring only)
    truth, observed = [], []
    for i, sid in enumerate(test_ids):
        at = [regional(counterfactual_suvr(data, sid, age, grid)[0], test.mask[i], labels) for age in TRUTH_AGES]
        truth.append({k: (at[1][k] - at[0][k]) / ((TRUTH_AGES[1] - TRUTH_AGES[0]) / 10.0) for k in at[0]})
        observed.append(regional(test.pet[i], test.mask[i], labels))
        print(f"truth {i + 1}/{len(test_ids)}", flush=True)

    estimates: dict[str, list[dict[str, float]]] = {}
    spread: dict[str, dict[str, float]] = {}  # bootstrap SD over training subjects of each mean slope
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, len(train_ids), len(train_ids)) for _ in range(BOOTSTRAP)]
    observed_train = np.array([[o[k] for k in TARGET_REGIONS] for o in (
        regional(train.pet[i], train.mask[i], labels) for i in range(len(train_ids))
    )])  # fmt: skip
    hidden = [truth_subject(data, s) for s in train_ids]
    adjust = [np.array([h.brain_age for h in hidden]) / 10.0, np.array([h.severity for h in hidden])]
    adjust.append(np.array([atrophy_severity(h) for h in hidden]))  # v3 draws the anatomy's severity apart
    dx_columns = np.column_stack(dummies) if dummies else np.zeros((len(train_ids), 0))
    for name, covariates in (
        ("naive: regional SUVR on age + diagnosis", dx_columns),
        ("oracle: regional SUVR on age + hidden brain age and severities", np.column_stack([dx_columns, *adjust])),
    ):

        def fit(rows: np.ndarray, covariates=covariates) -> np.ndarray:
            design = np.column_stack([(train.age[rows] - 70.0) / 10.0, covariates[rows]])
            return LinearRegression().fit(design, observed_train[rows]).coef_[:, 0]

        slopes = fit(np.arange(len(train_ids)))
        estimates[name] = [dict(zip(TARGET_REGIONS, slopes))] * len(test_ids)
        boot = np.array([fit(rows) for rows in draws])
        spread[name] = dict(zip(TARGET_REGIONS, boot.std(axis=0, ddof=1)))

    def regional_weights(fwhm: float) -> np.ndarray:
        """(test subjects, regions, compartments): each region's mean of each blurred compartment of the
        subject's own segmented T1; the per-decade map is linear in the slopes, so its regional mean is
        this times the slopes."""
        out = []
        for i in range(len(test_ids)):
            blurred = blur(compartments(test.t1[i], test.mask[i], labels), fwhm, grid.spacing)
            inside = [np.isin(labels, region_labels(p)) & (test.mask[i] > 0) for p in TARGET_REGIONS.values()]
            out.append(np.array([[float(b[r].mean()) for b in blurred] for r in inside]))
        return np.stack(out)

    weights_by_fwhm: dict[float, np.ndarray] = {}

    def gtm_estimate(name: str, t1s, fwhm_of, pairs: np.ndarray | None = None) -> None:
        use = np.arange(len(train_ids)) if pairs is None else pairs
        uptakes = np.stack([
            subject_uptakes(t1s[i], train.pet[i], train.mask[i], labels, fwhm_of(i), grid.spacing) for i in use
        ])  # fmt: skip
        fwhm = fwhm_of(0)
        if fwhm not in weights_by_fwhm:
            weights_by_fwhm[fwhm] = regional_weights(fwhm)
        weights = weights_by_fwhm[fwhm]

        def fit(rows: np.ndarray) -> np.ndarray:
            return fit_pairs_age_effect(
                uptakes[rows], train.age[use][rows], [dx[use[r]] for r in rows], fwhm
            ).slope_per_decade

        per_subject = weights @ fit(np.arange(len(use)))  # (test subjects, regions)
        estimates[name] = [dict(zip(TARGET_REGIONS, row)) for row in per_subject]
        boot = np.array([(weights @ fit(rng.integers(0, len(use), len(use)))).mean(axis=0) for _ in range(BOOTSTRAP)])
        spread[name] = dict(zip(TARGET_REGIONS, boot.std(axis=0, ddof=1)))
        print(f"done: {name}", flush=True)

    for fwhm in fwhms:
        gtm_estimate(f"pairs only: GTM, T1 segmented, stated PSF {fwhm:g} mm", train.t1, lambda i, f=fwhm: f)
    # what a lab's fine-tuning on 40 pairs re-learns (DUAL-GLOW v6 refits its age path on the run's pairs)
    forty = np.sort(np.random.default_rng(0).choice(len(train_ids), size=min(40, len(train_ids)), replace=False))
    gtm_estimate(
        f"pairs only, 40 pairs: GTM, T1 segmented, stated PSF {fwhms[0]:g} mm", train.t1, lambda i: fwhms[0], forty
    )
    truth_t1 = [nib.load(str(subject_paths(data, s)["truth_t1"])).get_fdata(dtype=np.float32) for s in train_ids]
    psf = [h.psf_fwhm_mm for h in hidden]
    gtm_estimate("known maps: GTM, noise-free simulated T1, true PSF", truth_t1, lambda i: psf[i])

    def summary(per_subject: list[dict[str, float]]) -> dict:
        out = {}
        for k in TARGET_REGIONS:
            slope = np.array([s[k] for s in per_subject])
            pct = np.array([s[k] / o[k] * 100.0 for s, o in zip(per_subject, observed)])
            out[k] = {"suvr_per_decade": round(float(slope.mean()), 4), "pct_per_decade": round(float(pct.mean()), 2)}
        return out

    result = {
        "n_train_pairs": len(train_ids),
        "n_test_subjects": len(test_ids),
        "bootstrap": f"{BOOTSTRAP} resamples of the training pairs: SD of each estimator's mean slope",
        "truth": summary(truth),
    }
    for k in TARGET_REGIONS:  # how much the truth itself varies between subjects
        result["truth"][k]["sd_between_subjects"] = round(float(np.std([t[k] for t in truth], ddof=1)), 4)
    for name, per_subject in estimates.items():
        rows = summary(per_subject)
        for k, row in rows.items():
            true = result["truth"][k]["suvr_per_decade"]
            row["bootstrap_sd"] = round(float(spread[name][k]), 4)
            row["ratio_to_truth"] = round(row["suvr_per_decade"] / true, 2) if true else None
            row["within_30pct"] = bool(true) and abs(row["suvr_per_decade"] - true) <= WITHIN * abs(true)
        result[name] = rows
    return result


def ridge_age_model():
    # regions outside a mask (NaN) take the training folds' mean
    return make_pipeline(SimpleImputer(), StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 40)))


def cv_r2(features: np.ndarray, target: np.ndarray) -> float:
    predicted = cross_val_predict(ridge_age_model(), features, target, cv=10)
    return float(1 - np.mean((predicted - target) ** 2) / target.var())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", type=Path, default=Path("runs/unet-v2/split.json"))
    parser.add_argument("--part", choices=("identifiability", "reference"), default="identifiability")
    parser.add_argument("--fwhm", type=float, nargs="+", default=[DEFAULT_PET_FWHM_MM, 6.0], help="stated PSFs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.part == "reference":
        out = pairs_only_reference(args.data, json.loads(args.split.read_text()), args.fwhm)
        print(json.dumps(out, indent=2))
        target = Path(__file__).parent / "results" / "age_identifiability_v3.json"
        write_text_atomic(json.dumps(out, indent=2) + "\n", target, overwrite=True)
        return

    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    split = json.loads(args.split.read_text())
    ids = split["train"] + split["validation"] + split["test"]
    arrays = load_arrays([by_id[s] for s in ids])
    labels = template_maps(default_grid()).aal
    grey = np.stack([grey_matter_features(arrays.t1[i], arrays.mask[i], labels) for i in range(len(ids))])
    subjects = [truth_subject(args.data, s) for s in ids]
    brain_age = np.array([s.brain_age for s in subjects])
    severity = np.array([s.severity for s in subjects])
    out: dict = {
        "n_subjects": len(ids),
        "t1_predicts_age_cv_r2": cv_r2(grey, arrays.age),
        "t1_predicts_brain_age_cv_r2": cv_r2(grey, brain_age),
        "brain_age_explains_age_r2": float(np.corrcoef(brain_age, arrays.age)[0, 1] ** 2),
    }

    train = slice(0, len(split["train"]))
    unet, _, _ = load_model("unet")
    predicted_pet, _ = predict(unet, arrays.t1[train], arrays.mask[train])
    residual = (arrays.pet[train] - predicted_pet) * arrays.mask[train]
    decades = (arrays.age[train] - 70.0) / 10.0
    predicted_age = cross_val_predict(ridge_age_model(), grey[train], arrays.age[train], cv=10)
    order = np.array(region_order())
    slopes = {}
    for name, regions in REGIONS.items():
        inside = np.isin(labels, region_labels(regions))
        r = np.array([residual[i][inside & (arrays.mask[i] > 0)].mean() for i in range(len(decades))])
        local_grey = np.nanmean(grey[train][:, np.isin(order, region_labels(regions))], axis=1)

        def age_coefficient(*covariates: np.ndarray, r=r) -> float:
            return float(LinearRegression().fit(np.column_stack([decades, *covariates]), r).coef_[0])

        slopes[name] = {
            "age_alone": age_coefficient(),
            "adjusted_for_t1_predicted_age": age_coefficient(predicted_age / 10.0),
            "adjusted_for_regional_grey_matter": age_coefficient(local_grey),
            "adjusted_for_hidden_brain_age_and_severity": age_coefficient(brain_age[train] / 10.0, severity[train]),
        }
    out["unet_residual_slope_per_decade_train"] = slopes
    print(json.dumps(out, indent=2))
    target = Path(__file__).parent / "results" / "age_identifiability.json"
    write_text_atomic(json.dumps(out, indent=2) + "\n", target, overwrite=True)


if __name__ == "__main__":
    main()
