"""Figures of the simulated cohort (issue 2): speed, size, and the effects the simulator builds in.

    python benchmarks/simulation_figures.py benchmarks/out/cohort100 --n 100 --jobs 2

Simulates the cohort when the folder has none (else uses its first N subjects: subject i is
the same in any cohort with the same seed), then prints (and writes as JSON and PNG
next to the cohort): seconds, disk MB and peak memory per subject; mean SUVR of the
AD-pattern regions for CN / MCI / AD; the age slope of frontal SUVR; grey-matter volume
against age. SUVR uses the cerebellar cortex (AAL Cerebelum_*) as reference, on the
ground-truth model-grid PET.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.preprocessing.inputs import read_participants
from mri2pet_cli.simulation.cohort import simulate_cohort, subject_paths
from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, mean_in_labels, reference_labels, region_labels


def subject_figures(folder: Path, row: dict) -> dict:
    paths = subject_paths(folder, row["participant_id"])
    pet = nib.load(str(paths["truth_pet"])).get_fdata()
    labels = np.asarray(nib.load(str(paths["truth_labels"])).dataobj)
    ref = mean_in_labels(pet, labels, reference_labels())
    truth = json.loads(paths["truth_json"].read_text())
    truth_dir = paths["truth_json"].parent
    disk = sum(p.stat().st_size for p in truth_dir.rglob("*") if p.is_file()) + sum(
        p.stat().st_size for p in (folder / row["participant_id"]).rglob("*") if p.is_file()
    )
    return {
        "age": float(row["age"]),
        "diagnosis": row["diagnosis"],
        "ad_suvr": mean_in_labels(pet, labels, region_labels(AD_PATTERN_REGIONS)) / ref,
        "frontal_suvr": mean_in_labels(pet, labels, region_labels(FRONTAL_REGIONS)) / ref,
        "gm_ml": truth["gm_volume_ml"],
        "gm_ml_head_size_corrected": truth["gm_volume_ml"] / truth["subject"]["head_scale"] ** 3,
        "ventricles_ml": truth["ventricle_volume_ml"],
        "disk_mb": disk / 1e6,
    }


def slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and Pearson r."""
    return float(np.polyfit(x, y, 1)[0]), float(np.corrcoef(x, y)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    timing = None
    if not (args.folder / "participants.tsv").exists():
        start = time.perf_counter()
        simulate_cohort(args.folder, args.n, args.seed, jobs=args.jobs)
        wall = time.perf_counter() - start
        peak_mb = (
            max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            / 1024
        )
        timing = {
            "wall_s": wall,
            "jobs": args.jobs,
            "s_per_subject_wall": wall / args.n,
            "cpu_s_per_subject": wall * args.jobs / args.n,
            "peak_rss_mb_per_process": peak_mb,
        }

    rows = [subject_figures(args.folder, r) for r in list(read_participants(args.folder).values())[: args.n]]
    age = np.array([r["age"] for r in rows])
    dx = np.array([r["diagnosis"] for r in rows])
    out: dict = {"n": len(rows), "timing": timing, "disk_mb_per_subject": float(np.mean([r["disk_mb"] for r in rows]))}
    out["ad_pattern_suvr"] = {
        g: {
            "n": int((dx == g).sum()),
            "mean": float(np.mean([r["ad_suvr"] for r in rows if r["diagnosis"] == g])),
            "sd": float(np.std([r["ad_suvr"] for r in rows if r["diagnosis"] == g])),
        }
        for g in ("CN", "MCI", "AD")
        if (dx == g).any()
    }
    frontal = np.array([r["frontal_suvr"] for r in rows])
    cn = dx == "CN"
    out["frontal_suvr_slope_per_decade"] = {
        "all": dict(zip(("slope", "r"), (s * 10 if i == 0 else s for i, s in enumerate(slope(age, frontal))))),
        "CN": dict(zip(("slope", "r"), (s * 10 if i == 0 else s for i, s in enumerate(slope(age[cn], frontal[cn]))))),
    }
    gm = np.array([r["gm_ml"] for r in rows])
    out["gm_volume_ml_per_decade"] = dict(
        zip(("slope", "r"), (s * 10 if i == 0 else s for i, s in enumerate(slope(age, gm))))
    )
    out["gm_volume_ml_mean"] = float(gm.mean())
    gm_corrected = np.array([r["gm_ml_head_size_corrected"] for r in rows])
    out["gm_volume_head_size_corrected_ml_per_decade"] = dict(
        zip(("slope", "r"), (s * 10 if i == 0 else s for i, s in enumerate(slope(age, gm_corrected))))
    )

    print(json.dumps(out, indent=2))
    (args.folder / "simulation_figures.json").write_text(json.dumps(out, indent=2))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    colors = {"CN": "tab:blue", "MCI": "tab:orange", "AD": "tab:red"}
    for g, c in colors.items():
        sel = dx == g
        axes[0].scatter(age[sel], [r["ad_suvr"] for r, s in zip(rows, sel) if s], c=c, label=g, s=12)
        axes[1].scatter(age[sel], frontal[sel], c=c, label=g, s=12)
        axes[2].scatter(age[sel], gm[sel], c=c, label=g, s=12)
    for ax, title in zip(axes, ("AD-pattern SUVR", "frontal SUVR", "grey-matter volume (ml)")):
        ax.set_xlabel("age (years)")
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"mri2pet simulated cohort (n={len(rows)}, not patient data)")
    fig.tight_layout()
    fig.savefig(args.folder / "simulation_figures.png", dpi=90)


if __name__ == "__main__":
    main()
