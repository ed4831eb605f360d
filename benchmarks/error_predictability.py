"""How far can any T1-conditioned uncertainty track a model's regional error? (issue 36, item 4)

    python benchmarks/error_predictability.py --data runs/cohort-v3 [--model unet] [--weights FILE]
        [--split benchmarks/splits/v3_n200_seed0.json]

A model that sees only the T1 and the age can make its std larger only where the T1 and age tell that its
error will be larger. This benchmark measures the ceiling of that: on every subject of the cohort it takes
the model's regional |error| (each AAL region's mean synthetic SUVR against the real one; with ``--split``,
only the subjects outside its training part) and predicts it,
out of fold (5 folds over subjects), from what the model could see: the T1's regional grey-matter and CSF
posteriors and the age (ridge regression, and gradient-boosted trees on the same features; one per
region). Scored as the DUAL-GLOW issue scores a std:

- within regions across subjects: each region's predicted and actual |error| centred on their means over
  subjects, pooled, then correlated (a fixed width per region scores 0);
- pooled over regions (no centring): what a fixed per-region width already gets.

Also the same with the real PET's own regional z against CN (how unusual the subject's metabolism is: known
only with the PET, i.e. the information a T1 model lacks), as an upper reference.
Writes benchmarks/results/error_predictability.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mri2pet_cli.evaluation.cache import cache_root, cached_predict
from mri2pet_cli.evaluation.features import t1_tissue_features
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.reporting.uncertainty import within_region_correlation
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid
from mri2pet_cli.space.tissue import region_order, regional_values

FOLDS = 5


def within_and_pooled(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """(subjects x regions): correlation after centring each region over subjects, and without centring."""
    ok = np.isfinite(predicted) & np.isfinite(actual)
    return {
        "within_regions_across_subjects_r": within_region_correlation(predicted, actual),
        "pooled_over_regions_r": float(np.corrcoef(predicted[ok], actual[ok])[0, 1]),
    }


def out_of_fold(features: np.ndarray, target: np.ndarray, learner: str) -> np.ndarray:
    """Each region's |error| predicted out of fold from the features, one regressor per region."""
    folds = KFold(FOLDS, shuffle=True, random_state=0)
    out = np.full(target.shape, np.nan)
    for r in range(target.shape[1]):
        keep = np.isfinite(target[:, r])
        if keep.sum() < 2 * FOLDS:
            continue
        if learner == "ridge":
            model = make_pipeline(SimpleImputer(), StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 25)))
        else:
            model = HistGradientBoostingRegressor(max_depth=3, max_iter=100, learning_rate=0.05, random_state=0)
        out[keep, r] = cross_val_predict(model, features[keep], target[keep, r], cv=folds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--model", default="unet")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--split", type=Path, default=None, help="leave out its training subjects")
    args = parser.parse_args()
    torch.set_num_threads(2)

    records, _ = prepare_dataset(args.data)
    if args.split:
        trained_on = set(json.loads(args.split.read_text())["train"])
        records = [r for r in records if r.subject_id not in trained_on]
    model, card, _ = load_model(args.model, args.weights)
    labels = template_maps(default_grid()).aal
    actual_error, features, real_values, diagnoses = [], [], [], []
    for start in range(0, len(records), 8):
        chunk = records[start : start + 8]
        arrays = load_arrays(chunk)
        predicted = cached_predict(model, card, arrays, cache_root(chunk[0].preproc_dir))
        for i in range(len(chunk)):
            mask = arrays.mask[i]
            real = regional_values(arrays.pet[i], labels, mask)
            synthetic = regional_values(predicted[i], labels, mask)
            actual_error.append(np.abs(synthetic - real))
            real_values.append(real)
            features.append(np.concatenate([t1_tissue_features(arrays.t1[i], mask, labels), [arrays.age[i]]]))
            diagnoses.append(chunk[i].diagnosis)
        print(f"{start + len(chunk)}/{len(records)}", flush=True)
    error, x, real = np.array(actual_error), np.array(features), np.array(real_values)
    cn = np.array([d == "CN" for d in diagnoses])
    z = np.abs((real - np.nanmean(real[cn], axis=0)) / np.nanstd(real[cn], axis=0))

    out = {
        "model": args.model,
        "weights_sha256": card["sha256"],
        "n_subjects": len(records),
        "subjects": "outside the split's training part" if args.split else "all of the cohort",
        "n_regions": len(region_order()),
        "features": "T1 regional grey-matter and CSF posteriors (232) + age",
        "regional_mae_mean": float(np.nanmean(error)),
    }
    for learner in ("ridge", "gradient boosting"):
        out[f"t1_and_age_{learner.replace(' ', '_')}"] = within_and_pooled(out_of_fold(x, error, learner), error)
    out["reference_pet_z_abs"] = within_and_pooled(z, error)
    print(json.dumps(out, indent=2))
    target = Path(__file__).parent / "results" / "error_predictability.json"
    write_text_atomic(json.dumps(out, indent=2) + "\n", target, overwrite=True)


if __name__ == "__main__":
    main()
