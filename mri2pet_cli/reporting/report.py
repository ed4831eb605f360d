"""Per-subject reports: AAL ROI table (CSV), slice montage (PNG) and a self-contained HTML page.

Display windows are fixed so that pictures of different subjects and models compare at a glance:
T1 0-1.3 (white matter = 1 after normalisation), PET 0-2.0 SUVR (cerebellar cortex = 1; normal
cortex sits at 1.0-1.6), sample std 0-0.25 SUVR, error -0.5 to +0.5 SUVR.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from mri2pet_cli.io import write_text_atomic
from mri2pet_cli.reporting.figures import mni_voxel, planes, pyplot, save_figure
from mri2pet_cli.space.atlas import aal_names
from mri2pet_cli.space.grid import ModelGrid

T1_WINDOW = (0.0, 1.3)
PET_WINDOW_SUVR = (0.0, 2.0)
STD_WINDOW_SUVR = (0.0, 0.25)
ERROR_WINDOW_SUVR = (-0.5, 0.5)
RESEARCH_ONLY = "Synthetic PET from a model trained on simulated data. Research use only, not for diagnosis."
# Phone widths (390 px): long words and paths wrap, each table scrolls sideways inside its own box, the
# picture scales to the screen.
PAGE_STYLE = """<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 .6em;color:#222}
h1,h2,td,th,p{overflow-wrap:anywhere}.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
img{max-width:100%;height:auto}
.banner{background:#fff3cd;padding:.6em;border:1px solid #e0c060;font-weight:bold}.fail{background:#f8d7da}
.note{color:#555;font-size:90%}</style>"""
SLICE_MNI_MM = (0.0, -18.0, 12.0)
# (left, right, top, bottom) labels of each displayed plane; RAS grid drawn with origin at the lower left
ORIENTATION = {"sagittal": ("P", "A", "S", "I"), "coronal": ("L", "R", "S", "I"), "axial": ("L", "R", "A", "P")}


def roi_table(
    pet: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    grid: ModelGrid,
    native_per_mni: float = 1.0,
    intervals: dict[int, float] | None = None,
) -> list[dict]:
    """Mean, std and volume of the PET in each of the 116 AAL regions (inside the brain mask).

    Volumes are counted on the MNI model grid; ``native_per_mni`` (the inverse of the registration's
    volume scaling) turns them into the subject's native volume. ``intervals``: the half-width of each
    region's calibrated 90 % interval (sampling models), added as ``interval90_suvr``.
    """
    rows = []
    for value, name in aal_names().items():
        sel = (labels == value) & mask
        n = int(sel.sum())
        rows.append(
            {
                "label": value,
                "region": name,
                "mean_suvr": float(pet[sel].mean()) if n else float("nan"),
                "std_suvr": float(pet[sel].std()) if n else float("nan"),
                "volume_mni_ml": n * grid.voxel_volume_ml,
                "volume_native_ml": n * grid.voxel_volume_ml * native_per_mni,
            }
        )
        if intervals is not None:
            rows[-1]["interval90_suvr"] = intervals.get(value, float("nan"))
    return rows


def write_roi_csv(rows: list[dict], path: Path, *, overwrite: bool) -> Path:
    with_interval = bool(rows) and "interval90_suvr" in rows[0]
    lines = ["label,region,mean_suvr,std_suvr,volume_mni_ml,volume_native_ml" + (",interval90_suvr" * with_interval)]
    lines += [
        f"{r['label']},{r['region']},{r['mean_suvr']:.4f},{r['std_suvr']:.4f},"
        f"{r['volume_mni_ml']:.2f},{r['volume_native_ml']:.2f}"
        + (f",{r['interval90_suvr']:.4f}" if with_interval else "")
        for r in rows
    ]
    return write_text_atomic("\n".join(lines) + "\n", path, overwrite=overwrite)


def _mark_orientation(ax, plane: str, coordinate: str) -> None:
    from matplotlib import patheffects

    left, right, top, bottom = ORIENTATION[plane]
    outline = [patheffects.withStroke(linewidth=2, foreground="black")]  # readable on dark and light maps
    style = {"transform": ax.transAxes, "color": "white", "fontsize": 9, "fontweight": "bold", "path_effects": outline}
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.98, 0.5, right, ha="right", va="center", **style)
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)
    ax.text(0.5, 0.02, bottom, ha="center", va="bottom", **style)
    ax.set_xlabel(coordinate, fontsize=7, labelpad=2)  # under the image: never over a direction letter


def montage(
    panels: list[tuple[str, np.ndarray, str, tuple[float, float], str]],
    grid: ModelGrid,
    title: str,
    path: Path,
    note: str = "",
    reference: str = "cerebellar cortex",
):
    """Rows of (name, volume, colormap, (vmin, vmax), units) in three planes; orientation and MNI mm marked.
    ``reference``: the SUVR reference region, named in the footer."""
    plt = pyplot()
    center = mni_voxel(grid, SLICE_MNI_MM)
    mm = grid.affine[:3, :3] @ np.asarray(center) + grid.affine[:3, 3]
    coordinates = {"sagittal": f"x = {mm[0]:.0f} mm", "coronal": f"y = {mm[1]:.0f} mm", "axial": f"z = {mm[2]:.0f} mm"}
    fig, axes = plt.subplots(len(panels), 3, figsize=(10, 2.4 * len(panels) + 0.4), squeeze=False)
    for row, (name, volume, cmap, (vmin, vmax), units) in enumerate(panels):
        for col, (img, plane) in enumerate(zip(planes(volume, center), ("sagittal", "coronal", "axial"))):
            ax = axes[row, col]
            shown = ax.imshow(img, origin="lower", cmap=cmap, vmin=vmin, vmax=vmax)
            ax.set_xticks([])
            ax.set_yticks([])
            _mark_orientation(ax, plane, coordinates[plane] + " (MNI)")
            if row == 0:
                ax.set_title(plane)
        axes[row, 0].text(-0.05, 0.5, name, transform=axes[row, 0].transAxes, rotation=90, va="center", ha="right")
        bar = fig.colorbar(shown, ax=axes[row, 2], fraction=0.046)
        bar.set_label(units)
    low = grid.affine[2, 3]
    footer = (
        f"{RESEARCH_ONLY}\nSUVR: {reference} = 1. Axial and coronal in neurological convention "
        f"(left on the left). The model grid ends at z = {low:.0f} mm (lower brainstem cut). " + note
    )
    fig.suptitle(title, y=0.995)
    fig.text(0.5, 0.005, footer.strip(), ha="center", va="top", fontsize=8, wrap=True)
    return save_figure(fig, path)


def synthesis_panels(t1, pet, mask, reference=None, std=None) -> list:
    panels = [
        ("T1 (preprocessed)", t1, "gray", T1_WINDOW, "T1 / WM median"),
        ("synthetic PET", pet, "hot", PET_WINDOW_SUVR, "SUVR"),
    ]
    if std is not None:
        panels.append(("sample std", std, "viridis", STD_WINDOW_SUVR, "SUVR"))
    if reference is not None:
        panels.append(("reference PET", reference, "hot", PET_WINDOW_SUVR, "SUVR"))
        error = np.where(mask, pet - reference, 0.0)
        panels.append(("synthetic - reference", error, "coolwarm", ERROR_WINDOW_SUVR, "SUVR"))
    return panels


def html_table(header: list[str] | None, rows: list[list], classes: list[str] | None = None) -> str:
    """An HTML table; without ``header`` the first column is the row's heading (key / value tables)."""
    if header is None:
        body = "".join(
            f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in rows
        )
        return f'<div class="scroll"><table><tbody>{body}</tbody></table></div>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = ""
    for i, row in enumerate(rows):
        css = f' class="{classes[i]}"' if classes and classes[i] else ""
        body += f"<tr{css}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "-" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def key_region_section(key_rows: list[dict], record: dict) -> tuple[str, str]:
    """The key-region table (SUVR with its interval, the CN norm, z with the range the interval spans) and its notes."""
    has_z = any(r.get("z") is not None or r.get("z_note") for r in key_rows)
    has_interval = any("interval90_suvr" in r for r in key_rows)
    header = ["region", "SUVR"] + ["90 % interval"] * has_interval + (["CN norm (mean ± SD)", "z"] if has_z else [])

    def z_text(row: dict) -> str:
        if row.get("z") is None:
            return "not shown" if row.get("z_note") else "-"
        span = row.get("z_interval90")
        return fmt(row["z"], 1) + (f" [{span[0]:.1f}, {span[1]:.1f}]" if span else "")

    rows = [
        [r["region"], fmt(r["suvr"])]
        + ([f"± {fmt(r['interval90_suvr'])}" if "interval90_suvr" in r else "-"] if has_interval else [])
        + ([f"{fmt(r.get('cn_mean'))} ± {fmt(r.get('cn_sd'))}", z_text(r)] if has_z else [])
        for r in key_rows
    ]
    notes = []
    calibration = record.get("calibration") or {}
    if has_interval:
        notes.append(
            f"90 % interval: split-conformal, from {calibration.get('n_subjects')} paired subjects "
            f"({html.escape(str(calibration.get('file')))}); it holds for inputs like those subjects."
        )
    elif calibration.get("note"):
        notes.append(f"No intervals: {html.escape(calibration['note'])}.")
    region = record.get("reference_region", {"name": "cerebellum"})
    if has_z:
        first = next(r for r in key_rows if "norm" in r)
        source = html.escape(first.get("cn_source", ""))
        if any(r.get("z") is not None for r in key_rows):
            notes.append(f"z: against {source}; {html.escape(first['norm'])}.")
        withheld = {r["z_note"] for r in key_rows if r.get("z_note")}
        notes += [f"z {html.escape(n)} (norms: {source})." for n in sorted(withheld)]
        if any(r.get("z_interval90") for r in key_rows):
            notes.append(
                "z [range]: the z of the interval's ends against the same norms. Where the range spans many units, "
                "the model's error in the region exceeds the spread of normal values: read that z as no finding."
            )
    elif region["name"] != "cerebellum":
        notes.append(
            "No z-scores: the model card's distribution on cognitively normal subjects is in "
            f"cerebellar SUVR, and this report uses the {html.escape(region['name'])} reference."
        )
    else:
        notes.append("No z-scores: this model's card has no distribution of its own output on CN subjects.")
    return html_table(header, rows), "".join(f"<p class=note>{n}</p>" for n in notes)


ACQUISITION_WORDS = {
    "noise_rel": ("noise in white matter", 100.0, "%"),
    "spacing_small_mm": ("smallest voxel side", 1.0, " mm"),
    "spacing_mid_mm": ("middle voxel side", 1.0, " mm"),
    "spacing_large_mm": ("largest voxel side", 1.0, " mm"),
    "wm_to_gm_ratio": ("white/grey matter contrast", 1.0, ""),
}


def acquisition_text(name: str, entry: dict) -> str:
    """'noise in white matter 5.1 % (training 1.6-4.1 %)'."""
    words, scale, unit = ACQUISITION_WORDS[name]
    low, high = entry["training_range"]
    return f"{words} {entry['value'] * scale:.2f}{unit} (training {low * scale:.2f}-{high * scale:.2f}{unit})"


def familiarity_section(familiarity: dict | None) -> str:
    """How like the training T1s this input is, in words, with the score and thresholds."""
    if not familiarity or familiarity.get("verdict") is None:
        note = (familiarity or {}).get("note", "not measured")
        return f"<p class=note>Familiarity of the input: {html.escape(note)}.</p>"
    verdict = familiarity["verdict"]
    limits = familiarity["thresholds"]
    text = (
        f"Familiarity of the input: <b>{verdict}</b> ({html.escape(familiarity['meaning'])}). Score "
        f"{familiarity['score']:.2f}; unusual above {limits['unusual']:.2f}, outside above {limits['outside']:.2f}; "
        f"against {html.escape(familiarity['reference'])}."
    )
    if "blocks" in familiarity:
        blocks = familiarity["blocks"]
        text += f" Appearance {blocks['appearance']:.2f}, acquisition {blocks['acquisition']:.2f} (1 is typical)."
    unlike = [
        acquisition_text(name, familiarity["acquisition"][name]) for name in familiarity.get("unlike_training", [])
    ]
    if unlike:
        text += " Outside every training T1: " + html.escape("; ".join(unlike)) + "."
    css = "banner" if verdict == "outside" else "note"
    return f'<p class="{css}">{text}</p>'


def write_html(
    path: Path,
    *,
    title: str,
    png: Path,
    roi_rows: list[dict],
    record: dict,
    check_rows: list[dict],
    key_rows: list[dict],
    overwrite: bool,
) -> Path:
    """One self-contained page that reads like a report; the JSON record beside it holds every number."""
    image = base64.b64encode(png.read_bytes()).decode()
    model = record["model"]
    options = record["options"]
    subject = [
        ["subject", record["subject_id"]],
        ["age", fmt(record.get("age"), 1) if record.get("age") is not None else "not given"],
        ["T1", record["inputs"]["t1"]],
        ["reference PET", record["inputs"]["reference_pet"] or "none"],
        ["created", record.get("created", "-")],
    ]
    provenance = [
        ["model", model["name"]],
        ["weights", f"{Path(model['weights']).name} (card version {model.get('card_version')})"],
        ["sha256", model.get("sha256") or "-"],
        ["training data", model.get("training_data") or "-"],
        ["samples / temperature / seed", f"{options['samples']} / {options['temperature']:g} / {options['seed']}"],
        ["skull stripping / QC mode", f"{options['skull_strip']} / {options.get('qc', 'strict')}"],
        ["mri2pet", f"{record['version']} on {record['device']}"],
    ]
    key_table, z_note = key_region_section(key_rows, record)
    region = record.get("reference_region", {"name": "cerebellum", "definition": "cerebellar cortex"})
    familiarity_html = familiarity_section(record.get("familiarity"))
    checks = html_table(
        ["check", "value", "rule", "result"],
        [[c["check"], c["value"], c["rule"], "pass" if c["passed"] else "FAIL"] for c in check_rows],
        ["" if c["passed"] else "fail" for c in check_rows],
    )
    metrics = record.get("metrics_vs_reference")
    metrics_html = (
        "<h2>Against the reference PET</h2>"
        + html_table(["metric", "value"], [[k, fmt(v)] for k, v in metrics.items() if isinstance(v, (int, float))])
        if metrics
        else ""
    )
    timings = html_table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in record["timings_s"].items()])
    with_interval = bool(roi_rows) and "interval90_suvr" in roi_rows[0]
    regions = html_table(
        ["label", "region", "mean SUVR", "std", "volume MNI (ml)", "volume native (ml)"]
        + ["90 % interval (+- SUVR)"] * with_interval,
        [
            [
                r["label"],
                r["region"],
                fmt(r["mean_suvr"]),
                fmt(r["std_suvr"]),
                fmt(r["volume_mni_ml"], 1),
                fmt(r["volume_native_ml"], 1),
            ]
            + ([fmt(r["interval90_suvr"])] if with_interval else [])
            for r in roi_rows
        ],
    )
    json_name = Path(record["outputs"]["record"]).name
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
{PAGE_STYLE}</head><body>
<p class="banner">{html.escape(RESEARCH_ONLY)}</p>
<h1>{html.escape(title)}</h1>
<h2>Subject</h2>
{html_table(None, subject)}
{familiarity_html}
<h2>Picture</h2>
<img src="data:image/png;base64,{image}" alt="T1, synthetic PET and maps in three planes" style="max-width:100%">
<h2>Key regions (SUVR, reference: {html.escape(region["definition"])})</h2>
{key_table}
{z_note}
<h2>Quality checks (registration to MNI)</h2>
{checks}
{metrics_html}
<h2>Model and weights</h2>
{html_table(None, provenance)}
<h2>Timings</h2>
{timings}
<details><summary>All 116 AAL regions</summary>
{regions}
</details>
<p class="note">Every number of this report, with full precision:
<a href="{html.escape(json_name)}">{html.escape(json_name)}</a>.</p>
</body></html>
"""
    return write_text_atomic(page, path, overwrite=overwrite)
