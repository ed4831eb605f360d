"""Regional SUVR against age (DUAL-GLOW Figs. 6-7): cohort slopes per diagnosis, and counterfactual series.

Two regions, as in the DUAL-GLOW paper's age figures: frontal and the AD pattern (posterior cingulate,
precuneus, inferior parietal, angular, middle and inferior temporal). Slopes are SUVR per decade from
ordinary least squares, with a 95 % t interval. The counterfactual series gives an age-conditioned
model one subject's T1 at several ages; its slope is compared with the simulator's truth for the same
subject: "age only" (metabolism of the new age, anatomy unchanged: what a model that keeps the T1
fixed should follow) and "aged" (the atrophy of those years too).
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, mean_in_labels, region_labels

TREND_REGIONS = {"frontal": FRONTAL_REGIONS, "ad_pattern": AD_PATTERN_REGIONS}
GROUPS = ("all", "CN", "MCI", "AD")


def trend_region_means(pet: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    inside = labels * (mask > 0)
    return {name: mean_in_labels(pet, inside, region_labels(prefixes)) for name, prefixes in TREND_REGIONS.items()}


def slope_per_decade(ages: np.ndarray, values: np.ndarray) -> dict[str, float]:
    """OLS slope (per 10 years) with its 95 % interval; NaN where fewer than three points."""
    from scipy import stats

    ages, values = np.asarray(ages, float), np.asarray(values, float)
    keep = np.isfinite(ages) & np.isfinite(values)
    if keep.sum() < 3 or np.ptp(ages[keep]) == 0:
        return {"slope": float("nan"), "low": float("nan"), "high": float("nan"), "n": int(keep.sum())}
    fit = stats.linregress(ages[keep], values[keep])
    half = stats.t.ppf(0.975, keep.sum() - 2) * fit.stderr
    return {
        "slope": 10 * fit.slope,
        "low": 10 * (fit.slope - half),
        "high": 10 * (fit.slope + half),
        "n": int(keep.sum()),
        "p": float(fit.pvalue),
    }


def cohort_slopes(region_values: list[dict[str, float]], ages: np.ndarray, diagnoses: list[str | None]) -> list[dict]:
    """Rows: one slope per region and diagnosis group (and all subjects)."""
    rows = []
    for region in TREND_REGIONS:
        values = np.array([v[region] for v in region_values])
        for group in GROUPS:
            keep = np.array([group == "all" or d == group for d in diagnoses])
            if keep.sum() >= 3:
                rows.append({"region": region, "group": group, **slope_per_decade(ages[keep], values[keep])})
    return rows


def series_slopes(ages: tuple[float, ...], series: list[dict[str, float]]) -> dict[str, float]:
    """Slope per decade of one subject's regional means over ``ages`` (one dict per age)."""
    return {region: 10 * float(np.polyfit(ages, [s[region] for s in series], 1)[0]) for region in TREND_REGIONS}


def summarise_series(per_subject: dict[str, list[dict[str, float]]]) -> list[dict]:
    """Mean and SD over subjects of each source's counterfactual slope, with the ratio to 'age only'."""
    rows = []
    truth = per_subject.get("truth: age only")
    for source, slopes in per_subject.items():
        for region in TREND_REGIONS:
            values = np.array([s[region] for s in slopes])
            row = {"source": source, "region": region, "n": len(values), "mean": float(values.mean())}
            row["sd"] = float(values.std(ddof=1)) if len(values) > 1 else float("nan")
            if truth:
                reference = float(np.mean([s[region] for s in truth]))
                row["ratio_to_age_only"] = float(values.mean() / reference) if reference else float("nan")
            rows.append(row)
    return rows
