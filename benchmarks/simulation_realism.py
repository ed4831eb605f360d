"""How close the simulated FDG world is to the published one (issue 11).

    python benchmarks/simulation_realism.py runs/cohort-v2 --n 100 --jobs 2

Simulates a v2 cohort in FOLDER when it has none (default scan variety), then compares the
simulated CN subjects' regional SUVR (ground-truth model-grid PET, each subject's own AAL labels,
cerebellar cortex = 1) with the literature table in mri2pet_cli/simulation/fdg_reference.py: mean, SD,
z-score of the simulated mean against the reference mean and SD, SD ratio, Spearman rho over the
regions; the same for the age slope (CN, %/decade) and the AD effect (AD vs CN, %). AAL has no
pons, so only the cerebellar reference is reported. Also times one subject with the neck in view
(1 mm class head) and its peak memory.

Writes benchmarks/results/simulation_realism.{json,png} (or --out).
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import stats

from mri2pet_cli.preprocessing.inputs import read_participants
from mri2pet_cli.simulation.cohort import simulate_cohort, subject_paths
from mri2pet_cli.simulation.fdg_model import row_suvr
from mri2pet_cli.simulation.fdg_reference import scored_regions

RESULTS = Path(__file__).parent / "results"
TARGETS = {"spearman_rho": 0.8, "max_abs_z": 1.0, "sd_ratio": (1 / 1.5, 1.5)}


def cohort_suvr(folder: Path, n: int) -> tuple[list[dict], list[dict[str, float]]]:
    rows = list(read_participants(folder).values())[:n]
    values = []
    for row in rows:
        paths = subject_paths(folder, row["participant_id"])
        pet = nib.load(str(paths["truth_pet"])).get_fdata(dtype=np.float32)
        labels = np.asarray(nib.load(str(paths["truth_labels"])).dataobj)
        values.append(row_suvr(pet, labels, scored_regions()))
    return rows, values


def time_one_subject() -> dict:
    """Seconds and peak memory for one v2 subject with the neck in view, in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        simulate_cohort(tmp, 1, seed=99, variety="neck")
        first = time.perf_counter() - start  # includes loading the templates once
        start = time.perf_counter()
        simulate_cohort(Path(tmp) / "again", 2, seed=98, variety="neck")
        per_subject = (time.perf_counter() - start) / 2
    return {
        "first_subject_s": round(first, 2),
        "s_per_subject_after_first": round(per_subject, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def compare(rows: list[dict], values: list[dict[str, float]]) -> dict:
    dx = np.array([r["diagnosis"] for r in rows])
    age = np.array([float(r["age"]) for r in rows])
    cn, ad = dx == "CN", dx == "AD"
    table = []
    for region in scored_regions():
        v = np.array([x[region.name] for x in values])
        mean, sd = float(v[cn].mean()), float(v[cn].std(ddof=1))
        slope = float(np.polyfit(age[cn], v[cn], 1)[0]) * 10 / mean * 100
        ad_pct = float(v[ad].mean() / mean - 1) * 100 if ad.any() else float("nan")
        table.append(
            {
                "region": region.name,
                "sim_mean": round(mean, 3),
                "ref_mean": region.suvr_mean,
                "z": round((mean - region.suvr_mean) / region.suvr_sd, 2),
                "sim_sd": round(sd, 3),
                "ref_sd": region.suvr_sd,
                "sd_ratio": round(sd / region.suvr_sd, 2),
                "sim_age_pct_per_decade": round(slope, 2),
                "ref_age_pct_per_decade": region.age_pct_per_decade,
                "sim_ad_pct": round(ad_pct, 1),
                "ref_ad_pct": region.ad_pct,
            }
        )

    def rho(a: str, b: str) -> float:
        return round(float(stats.spearmanr([t[a] for t in table], [t[b] for t in table])[0]), 3)

    summary = {
        "n": len(rows),
        "n_cn": int(cn.sum()),
        "n_ad": int(ad.sum()),
        "spearman_rho_mean": rho("sim_mean", "ref_mean"),
        "max_abs_z": max(abs(t["z"]) for t in table),
        "sd_ratio_range": [min(t["sd_ratio"] for t in table), max(t["sd_ratio"] for t in table)],
        "spearman_rho_age_slope": rho("sim_age_pct_per_decade", "ref_age_pct_per_decade"),
        "spearman_rho_ad_effect": rho("sim_ad_pct", "ref_ad_pct"),
        "targets": TARGETS,
    }
    summary["meets_targets"] = bool(
        summary["spearman_rho_mean"] >= TARGETS["spearman_rho"]
        and summary["max_abs_z"] <= TARGETS["max_abs_z"]
        and TARGETS["sd_ratio"][0] <= summary["sd_ratio_range"][0]
        and summary["sd_ratio_range"][1] <= TARGETS["sd_ratio"][1]
    )
    return {"summary": summary, "regions": table}


def print_table(result: dict) -> None:
    columns = ("region", "sim", "ref", "z", "sd", "ref sd", "age%", "ref", "AD%", "ref")
    widths = (22, 6, 5, 6, 6, 6, 6, 5, 6, 6)
    head = " ".join(f"{c:{'>' if i else '<'}{w}s}" for i, (c, w) in enumerate(zip(columns, widths)))
    print(head)
    for t in result["regions"]:
        print(
            f"{t['region']:22s} {t['sim_mean']:6.3f} {t['ref_mean']:5.2f} {t['z']:6.2f} {t['sim_sd']:6.3f} "
            f"{t['ref_sd']:6.2f} {t['sim_age_pct_per_decade']:6.2f} {t['ref_age_pct_per_decade']:5.1f} "
            f"{t['sim_ad_pct']:6.1f} {t['ref_ad_pct']:6.1f}"
        )
    print(json.dumps(result["summary"], indent=1))


def figure(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result["regions"]
    names = [x["region"] for x in t]
    pos = np.arange(len(t))
    fig, axes = plt.subplots(1, 3, figsize=(18, 7), gridspec_kw={"width_ratios": [2.2, 1, 1]})
    axes[0].barh(
        pos + 0.2, [x["ref_mean"] for x in t], 0.4, xerr=[x["ref_sd"] for x in t], label="literature (mean, SD)"
    )
    axes[0].barh(pos - 0.2, [x["sim_mean"] for x in t], 0.4, xerr=[x["sim_sd"] for x in t], label="simulated CN")
    axes[0].axvline(1.0, color="k", lw=0.8)
    axes[0].set_yticks(pos, names)
    axes[0].invert_yaxis()
    axes[0].set_xlabel("SUVR (cerebellar cortex = 1)")
    axes[0].legend(loc="lower right")
    for ax, sim, ref, label in (
        (axes[1], "sim_age_pct_per_decade", "ref_age_pct_per_decade", "age effect (%/decade, CN)"),
        (axes[2], "sim_ad_pct", "ref_ad_pct", "AD vs CN (%)"),
    ):
        ax.scatter([x[ref] for x in t], [x[sim] for x in t], s=14)
        lo = min(min(x[ref] for x in t), min(x[sim] for x in t)) - 1
        hi = max(max(x[ref] for x in t), max(x[sim] for x in t)) + 1
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_xlabel(f"literature {label}")
        ax.set_ylabel(f"simulated {label}")
    s = result["summary"]
    fig.suptitle(
        f"mri2pet simulator v2 vs literature (simulated, not patient data): n={s['n']} ({s['n_cn']} CN), "
        f"rho={s['spearman_rho_mean']}, max |z|={s['max_abs_z']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "simulation_realism")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    if not (args.folder / "participants.tsv").exists():
        simulate_cohort(args.folder, args.n, args.seed, jobs=args.jobs)
    rows, values = cohort_suvr(args.folder, args.n)
    result = compare(rows, values)
    if not args.no_timing:
        result["timing"] = time_one_subject()
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    figure(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


if __name__ == "__main__":
    main()
