"""How close the simulated FDG world is to the published one (issues 11 and 37).

    python benchmarks/simulation_realism.py runs/realism-v4 --n 170 --seed 3 --jobs 2  # simulator v4 (default)
    python benchmarks/simulation_realism.py runs/realism-v3 --n 170 --seed 3 --sim-version 3
    python benchmarks/simulation_realism.py runs/cohort-v2 --n 120 --sim-version 2

Version 3 (issue 37) also prints, each against its cited target (docs/simulation.md, "Version 3"):
- the age-only slope (counterfactual truth, anatomy fixed) of each row, against the partial-volume-corrected
  literature, on the first --counterfactual CN subjects;
- grey-matter volume loss per decade measured on the rendered model-grid T1s (3-class Gaussian mixture of each
  image, not the simulator's own parameter) in the cerebral cortex, the cerebellum and the hippocampus;
- the "T1 ceiling": CN vs AD AUC of the real (truth) PET's regional SUVR against the best T1 classifier
  (regional grey matter, CSF, age), logistic regression, 10 x 5-fold cross-validation, out of fold.
A v3 or v4 cohort is simulated without scan variety and with a diagnosis mix of CN=0.6, AD=0.4 (--mix).

Simulates a v2 cohort in FOLDER when it has none (default scan variety), then compares the
simulated CN subjects' regional SUVR (ground-truth model-grid PET, each subject's own AAL labels,
cerebellar cortex = 1) with the literature table in mri2pet_cli/simulation/fdg_reference.py: mean, SD,
z-score of the simulated mean against the reference mean and SD, SD ratio, Spearman rho over the
regions; the same for the age slope (CN, %/decade) and the AD effect (AD vs CN, %). AAL has no
pons, so only the cerebellar reference is reported. Also times one subject with the neck in view
(1 mm class head) and its peak memory.

Writes benchmarks/results/simulation_realism_v4.{json,png} (v3: _v3; v2: simulation_realism.{json,png}; or --out).
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
from mri2pet_cli.simulation.counterfactual import counterfactual_suvr
from mri2pet_cli.simulation.fdg_model import CALIBRATION_FILES, row_suvr
from mri2pet_cli.simulation.fdg_reference import (
    CORRECTED_AGE,
    GREY_MATTER_LOSS,
    REGIONS,
    region_label_values,
    scored_regions,
)
from mri2pet_cli.simulation.population import DEFAULT_VERSION, parse_diagnosis_mix
from mri2pet_cli.space.atlas import aal_names, reference_labels
from mri2pet_cli.space.grid import default_grid
from mri2pet_cli.space.tissue import tissue_fractions, tissue_probabilities

RESULTS = Path(__file__).parent / "results"
TARGETS = {"spearman_rho": 0.8, "max_abs_z": 1.0, "sd_ratio": (1 / 1.5, 1.5)}
V3_TARGETS = {"spearman_rho": 0.95, "max_abs_z": 1.0, "corrected_tolerance": 1.5, "ceiling_gap": (0.03, 0.12)}


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
    if "v3" in result:
        print("age only (anatomy fixed), %/decade: measured SUVR, after PVC (GTM), cited corrected")
        for t in result["regions"]:
            cited = t["cited_corrected_pct_per_decade"]
            mark = "" if cited is None else ("  ok" if t["corrected_within"] else "  OUT")
            shown = "" if cited is None else cited
            print(
                f"  {t['region']:22s} {t['sim_age_only_pct_per_decade']:6.2f} "
                f"{t['sim_age_only_corrected_pct_per_decade']:6.2f} {shown:>6}{mark}"
            )
        print(json.dumps(result["v3"], indent=1))


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
        f"mri2pet simulator v{result.get('version', 2)} vs literature (simulated, not patient data): "
        f"n={s['n']} ({s['n_cn']} CN), "
        f"rho={s['spearman_rho_mean']}, max |z|={s['max_abs_z']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def gtm_grey_matter(pet: np.ndarray, labels: np.ndarray, tissues: tuple[np.ndarray, ...], fwhm_mm: float):
    """Grey-matter uptake of each table row relative to the cerebellar cortex's, corrected for partial volume by
    a symmetric geometric transfer matrix (the method of Greve et al. 2016, simplified): ``tissues`` = the CSF,
    grey- and white-matter fractions of the subject's T1; compartments = each row's grey matter, the cerebellar
    cortex's, white matter and CSF; each compartment blurred by the PSF; the compartments' weighted PET means
    solved for their true uptakes."""
    from scipy import ndimage

    grid = default_grid()
    csf, gm, wm = tissues
    compartments = [gm * np.isin(labels, region_label_values(r)) for r in REGIONS]
    compartments += [gm * np.isin(labels, reference_labels()), wm, csf]
    sigma = fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / grid.spacing
    blurred = [ndimage.gaussian_filter(c, sigma) for c in compartments]
    weights = [c / max(float(c.sum()), 1e-6) for c in compartments]
    transfer = np.array([[float((w * b).sum()) for b in blurred] for w in weights])
    observed = np.array([float((w * pet).sum()) for w in weights])
    uptake = np.linalg.lstsq(transfer, observed, rcond=None)[0]
    return {r.name: uptake[i] / uptake[len(REGIONS)] for i, r in enumerate(REGIONS)}


def age_only_slopes(folder: Path, rows: list[dict], n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Each row's change per decade with the anatomy fixed (counterfactual truth at 60 and 90), mean of the first
    ``n`` CN: of its SUVR as measured (blurred), and of its grey matter's uptake after partial-volume correction
    (GTM; the PSF from the subject's truth, widened by the model grid's voxel)."""
    grid = default_grid()
    ids = [r["participant_id"] for r in rows if r["diagnosis"] == "CN"][:n]
    measured, corrected = [], []
    for sid in ids:
        paths = subject_paths(folder, sid)
        labels = np.asarray(nib.load(str(paths["truth_labels"])).dataobj)
        t1 = nib.load(str(paths["truth_t1"])).get_fdata(dtype=np.float32)
        mask = np.asarray(nib.load(str(paths["truth_mask"])).dataobj) > 0
        psf = json.loads(paths["truth_json"].read_text())["subject"]["psf_fwhm_mm"]
        fwhm = float(np.hypot(psf, grid.spacing))
        pets = [counterfactual_suvr(folder, sid, age, grid)[0] for age in (60.0, 90.0)]
        at = [row_suvr(pet, labels, REGIONS) for pet in pets]
        measured.append({k: (at[1][k] / at[0][k] - 1.0) / 3.0 * 100.0 for k in at[0]})
        tissues = tissue_fractions(t1, mask)  # the anatomy is the same at both ages: one segmentation
        gm = [gtm_grey_matter(pet, labels, tissues, fwhm) for pet in pets]
        corrected.append({k: (gm[1][k] / gm[0][k] - 1.0) / 3.0 * 100.0 for k in gm[0]})

    def mean(per_subject: list[dict]) -> dict[str, float]:
        return {k: float(np.mean([s[k] for s in per_subject])) for k in per_subject[0]}

    return mean(measured), mean(corrected) | {"n_subjects": len(ids)}


NOT_CORTEX = ("Cerebelum", "Vermis", "Caudate", "Putamen", "Pallidum", "Thalamus")
STRUCTURES = {
    "cerebral cortex": lambda n: not n.startswith(NOT_CORTEX),
    "cerebellum": lambda n: n.startswith(("Cerebelum", "Vermis")),
    "hippocampus": lambda n: n.startswith("Hippocampus"),
}


def tissue_table(folder: Path, rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per subject: grey-matter volume (ml) of each structure (partial-volume fractions), and each table row's mean
    GM and CSF fraction and posterior, all measured on the rendered model-grid T1 (its own 3-class mixture)."""
    names = aal_names()
    voxel_ml = default_grid().spacing ** 3 / 1000.0
    volumes, gm_rows, csf_rows = [], [], []
    row_labels = [region_label_values(r) for r in REGIONS]
    for row in rows:
        paths = subject_paths(folder, row["participant_id"])
        t1 = nib.load(str(paths["truth_t1"])).get_fdata(dtype=np.float32)
        mask = np.asarray(nib.load(str(paths["truth_mask"])).dataobj) > 0
        labels = np.asarray(nib.load(str(paths["truth_labels"])).dataobj)
        csf, gm, _wm = tissue_fractions(t1, mask)
        csf_p, gm_p, _wm_p = tissue_probabilities(t1, mask)
        volumes.append(
            [
                float(gm[np.isin(labels, [v for v, n in names.items() if keep(n)])].sum()) * voxel_ml
                for keep in STRUCTURES.values()
            ]  # fmt: skip
        )
        in_rows = [np.isin(labels, ls) for ls in row_labels]
        gm_rows.append([float(m[r].mean()) for m in (gm, gm_p) for r in in_rows])
        csf_rows.append([float(m[r].mean()) for m in (csf, csf_p) for r in in_rows])
    return np.array(volumes), np.array(gm_rows), np.array(csf_rows)


def grey_matter_loss(rows: list[dict], volumes: np.ndarray) -> dict[str, dict]:
    """Grey-matter volume change per decade (% of the fitted volume at 70) of CN subjects, per structure."""
    cn = np.array([r["diagnosis"] == "CN" for r in rows])
    age = np.array([float(r["age"]) for r in rows])[cn]
    out = {}
    for i, name in enumerate(STRUCTURES):
        slope, intercept = np.polyfit(age, volumes[cn, i], 1)
        pct = float(slope * 10.0 / (intercept + slope * 70.0) * 100.0)
        low, high = GREY_MATTER_LOSS[name]["pct_per_decade"]
        out[name] = {"sim_pct_per_decade": round(pct, 2), "cited_range": [low, high], "within": low <= pct <= high}
    return out


def cross_validated_auc(features: np.ndarray, labels: np.ndarray, repeats: int = 10) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    aucs = []
    for repeat in range(repeats):
        scores = np.zeros(len(labels))
        for train, test in StratifiedKFold(5, shuffle=True, random_state=repeat).split(features, labels):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
            scores[test] = model.fit(features[train], labels[train]).predict_proba(features[test])[:, 1]
        aucs.append(roc_auc_score(labels, scores))
    return float(np.mean(aucs))


def t1_ceiling(rows: list[dict], values: list[dict], gm_rows: np.ndarray, csf_rows: np.ndarray) -> dict:
    """CN vs AD: real PET's regional SUVR against the best T1(+age) classifier, out-of-fold AUC."""
    dx = np.array([r["diagnosis"] for r in rows])
    keep = np.isin(dx, ["CN", "AD"])
    y = (dx[keep] == "AD").astype(int)
    age = np.array([[float(r["age"])] for r in rows])[keep]
    pet = np.array([[v[region.name] for region in scored_regions()] for v in values])[keep]
    candidates = {
        "grey matter": gm_rows[keep],
        "grey matter + CSF": np.hstack([gm_rows, csf_rows])[keep],
        "grey matter + CSF + age": np.hstack([gm_rows[keep], csf_rows[keep], age]),
    }
    t1 = {name: round(cross_validated_auc(x, y), 4) for name, x in candidates.items()}
    best = max(t1, key=t1.get)
    real = round(cross_validated_auc(pet, y), 4)
    gap = round(real - t1[best], 4)
    low, high = V3_TARGETS["ceiling_gap"]
    return {
        "n_cn": int((y == 0).sum()),
        "n_ad": int((y == 1).sum()),
        "real_pet_auc": real,
        "t1_auc": t1,
        "best_t1": best,
        "gap": gap,
        "target_gap": [low, high],
        "within": low <= gap <= high,
    }


def v3_checks(folder: Path, rows: list[dict], values: list[dict], result: dict, counterfactual: int) -> dict:
    measured, corrected = age_only_slopes(folder, rows, counterfactual)
    tolerance = V3_TARGETS["corrected_tolerance"]
    for t in result["regions"]:
        t["sim_age_only_pct_per_decade"] = round(measured[t["region"]], 2)
        t["sim_age_only_corrected_pct_per_decade"] = round(corrected[t["region"]], 2)
        cited = CORRECTED_AGE.get(t["region"])
        t["cited_corrected_pct_per_decade"] = cited
        t["corrected_within"] = None if cited is None else abs(corrected[t["region"]] - cited) <= tolerance
    volumes, gm_rows, csf_rows = tissue_table(folder, rows)
    cortical = [t for t in result["regions"] if t["region"] not in ("caudate", "putamen", "pallidum", "thalamus")]
    return {
        "age_only_subjects": corrected["n_subjects"],
        "age_only_max_cortical": max(t["sim_age_only_pct_per_decade"] for t in cortical),
        "age_only_all_cortical_at_most_0": all(t["sim_age_only_pct_per_decade"] <= 0 for t in cortical),
        "age_only_corrected_max_cortical": max(t["sim_age_only_corrected_pct_per_decade"] for t in cortical),
        "age_only_corrected_all_cortical_at_most_0": all(
            t["sim_age_only_corrected_pct_per_decade"] <= 0 for t in cortical
        ),
        "corrected_within_tolerance": [t["region"] for t in result["regions"] if t["corrected_within"]],
        "corrected_outside_tolerance": [t["region"] for t in result["regions"] if t["corrected_within"] is False],
        "grey_matter_loss": grey_matter_loss(rows, volumes),
        "t1_ceiling": t1_ceiling(rows, values, gm_rows, csf_rows),
        "targets": V3_TARGETS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="default benchmarks/results/simulation_realism[_vN]")
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--sim-version", type=int, default=DEFAULT_VERSION, choices=tuple(CALIBRATION_FILES))
    parser.add_argument("--mix", default="CN=0.6,MCI=0,AD=0.4", help="v3/v4 cohort's diagnosis mix")
    parser.add_argument("--counterfactual", type=int, default=20, help="CN subjects for the age-only slopes")
    args = parser.parse_args()
    name = f"simulation_realism_v{args.sim_version}" if args.sim_version >= 3 else "simulation_realism"
    args.out = args.out or RESULTS / name
    if not (args.folder / "participants.tsv").exists():
        v3 = args.sim_version >= 3
        extra = {"variety": "none", "diagnosis_mix": parse_diagnosis_mix(args.mix)} if v3 else {}
        simulate_cohort(args.folder, args.n, args.seed, jobs=args.jobs, version=args.sim_version, **extra)
    rows, values = cohort_suvr(args.folder, args.n)
    result = compare(rows, values) | {"version": args.sim_version}
    if args.sim_version >= 3:
        result["v3"] = v3_checks(args.folder, rows, values, result, args.counterfactual)
    if not args.no_timing:
        result["timing"] = time_one_subject()
    print_table(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    figure(result, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


if __name__ == "__main__":
    main()
