"""Regional agreement of synthetic with real PET: Bland-Altman per key region, per-region errors,
and paired Wilcoxon tests between models on per-subject image scores."""

from __future__ import annotations

from itertools import combinations

import numpy as np

AGREEMENT_REGIONS = ("posterior cingulate", "precuneus", "frontal", "temporal", "hippocampus")


def bland_altman(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """Bias (synthetic - real) and 95 % limits of agreement (bias +- 1.96 SD of the differences)."""
    difference = np.asarray(synthetic, float) - np.asarray(real, float)
    bias, sd = float(difference.mean()), float(difference.std(ddof=1))
    return {"bias": bias, "sd": sd, "low": bias - 1.96 * sd, "high": bias + 1.96 * sd, "n": len(difference)}


def key_region_agreement(real: list[dict[str, float]], synthetic: list[dict[str, float]]) -> list[dict]:
    """Bland-Altman rows for the key regions of AGREEMENT_REGIONS (values per subject, same order)."""
    rows = []
    for region in AGREEMENT_REGIONS:
        values = np.array([r[region] for r in real]), np.array([s[region] for s in synthetic])
        rows.append({"region": region, **bland_altman(*values)})
    return rows


def region_errors(real: np.ndarray, synthetic: np.ndarray, names: list[str]) -> list[dict]:
    """Per AAL region (columns of subjects x regions matrices): bias, MAE and relative MAE of the SUVR."""
    difference = synthetic - real
    rows = []
    for j, name in enumerate(names):
        column = difference[:, j]
        keep = np.isfinite(column)
        if not keep.any() or not np.abs(real[keep, j]).mean() > 0:
            continue  # a region outside every subject's mask
        rows.append(
            {
                "region": name,
                "bias": float(column[keep].mean()),
                "mae": float(np.abs(column[keep]).mean()),
                "relative_mae": float(np.abs(column[keep]).mean() / np.abs(real[keep, j]).mean()),
            }
        )
    return rows


def paired_model_tests(per_subject: dict[str, list[dict]], metrics: tuple[str, ...] = ("mae", "ssim")) -> list[dict]:
    """Two-sided Wilcoxon signed-rank test between every two models, per metric, on the same subjects."""
    from scipy.stats import wilcoxon

    rows = []
    for a, b in combinations(per_subject, 2):
        for metric in metrics:
            x = np.array([r[metric] for r in per_subject[a]])
            y = np.array([r[metric] for r in per_subject[b]])
            if len(x) != len(y) or len(x) < 6:
                continue
            p = 1.0 if np.allclose(x, y) else float(wilcoxon(x, y).pvalue)
            rows.append({"a": a, "b": b, "metric": metric, "median_difference": float(np.median(x - y)), "p": p})
    return rows
