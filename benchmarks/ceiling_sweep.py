"""How the simulator's T1 ceiling would move with another atrophy lag and scatter, on cohorts already rendered.

    python benchmarks/ceiling_sweep.py runs/study-v3-clean runs/ceiling-seed2 runs/ceiling-seed3-lag75 \
        --lags 0.55,0.6,0.65,0.7,0.75 --scatters 0.12,0.15 --out benchmarks/results/ceiling_sweep_3seeds.json

Version 3 draws each subject's atrophy severity as ``clip(LAG x metabolic + SCATTER x z, 0, 1)``
(population.py; ``z`` from the subject's own stream). Re-rendering a cohort for every candidate pair costs
an hour a pair, so this is a first-order surrogate: each noise-free feature of step 1 of
`t1_ceiling_steps.py` (33-row T1 grey matter and CSF, and the PET's regional SUVR) is regressed over the
cohort's CN and AD subjects on age, brain age, atrophy and metabolic severity; a candidate pair redraws
each subject's atrophy from the same ``z`` and moves the features by the fitted atrophy slopes (residuals
kept). The gap is then scored as the ceiling is (logistic regression on features + age, 2 x 5-fold,
paired bootstrap). At the shipped pair the surrogate returns the measured images' gap exactly.

It chooses nothing by itself: a pair it suggests must be re-rendered on a seed it did not see and measured
with `t1_ceiling_steps.py` before the simulator takes it. Simulator truth is read for measuring only.
Writes benchmarks/results/ceiling_sweep.json; features are cached beside each cohort (ceiling_features.npz).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mri2pet_cli.evaluation.classification import normalise_diagnosis
from mri2pet_cli.evaluation.features import t1_large_region_features
from mri2pet_cli.evaluation.label_efficiency import T1_RIVALS, curves
from mri2pet_cli.preprocessing.inputs import read_participants
from mri2pet_cli.simulation.cohort import subject_paths
from mri2pet_cli.simulation.population import ATROPHY_LAG_BY_VERSION, ATROPHY_SCATTER, DEFAULT_VERSION

RESULTS = Path(__file__).parent / "results"
# columns of each cohort's facts table (one row per subject)
AGE, BRAIN_AGE, ATROPHY, METABOLIC, IS_AD, STREAM = 0, 1, 2, 3, 4, slice(5, 7)


def subject_features(data: Path, subject: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Step 1 of the ceiling (noise-free images, own labels): T1 features, PET features and the truth."""
    from t1_ceiling_steps import load, pet_features  # benchmarks/ is the script's folder

    paths = subject_paths(data, subject)
    mask, own = load(paths["truth_mask"]), load(paths["truth_labels"]).astype(np.int32)
    truth = json.loads(paths["truth_json"].read_text())
    t1_rows = t1_large_region_features(load(paths["truth_t1"]), mask, own)
    return t1_rows, pet_features(load(paths["truth_pet"]), mask, own), truth


def cohort_table(data: Path) -> dict[str, np.ndarray]:
    """Features and truth of the cohort's CN and AD subjects, cached in DATA/ceiling_features.npz."""
    cache = data / "ceiling_features.npz"
    if cache.exists():
        return dict(np.load(cache))
    rows = [r for r in read_participants(data).values() if normalise_diagnosis(r["diagnosis"]) in ("CN", "AD")]
    t1, pet, facts = [], [], []
    for i, row in enumerate(rows):
        t1_rows, pet_rows, truth = subject_features(data, row["participant_id"])
        subject = truth["subject"]
        t1.append(t1_rows)
        pet.append(pet_rows)
        facts.append([
            float(subject["age"]), float(subject["brain_age"]), truth["severities"]["atrophy"],
            truth["severities"]["metabolic"], normalise_diagnosis(subject["diagnosis"]) == "AD",
            *subject["extras"]["stream"],
        ])  # fmt: skip
        print(f"{row['participant_id']} ({i + 1}/{len(rows)})", flush=True)
    facts_array = np.array(facts, dtype=np.float64)
    table = {"t1": np.stack(t1), "pet": np.stack(pet), "facts": facts_array}
    np.savez(cache, **table)
    return table


def rendered_pair(data: Path) -> tuple[float, float]:
    """The lag and scatter the cohort was rendered with: population.py's, unless t1_ceiling_steps.py rendered
    it with another pair (recorded in its dataset_description.json)."""
    simulation = json.loads((data / "dataset_description.json").read_text())["mri2pet_simulation"]
    override = simulation.get("atrophy_override", {})
    return override.get("lag", ATROPHY_LAG_BY_VERSION[simulation["version"]]), override.get("scatter", ATROPHY_SCATTER)


def standard_normal_draws(streams: np.ndarray) -> np.ndarray:
    """Each subject's z of the atrophy draw: the same generator and the same first draw as population.py."""
    z = []
    for seed, index in streams.astype(int):
        disease = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 13]))
        z.append(disease.normal(0.0, 1.0))
    return np.array(z)


def atrophy_slopes(features: np.ndarray, facts: np.ndarray) -> np.ndarray:
    """Each feature's least-squares slope on the atrophy severity, with age, brain age and metabolic
    severity in the model too."""
    design = np.column_stack([np.ones(len(facts)), facts[:, [AGE, BRAIN_AGE, ATROPHY, METABOLIC]]])
    coef, *_ = np.linalg.lstsq(design, features, rcond=None)
    return coef[1 + ATROPHY]


def gap_at(table: dict[str, np.ndarray], lag: float, scatter: float) -> dict:
    """Real-PET AUC, best-rival AUC and their gap (with its 95 % interval) if the cohort had this pair."""
    facts = table["facts"]
    metabolic, atrophy, z = facts[:, METABOLIC], facts[:, ATROPHY], standard_normal_draws(facts[:, STREAM])
    moved = np.clip(lag * metabolic + scatter * z, 0.0, 1.0) - atrophy
    t1 = table["t1"] + np.outer(moved, atrophy_slopes(table["t1"], facts))
    pet = table["pet"] + np.outer(moved, atrophy_slopes(table["pet"], facts))
    y, age = facts[:, IS_AD].astype(int), facts[:, [AGE]]
    rival = T1_RIVALS[2]
    sets = {"real PET": (pet, "logistic"), rival: (np.hstack([t1, age]), "logistic")}
    rows = {row["features"]: row for row in curves(sets, y, sizes=())}
    pet_row, t1_row = rows["real PET"], rows[rival]
    return {
        "real_pet_auc": round(pet_row["auc"], 4),
        "t1_auc": round(t1_row["auc"], 4),
        "gap": [round(pet_row[k], 4) for k in ("difference", "difference_low", "difference_high")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cohorts", type=Path, nargs="+", help="clean v3 or v4 cohorts written by `mri2pet simulate`")
    parser.add_argument("--lags", default="0.55,0.65,0.75")
    parser.add_argument("--scatters", default="0.08,0.10,0.12,0.15")
    parser.add_argument("--out", type=Path, default=RESULTS / "ceiling_sweep.json")
    args = parser.parse_args()
    lags = [float(v) for v in args.lags.split(",")]
    scatters = [float(v) for v in args.scatters.split(",")]

    tables = {str(c): cohort_table(c) for c in args.cohorts}
    for name, table in tables.items():
        facts, (lag, scatter) = table["facts"], rendered_pair(Path(name))
        redrawn = np.clip(lag * facts[:, METABOLIC] + scatter * standard_normal_draws(facts[:, STREAM]), 0, 1)
        worst = float(np.abs(np.round(redrawn, 3) - facts[:, ATROPHY]).max())
        if worst > 1e-3:
            raise SystemExit(f"{name}: the redrawn atrophy severities differ from the truth (by {worst:.3f})")
    rendered = {name: dict(zip(("lag", "scatter"), rendered_pair(Path(name)))) for name in tables}
    shipped = {"version": DEFAULT_VERSION, "lag": ATROPHY_LAG_BY_VERSION[DEFAULT_VERSION], "scatter": ATROPHY_SCATTER}
    result = {"shipped": shipped, "cohorts": rendered, "pairs": []}
    for lag in lags:
        for scatter in scatters:
            per_cohort = {name: gap_at(table, lag, scatter) for name, table in tables.items()}
            mean_gap = float(np.mean([c["gap"][0] for c in per_cohort.values()]))
            result["pairs"].append({"lag": lag, "scatter": scatter, "mean_gap": round(mean_gap, 4), **per_cohort})
            gaps = ", ".join(f"{c['gap'][0]:.3f} (T1 {c['t1_auc']:.3f})" for c in per_cohort.values())
            print(f"lag {lag:.2f} scatter {scatter:.2f}: gap {gaps}; mean {mean_gap:.3f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
