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


def key_region_rows(means: dict[str, float], card: dict) -> list[dict]:
    """Rows for the report: SUVR, and where the card allows, the CN mean, SD and z."""
    reference = card.get("cn_reference") or {}
    stats = reference.get("regions", {})
    rows = []
    for name, value in means.items():
        row: dict = {"region": name, "suvr": value}
        if name in stats and stats[name]["sd"] > 0:
            row |= {
                "cn_mean": stats[name]["mean"],
                "cn_sd": stats[name]["sd"],
                "z": (value - stats[name]["mean"]) / stats[name]["sd"],
                "cn_source": reference.get("source", ""),
            }
        rows.append(row)
    return rows


def cn_reference(means: list[dict[str, float]], source: str) -> dict:
    """The card entry: mean and SD per key region over CN subjects' synthetic PETs."""
    regions = {
        name: {"mean": float(np.mean([m[name] for m in means])), "sd": float(np.std([m[name] for m in means], ddof=1))}
        for name in means[0]
    }
    return {"source": source, "n": len(means), "regions": regions}
