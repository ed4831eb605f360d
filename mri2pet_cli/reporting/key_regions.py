"""The few regions a reader looks at first, and their z-scores against a model's own CN output.

A z-score needs a reference made the same way as the value it scores: the card's ``cn_reference``
holds the mean and SD of the model's *synthetic* PET in each key region over the cognitively normal
subjects of its training split (synthetic PETs vary less than real ones, so real-PET norms would
inflate every z). Cards without it give no z-scores.
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.space.atlas import mean_in_labels, region_labels

KEY_REGIONS: dict[str, tuple[str, ...]] = {
    "posterior cingulate": ("Cingulum_Post",),
    "precuneus": ("Precuneus",),
    "frontal": ("Frontal_Sup", "Frontal_Mid", "Frontal_Sup_Medial"),
    "temporal": ("Temporal_Mid", "Temporal_Inf"),
    "parietal": ("Parietal_Inf", "SupraMarginal", "Angular"),
    "hippocampus": ("Hippocampus",),
    "primary visual": ("Calcarine",),
    "thalamus": ("Thalamus",),
}


def key_region_means(pet: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Mean SUVR of each key region (both hemispheres) inside the brain mask."""
    inside = labels * mask
    return {name: mean_in_labels(pet, inside, region_labels(prefixes)) for name, prefixes in KEY_REGIONS.items()}


def expected_value(stats: dict, age: float | None, age_model: dict | None) -> tuple[float, float, str]:
    """(CN mean, SD, how it was matched) for one region: age-matched where the age lies inside the norms' ages."""
    if age_model and age is not None and age_model["age_range"][0] <= age <= age_model["age_range"][1]:
        fit = age_model["regions"][stats["name"]]
        mean = fit["mean_at_center"] + fit["slope_per_year"] * (age - age_model["age_center"])
        return mean, fit["residual_sd"], f"age-matched (age {age:g})"
    if age_model:
        low, high = age_model["age_range"]
        if age is None:
            return stats["mean"], stats["sd"], f"not age-matched: no age given (norms span ages {low:g}-{high:g})"
        return stats["mean"], stats["sd"], f"not age-matched: age {age:g} lies outside the norms' ages {low:g}-{high:g}"
    return stats["mean"], stats["sd"], "not age-matched (the card's norms have no age model)"


def key_region_rows(
    means: dict[str, float],
    card: dict,
    *,
    age: float | None = None,
    half_widths: dict[str, float] | None = None,
    familiarity: dict | None = None,
) -> list[dict]:
    """Rows for the report: SUVR (with its calibrated 90 % half-width), and where the card allows, the CN
    norm (age-matched where it can be), z and the z range the interval spans.

    z is withheld (``z`` None, ``z_note`` says why) when the input's familiarity verdict is 'outside' and
    when the age lies outside the norms' ages (the norm is not the subject's own); without an age, z is
    against the norms over all their ages, and the row says so.
    """
    reference = card.get("cn_reference") or {}
    stats = reference.get("regions", {})
    age_model = reference.get("age_model")
    outside = (familiarity or {}).get("verdict") == "outside"
    rows = []
    for name, value in means.items():
        row: dict = {"region": name, "suvr": value}
        if half_widths and name in half_widths:
            row["interval90_suvr"] = half_widths[name]
        if name in stats and stats[name]["sd"] > 0:
            mean, sd, matched = expected_value({"name": name, **stats[name]}, age, age_model)
            z = (value - mean) / sd
            row |= {"cn_mean": mean, "cn_sd": sd, "norm": matched, "cn_source": reference.get("source", "")}
            if outside:
                note = "withheld: the input lies outside the model's training T1s"
                row |= {"z": None, "z_withheld": z, "z_note": note}
            elif "outside the norms" in matched:
                row |= {"z": None, "z_withheld": z, "z_note": f"withheld: {matched}"}
            else:
                row["z"] = z
                if "interval90_suvr" in row:
                    width = row["interval90_suvr"] / sd
                    row["z_interval90"] = [z - width, z + width]
        rows.append(row)
    return rows


def cn_reference(means: list[dict[str, float]], source: str, ages: list[float] | None = None) -> dict:
    """The card entry: mean and SD per key region over CN subjects' synthetic PETs; with their ages, a
    straight line on age per region (the reports' age-matched norms) and the ages it holds for."""
    regions = {
        name: {"mean": float(np.mean([m[name] for m in means])), "sd": float(np.std([m[name] for m in means], ddof=1))}
        for name in means[0]
    }
    entry = {"source": source, "n": len(means), "regions": regions}
    if ages is not None and len(ages) >= 10:
        ages_arr = np.asarray(ages, dtype=np.float64)
        center = float(ages_arr.mean())
        fits = {}
        for name in means[0]:
            values = np.array([m[name] for m in means])
            slope, intercept = np.polyfit(ages_arr - center, values, 1)
            residual = values - (intercept + slope * (ages_arr - center))
            fits[name] = {
                "mean_at_center": float(intercept),
                "slope_per_year": float(slope),
                "residual_sd": float(np.sqrt((residual**2).sum() / (len(values) - 2))),
            }
        entry["age_model"] = {
            "age_center": center,
            "age_range": [float(ages_arr.min()), float(ages_arr.max())],
            "method": "least-squares line on age per region; SD of its residuals",
            "regions": fits,
        }
    return entry
