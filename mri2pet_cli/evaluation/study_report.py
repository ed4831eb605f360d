"""The study's files: one self-contained HTML page, a CSV per table, one JSON, and the figures as PNG."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from pathlib import Path

import numpy as np

from mri2pet_cli.evaluation.classification import BINARY_METRICS, MULTICLASS_METRICS
from mri2pet_cli.evaluation.conventions import CONVENTIONS
from mri2pet_cli.evaluation.trends import TREND_REGIONS
from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.reporting.figures import pyplot, save_figure
from mri2pet_cli.reporting.report import PAGE_STYLE, RESEARCH_ONLY, fmt, html_table

TABLES = (
    "classification",
    "auc_tests",
    "complete_dataset",
    "label_efficiency",
    "age_trends",
    "counterfactual_series",
    "bland_altman",
    "region_errors",
    "model_tests",
    "conventions",
)
FIGURES = ("classification", "roc", "ad_z_map", "label_efficiency", "age_trends", "bland_altman", "counterfactual")
CURVE_COLUMNS = ["task", "labelled_n", "features", "auc", "auc_low", "auc_high", "scored_per_class"]
CURVE_COLUMNS += ["best_t1_only", "difference", "difference_low", "difference_high", "verdict"]
COMPLETE_COLUMNS = ["task", "training", "subjects_without_pet", "acc", "mcc", "auc", "auc_low", "auc_high", "auc_gain"]
DIAGNOSIS_COLOURS = {"CN": "tab:green", "MCI": "tab:orange", "AD": "tab:red"}


def study_files(out_dir: Path) -> dict[str, Path]:
    files = {"html": out_dir / "study.html", "json": out_dir / "study.json"}
    files |= {f"csv:{t}": out_dir / f"study_{t}.csv" for t in TABLES}
    files |= {f"png:{f}": out_dir / f"study_{f}.png" for f in FIGURES}
    return files


def _csv_text(rows: list[dict]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for r in rows for k in r if not isinstance(r[k], dict)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items() if k in columns})
    return buffer.getvalue()


def classification_figure(rows: list[dict], path: Path) -> Path:
    """AUC with its 95 % interval for every SVM row of the first binary task."""
    plt = pyplot()
    binary = [r for r in rows if "auc" in r and r["classifier"] == "linear SVM"]
    task = binary[0]["task"] if binary else "no binary task"
    shown = [r for r in binary if r["task"] == task]
    fig, ax = plt.subplots(figsize=(8, 0.32 * max(len(shown), 3) + 1.2))
    for y, row in enumerate(shown):
        colour = "tab:blue" if "synthetic" in row["features"] else "black"
        error = [[row["auc"] - row["auc_low"]], [row["auc_high"] - row["auc"]]]
        ax.errorbar(row["auc"], y, xerr=error, fmt="o", color=colour)
    ax.set_yticks(range(len(shown)), [r["features"] for r in shown], fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", lw=0.5)
    ax.set_xlabel("AUC (95 % bootstrap interval)")
    ax.set_title(f"{task}: linear SVM, nested cross-validation")
    return save_figure(fig, path)


def roc_figure(rows: list[dict], path: Path) -> Path:
    """Out-of-fold ROC curves of the first binary task's main feature sets (linear SVM)."""
    plt = pyplot()
    binary = [r for r in rows if "roc" in r and r["classifier"] == "linear SVM"]
    task = binary[0]["task"] if binary else "no binary task"
    shown = [r for r in binary if r["task"] == task and not r["features"].startswith("trained on real")]
    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    for row in shown:
        style = ":" if row["features"] == "real PET" else "--" if row["features"] == "MRI only" else "-"
        ax.plot(row["roc"]["fpr"], row["roc"]["tpr"], style, label=f"{row['features']} (AUC {row['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(f"ROC curves: {task} (out of fold)")
    ax.legend(fontsize=6, loc="lower right")
    return save_figure(fig, path)


def ad_z_map_figure(z_map: dict, path: Path) -> Path:
    """The regional AD z-map (AD against CN, per AAL region) painted on three axial slices: real PET and each model."""
    from mri2pet_cli.space.atlas import template_maps
    from mri2pet_cli.space.grid import ModelGrid

    plt = pyplot()
    labels = template_maps(ModelGrid.from_description(z_map["grid"])).aal
    lookup = np.full(int(labels.max()) + 1, np.nan)
    sources = list(z_map["z"])
    slices = [int(labels.shape[2] * f) for f in (0.45, 0.6, 0.72)]
    fig, axes = plt.subplots(len(sources), len(slices), figsize=(2.4 * len(slices), 2.4 * len(sources)), squeeze=False)
    for row, source in enumerate(sources):
        lookup[:] = np.nan
        lookup[np.array(z_map["regions"])] = [np.nan if v is None else v for v in z_map["z"][source]]
        painted = np.where(labels > 0, lookup[labels], np.nan)
        for col, k in enumerate(slices):
            image = axes[row][col].imshow(painted[:, :, k].T, origin="lower", cmap="RdBu_r", vmin=-3, vmax=3)
            axes[row][col].axis("off")
        r = z_map["pearson_r_with_real"].get(source)
        axes[row][0].set_title(source + (f" (r with real {r:.2f})" if r is not None else ""), fontsize=7, loc="left")
    fig.colorbar(image, ax=axes, shrink=0.6, label="mean z of AD against CN")
    fig.suptitle(f"Regional AD z-map: {z_map['n_ad']} AD against {z_map['n_cn']} CN subjects", fontsize=9)
    return save_figure(fig, path)


CURVE_PANELS = (("synthetic PET: ", "synthetic PET alone"), ("T1 + synthetic PET: ", "T1 + synthetic PET"))
MODEL_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def _curve(ax, points: list[dict | None], style: dict, band_alpha: float) -> None:
    x = [i for i, r in enumerate(points) if r]
    auc, low, high = ([points[i][k] for i in x] for k in ("auc", "auc_low", "auc_high"))
    (line,) = ax.plot(x, auc, marker="o", markersize=3.5, **style)
    ax.fill_between(x, low, high, color=line.get_color(), alpha=band_alpha, lw=0)


def label_efficiency_figure(rows: list[dict], path: Path) -> Path:
    """AUC against the number of labelled subjects, with its range over draws: one row per task; on the left
    each model's synthetic PET, on the right T1 + synthetic PET, both against real PET (black) and the T1-only
    rivals (grey). A model keeps its colour in every panel."""
    plt = pyplot()
    tasks = list(dict.fromkeys(r["task"] for r in rows)) or ["(no task)"]
    names = list(dict.fromkeys(r["features"] for r in rows))
    models = list(dict.fromkeys(n.split(": ", 1)[1] for n in names if n.startswith(CURVE_PANELS[0][0])))
    colour = {m: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, m in enumerate(models)}
    rivals = [n for n in names if n.startswith("T1: ")]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11.5, 3.9 * len(tasks)), squeeze=False, sharey="row")
    for row, task in enumerate(tasks):
        mine = [r for r in rows if r["task"] == task]
        sizes = list(dict.fromkeys(r["labelled_n"] for r in mine))
        by_key = {(r["features"], r["labelled_n"]): r for r in mine}

        def points(name: str, sizes: list = sizes, by_key: dict = by_key) -> list[dict | None]:
            return [by_key.get((name, n)) for n in sizes]

        for column, (prefix, title) in enumerate(CURVE_PANELS):
            ax = axes[row][column]
            _curve(ax, points("real PET"), {"color": "black", "ls": ":", "label": "real PET"}, 0.10)
            for k, rival in enumerate(rivals):
                style = {"color": "grey", "ls": ("-", "--", "-.")[k % 3], "label": rival}
                _curve(ax, points(rival), style, 0.15 if k == 0 else 0.0)
            for model in models:
                if any(points(prefix + model)):
                    _curve(ax, points(prefix + model), {"color": colour[model], "label": model}, 0.06)
            ax.set_xticks(range(len(sizes)), sizes)
            ax.axhline(0.5, color="grey", lw=0.5)
            ax.set_title(f"{task}: {title}", fontsize=9)
            ax.set_xlabel("labelled subjects (all: cross-validation)", fontsize=8)
            if column == 0:
                ax.set_ylabel("AUC on subjects not used for training", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(0.99, 0.5), fontsize=7, frameon=False)
    fig.suptitle("Label-efficiency curves (bands: 2.5-97.5 % over draws; all: bootstrap)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def age_trend_figure(values: dict[str, list[dict]], ages: np.ndarray, diagnoses: list, path: Path) -> Path:
    """Regional SUVR against age, real PET and each model, coloured by diagnosis, with OLS lines."""
    plt = pyplot()
    sources = list(values)
    fig, axes = plt.subplots(len(TREND_REGIONS), len(sources), figsize=(2.6 * len(sources), 5.2), squeeze=False)
    for col, source in enumerate(sources):
        for row, region in enumerate(TREND_REGIONS):
            ax = axes[row, col]
            suvr = np.array([v[region] for v in values[source]])
            for diagnosis, colour in DIAGNOSIS_COLOURS.items():
                keep = np.array([d == diagnosis for d in diagnoses])
                if keep.sum() >= 3:
                    ax.scatter(ages[keep], suvr[keep], s=6, color=colour, label=diagnosis)
                    fit = np.polyfit(ages[keep], suvr[keep], 1)
                    span = np.array([ages[keep].min(), ages[keep].max()])
                    ax.plot(span, np.polyval(fit, span), color=colour, lw=1.2)
            ax.set_title(f"{source}\n{region}", fontsize=8)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel("SUVR")
            if row == len(TREND_REGIONS) - 1:
                ax.set_xlabel("age (years)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def bland_altman_figure(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray], model: str, path: Path) -> Path:
    """Bland-Altman plots of one model's key-region SUVR against real PET."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(real), figsize=(3 * len(real), 3), squeeze=False)
    for ax, region in zip(axes[0], real):
        mean = (real[region] + synthetic[region]) / 2
        difference = synthetic[region] - real[region]
        bias, sd = difference.mean(), difference.std(ddof=1)
        ax.scatter(mean, difference, s=6)
        for level, style in ((bias, "-"), (bias - 1.96 * sd, "--"), (bias + 1.96 * sd, "--")):
            ax.axhline(level, color="tab:red", ls=style, lw=1)
        ax.set_title(region, fontsize=9)
        ax.set_xlabel("mean SUVR", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel(f"{model} - real (SUVR)")
    fig.tight_layout()
    return save_figure(fig, path)


def counterfactual_figure(rows: list[dict], path: Path) -> Path:
    """Mean counterfactual slope (SUVR per decade) of each model and of both truths, per region."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(TREND_REGIONS), figsize=(5 * len(TREND_REGIONS), 3.2), squeeze=False)
    for ax, region in zip(axes[0], TREND_REGIONS):
        shown = [r for r in rows if r["region"] == region]
        ax.barh(range(len(shown)), [r["mean"] for r in shown], xerr=[r["sd"] for r in shown], color="tab:blue")
        ax.set_yticks(range(len(shown)), [r["source"] for r in shown], fontsize=8)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_title(f"{region}: same T1, age 60-90")
        ax.set_xlabel("SUVR per decade (mean +- SD over subjects)")
    fig.tight_layout()
    return save_figure(fig, path)


def _image(path: Path, alt: str) -> str:
    if not path.exists():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" style="max-width:100%">'


def _z_map_html(z_map: dict, files: dict[str, Path]) -> str:
    if not z_map:
        return "<p class=note>Not drawn: fewer than 3 CN or no AD subjects.</p>"
    agreement = ", ".join(f"{m} r = {fmt(r, 2)}" for m, r in z_map["pearson_r_with_real"].items())
    return (
        f"<p>Mean z of the {z_map['n_ad']} AD subjects against the {z_map['n_cn']} CN subjects in each AAL region, "
        f"each source against CN of its own; agreement of each model's pattern with real PET's: {agreement}.</p>"
        + _image(files["png:ad_z_map"], "regional AD z-map")
    )


def _interval(row: dict, key: str) -> str:
    return f"{fmt(row[key])} [{fmt(row[key + '_low'])}, {fmt(row[key + '_high'])}]"


def _classification_html(rows: list[dict]) -> str:
    parts = []
    for task in dict.fromkeys(r["task"] for r in rows):
        shown = [r for r in rows if r["task"] == task]
        keys = [k for k in (*BINARY_METRICS, *MULTICLASS_METRICS) if k in shown[0]]
        keys = list(dict.fromkeys(keys))
        header = ["features", "classifier", *[k.upper() for k in keys]]
        body = [[r["features"], r["classifier"], *[_interval(r, k) for k in keys]] for r in shown]
        counts = ", ".join(f"{c} {n}" for c, n in shown[0]["class_counts"].items())
        parts.append(f"<h3>{html.escape(task)} ({counts})</h3>{html_table(header, body)}")
    return "".join(parts)


def _simple_html(rows: list[dict], columns: list[str]) -> str:
    return html_table(columns, [[fmt(r.get(c)) for c in columns] for r in rows]) if rows else "<p>none</p>"


def targets(result: dict) -> list[str]:
    """The issue's targets, each said as met or not, from the numbers of the study."""
    lines = []
    svm = [r for r in result["classification"] if r["classifier"] == "linear SVM"]
    cn_ad = {r["features"]: r for r in svm if r["task"] == "CN vs AD"}
    models = [m for m in result["models"] if f"synthetic PET: {m}" in cn_ad]
    if "real PET" in cn_ad and models:
        best = max(models, key=lambda m: cn_ad[f"synthetic PET: {m}"]["auc"])
        real, synthetic = cn_ad["real PET"]["auc"], cn_ad[f"synthetic PET: {best}"]["auc"]
        verdict = "met" if abs(real - synthetic) <= 0.03 else "NOT met"
        lines.append(
            f"CN vs AD AUC with synthetic PET, best model by it ({best}) {synthetic:.3f} vs real PET {real:.3f}: "
            f"within 0.03 {verdict}"
        )
        mri, combined = cn_ad["MRI only"]["auc"], cn_ad[f"MRI + synthetic PET: {best}"]["auc"]
        verdict = "met" if combined > mri else "NOT met"
        lines.append(f"MRI + synthetic PET ({best}) AUC {combined:.3f} vs MRI only {mri:.3f}: above {verdict}")
    else:
        lines.append("CN vs AD: not enough subjects of both groups to classify")
    cohort = [r for r in result["age_trends"] if r["group"] == "all"]
    real_slopes = {r["region"]: r["slope"] for r in cohort if r["source"] == "real PET"}
    for row in cohort:
        if row["source"] != "real PET" and row["region"] in real_slopes:
            real = real_slopes[row["region"]]
            same = np.sign(row["slope"]) == np.sign(real)
            lines.append(
                f"{row['source']} {row['region']} cohort age slope {row['slope']:+.3f} vs real {real:+.3f} "
                f"per decade: same direction {'met' if same else 'NOT met'}"
            )
    for row in result["counterfactual_series"]:
        if not row["source"].startswith("truth") and "ratio_to_age_only" in row:
            ok = 0.7 <= row["ratio_to_age_only"] <= 1.3
            lines.append(
                f"{row['source']} {row['region']} counterfactual slope {row['mean']:+.3f} per decade = "
                f"{row['ratio_to_age_only']:.2f} x the 'age only' truth: within +-30 % {'met' if ok else 'NOT met'}"
            )
    return lines


def write_study(result: dict, out_dir: Path, *, ages: np.ndarray, diagnoses: list, overwrite: bool) -> dict[str, str]:
    """Write every study file; returns their paths by kind."""
    files = study_files(out_dir)
    for table in TABLES:
        write_text_atomic(_csv_text(result[table]), files[f"csv:{table}"], overwrite=overwrite)
    classification_figure(result["classification"], files["png:classification"])
    roc_figure(result["classification"], files["png:roc"])
    if result.get("ad_z_map"):
        ad_z_map_figure(result["ad_z_map"], files["png:ad_z_map"])
    if result.get("label_efficiency"):
        label_efficiency_figure(result["label_efficiency"], files["png:label_efficiency"])
    age_trend_figure(result["age_values"], ages, diagnoses, files["png:age_trends"])
    best = result.get("best_model")
    if best:
        key_values = result["key_values"]
        bland_altman_figure(key_values["real PET"], key_values[best], best, files["png:bland_altman"])
    if result["counterfactual_series"]:
        counterfactual_figure(result["counterfactual_series"], files["png:counterfactual"])
    saved = {k: v for k, v in result.items() if k not in ("age_values", "key_values")}
    write_text_atomic(json.dumps(saved, indent=2, default=float), files["json"], overwrite=overwrite)
    write_text_atomic(_page(result, files), files["html"], overwrite=overwrite)
    return {k: str(v) for k, v in files.items() if v.exists()}


def _page(result: dict, files: dict[str, Path]) -> str:
    settings = result["settings"]
    counts = ", ".join(f"{d} {n}" for d, n in result["diagnosis_counts"].items())
    messages = "".join(f"<li>{html.escape(m)}</li>" for m in result["messages"]) or "<li>none</li>"
    conventions = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in CONVENTIONS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mri2pet study</title>
{PAGE_STYLE}</head><body>
<p class="banner">{html.escape(RESEARCH_ONLY)}</p>
<h1>Study: real vs synthetic PET on {result["n_subjects"]} subjects of {html.escape(result["data"])}</h1>
<p>Diagnoses: {html.escape(counts)}. Models: {html.escape(", ".join(result["models"]))}. Classification:
{settings["folds"]}-fold stratified group cross-validation repeated {settings["repeats"]} times
(seed {settings["seed"]}), C chosen inside each training fold; 95 % intervals by bootstrap over subjects.</p>
<h2>Targets</h2><ul>{"".join(f"<li>{html.escape(t)}</li>" for t in result["targets"])}</ul>
<h2>Skipped</h2><ul>{messages}</ul>
<h2>AD classification (features: 116 AAL regional SUVRs; MRI: regional grey-matter fraction)</h2>
{_image(files["png:classification"], "AUC of every feature set")}
{_image(files["png:roc"], "ROC curves")}
{_classification_html(result["classification"])}
<h2>Regional AD z-map: does synthetic PET show the AD pattern real PET shows?</h2>
{_z_map_html(result.get("ad_z_map") or {}, files)}
<h2>Label-efficiency curves: synthetic PET against the best T1-only classifier</h2>
<p>Each feature set trained on n labelled subjects (random draws stratified by class; logistic regression,
C = 1; boosted trees for one T1 rival) and scored on the subjects not drawn; "all": cross-validation.
T1-only rivals use regional grey matter, regional CSF and age (116 AAL regions; or 33 large regions,
fractions and posteriors). Ranges: 2.5-97.5 % over draws (n) or a paired
bootstrap over subjects (all); the difference is paired against the best T1-only rival at that n. Below
30 scored subjects per class the verdict reads "too few subjects to tell".</p>
{_image(files["png:label_efficiency"], "AUC against labelled subjects")}
{_simple_html(result.get("label_efficiency", []), CURVE_COLUMNS)}
<h3>Paired AUC tests (DeLong)</h3>
{_simple_html(result["auc_tests"], ["task", "a", "b", "auc_a", "auc_b", "difference", "se", "p"])}
<h2>Complete-dataset experiment ({fmt(settings["missing_pet_fraction"], 2)} of subjects without real PET)</h2>
{_simple_html(result["complete_dataset"], COMPLETE_COLUMNS)}
<h2>Age trends (SUVR per decade, OLS, 95 % interval)</h2>
{_image(files["png:age_trends"], "regional SUVR against age")}
{_simple_html(result["age_trends"], ["source", "region", "group", "n", "slope", "low", "high", "p"])}
<h3>Counterfactual series (same T1, age 60-90) against the simulator's truth</h3>
{_image(files["png:counterfactual"], "counterfactual slopes")}
{_simple_html(result["counterfactual_series"], ["source", "region", "n", "mean", "sd", "ratio_to_age_only"])}
<h2>Regional agreement (Bland-Altman, synthetic - real SUVR)</h2>
{_image(files["png:bland_altman"], "Bland-Altman of the best model")}
{_simple_html(result["bland_altman"], ["model", "region", "n", "bias", "sd", "low", "high"])}
<h3>Paired Wilcoxon tests between models (per-subject MAE and SSIM)</h3>
{_simple_html(result["model_tests"], ["a", "b", "metric", "median_difference", "p"])}
<details><summary>Error of every AAL region, every model</summary>
{_simple_html(result["region_errors"], ["model", "region", "bias", "mae", "relative_mae"])}
</details>
<h2>Other papers' metric conventions (secondary; ours: SUVR inside the brain mask)</h2>
<ul>{conventions}</ul>
{_simple_html(result["conventions"], ["model", "score", "mean", "sd"])}
<h2>Timings (seconds)</h2>
{html_table(None, [[k, fmt(v, 1)] for k, v in result.get("timings_s", {}).items()])}
<p class="note">Every number with full precision: study.json and the study_*.csv files beside this page.</p>
</body></html>
"""
