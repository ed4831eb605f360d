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
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.simulation.counterfactual import truth_subject
from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, region_labels, template_maps
from mri2pet_cli.space.grid import default_grid

REGIONS = {"frontal": FRONTAL_REGIONS, "ad_pattern": AD_PATTERN_REGIONS}


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
    args = parser.parse_args()
    torch.set_num_threads(2)

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
