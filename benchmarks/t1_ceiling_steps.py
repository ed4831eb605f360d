"""Where the T1's disease information goes between the simulator and the study (issue 34's T1 ceiling).

    python benchmarks/t1_ceiling_steps.py runs/study-v3-clean --out benchmarks/results/t1_ceiling_steps_clean.json
    python benchmarks/t1_ceiling_steps.py runs/ceiling-seed2 --simulate 170 --seed 2 --truth-only \
        --out benchmarks/results/t1_ceiling_steps_seed2.json    # a fresh clean cohort, steps 1-2 only

The simulator documents a "T1 ceiling" (docs/simulation.md, benchmarks/simulation_realism.py): CN vs AD, real
PET's regional SUVR against the best T1 classifier, on the noise-free model-grid T1 with each subject's own
AAL labels. The study (`evaluate --study`) fits the same kind of T1 rival on what a lab has: the rendered T1
after `mri2pet preprocess` (affine registration, brain mask, resampling) with the standard AAL atlas. This
benchmark measures, on one simulated cohort, the same two classifiers at each step between the two:

1. truth: noise-free model-grid T1 and PET, the subject's own labels and mask (the documented ceiling's inputs);
2. truth images, standard atlas: the same images read with the model grid's AAL (what an affine-only
   alignment to MNI gives a lab that knows nothing of the subject's own anatomy);
3. preprocessed: the rendered T1 and PET through `mri2pet preprocess`, its mask, the standard atlas
   (the study's inputs).

T1 features: the study's large-region rival (grey matter and CSF in the 33 rows of the FDG table, fractions
and posteriors, evaluation/features.t1_large_region_features) + age. PET features: each large region's mean
SUVR (cerebellar cortex = 1). Both logistic regression, C = 1 on standardised features, 5-fold
cross-validation repeated twice, scored out of fold, paired bootstrap over subjects (the study's "all" rows).
Simulator truth is read for measuring only. ``--simulate N --seed S`` first renders a clean cohort
(``--sim-version``, default 4) as benchmarks/simulation_realism.py does (no scan variety, CN=0.6, AD=0.4) with
another seed, so that the documented ceiling (measured on the seed-0 cohort its two numbers were chosen on)
can be checked on subjects nobody tuned on; ``--truth-only`` skips preprocessing (steps 1 and 2).
``--atrophy-lag`` and ``--atrophy-scatter`` render that cohort with another pair than population.py's (a
candidate for a simulator revision, e.g. one benchmarks/ceiling_sweep.py suggests), to check it on a seed the
sweep did not see.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.evaluation.classification import normalise_diagnosis
from mri2pet_cli.evaluation.features import t1_large_region_features
from mri2pet_cli.evaluation.label_efficiency import T1_RIVALS, curves
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset, record_grid
from mri2pet_cli.preprocessing.inputs import read_participants
from mri2pet_cli.simulation import population
from mri2pet_cli.simulation.cohort import simulate_cohort, subject_paths
from mri2pet_cli.simulation.fdg_model import row_suvr
from mri2pet_cli.simulation.fdg_reference import REGIONS
from mri2pet_cli.simulation.population import parse_diagnosis_mix
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid

RESULTS = Path(__file__).parent / "results"
STEPS = (
    "1 truth: noise-free images, own labels",
    "2 truth images, standard atlas",
    "3 preprocessed (the study's inputs)",
)


def pet_features(pet: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each table row's mean SUVR inside the mask, cerebellar cortex = 1 (the simulator's own row_suvr)."""
    return np.array(list(row_suvr(pet, np.where(mask > 0, labels, 0), REGIONS).values()), dtype=np.float64)


def load(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).dataobj, dtype=np.float32)


def step_features(data: Path, ids: list[str], arrays, atlas: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per step: (T1 features, PET features), one row per subject; without ``arrays`` steps 1 and 2 only."""
    steps = STEPS if arrays is not None else STEPS[:2]
    out: dict[str, tuple[list, list]] = {step: ([], []) for step in steps}
    for i, subject in enumerate(ids):
        paths = subject_paths(data, subject)
        t1, pet, mask = load(paths["truth_t1"]), load(paths["truth_pet"]), load(paths["truth_mask"])
        own = load(paths["truth_labels"]).astype(np.int32)
        inputs = {
            STEPS[0]: (t1, pet, mask, own),
            STEPS[1]: (t1, pet, mask, atlas),
        }
        if arrays is not None:
            inputs[STEPS[2]] = (arrays.t1[i], arrays.pet[i], arrays.mask[i], atlas)
        for step, (t1_i, pet_i, mask_i, labels) in inputs.items():
            out[step][0].append(t1_large_region_features(t1_i, mask_i, labels))
            out[step][1].append(pet_features(pet_i, mask_i, labels))
        print(f"{subject} ({i + 1}/{len(ids)})", flush=True)
    return {step: (np.stack(t1_rows), np.stack(pet_rows)) for step, (t1_rows, pet_rows) in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a cohort written by `mri2pet simulate` (truth kept)")
    parser.add_argument("--out", type=Path, default=RESULTS / "t1_ceiling_steps.json")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--simulate", type=int, metavar="N", help="render a clean cohort of N first")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument(
        "--sim-version", type=int, default=population.DEFAULT_VERSION, choices=tuple(population.ATROPHY_LAG_BY_VERSION)
    )
    parser.add_argument("--truth-only", action="store_true", help="steps 1 and 2 only (no preprocessing)")
    parser.add_argument("--atrophy-lag", type=float, help="with --simulate: render with this lag instead")
    parser.add_argument("--atrophy-scatter", type=float, help="with --simulate: render with this scatter instead")
    args = parser.parse_args()
    if (args.atrophy_lag, args.atrophy_scatter) != (None, None) and not args.simulate:
        parser.error("--atrophy-lag and --atrophy-scatter need --simulate")
    # module globals read at draw time; forked render workers inherit them
    lags = population.ATROPHY_LAG_BY_VERSION
    if args.atrophy_lag is not None:
        lags[args.sim_version] = args.atrophy_lag
    if args.atrophy_scatter is not None:
        population.ATROPHY_SCATTER = args.atrophy_scatter

    if args.simulate and not (args.data / "participants.tsv").exists():
        mix = parse_diagnosis_mix("CN=0.6,MCI=0,AD=0.4")
        simulate_cohort(
            args.data,
            args.simulate,
            args.seed,
            jobs=args.jobs,
            version=args.sim_version,
            variety="none",
            diagnosis_mix=mix,
        )
        if (args.atrophy_lag, args.atrophy_scatter) != (None, None):  # not a standard v3 cohort: say so in it
            described = args.data / "dataset_description.json"
            description = json.loads(described.read_text())
            description["mri2pet_simulation"]["atrophy_override"] = {
                "lag": lags[args.sim_version],
                "scatter": population.ATROPHY_SCATTER,
            }
            described.write_text(json.dumps(description, indent=2))
    failed: dict[str, str] = {}
    if args.truth_only:
        rows = [r for r in read_participants(args.data).values() if r["diagnosis"] in ("CN", "AD")]
        ids, diagnoses, ages = (
            [r["participant_id"] for r in rows],
            [r["diagnosis"] for r in rows],
            [r["age"] for r in rows],
        )
        arrays, atlas = None, template_maps(default_grid()).aal.astype(np.int32)
    else:
        records, failed = prepare_dataset(args.data, jobs=args.jobs)
        records = [r for r in records if normalise_diagnosis(r.diagnosis) in ("CN", "AD")]
        ids, diagnoses, ages = [r.subject_id for r in records], [r.diagnosis for r in records], [r.age for r in records]
        arrays, atlas = load_arrays(records), template_maps(record_grid(records[0])).aal.astype(np.int32)
    y = np.array([normalise_diagnosis(d) == "AD" for d in diagnoses], dtype=int)
    age = np.array([[float(a)] for a in ages], dtype=np.float64)
    features = step_features(args.data, ids, arrays, atlas)

    rival = T1_RIVALS[2]
    result = {"cohort": str(args.data), "n_cn": int((y == 0).sum()), "n_ad": int((y == 1).sum()), "steps": {}}
    if args.simulate:
        result["atrophy"] = {
            "version": args.sim_version,
            "lag": lags[args.sim_version],
            "scatter": population.ATROPHY_SCATTER,
        }
    result["failed_preprocessing"] = failed
    for step, (t1_rows, pet_rows) in features.items():
        sets = {"real PET": (pet_rows, "logistic"), rival: (np.hstack([t1_rows, age]), "logistic")}
        rows = {row["features"]: row for row in curves(sets, y, sizes=())}
        pet, t1 = rows["real PET"], rows[rival]
        result["steps"][step] = {
            "real_pet_auc": [round(pet[k], 4) for k in ("auc", "auc_low", "auc_high")],
            "t1_auc": [round(t1[k], 4) for k in ("auc", "auc_low", "auc_high")],
            "gap": [round(pet[k], 4) for k in ("difference", "difference_low", "difference_high")],
        }
        print(f"{step}: real PET {pet['auc']:.3f}, T1 {t1['auc']:.3f}, gap {pet['difference']:.3f} "
              f"[{pet['difference_low']:.3f}, {pet['difference_high']:.3f}]")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
