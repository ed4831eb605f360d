"""How familiar an input is: the preprocessed T1 (what the model sees) against the model's training T1s.

Features: the mean and SD of the normalised T1 (white matter = 1) in each AAL region inside the brain
mask, and quantiles of its brain histogram: contrast, texture, tissue proportions and regional shape,
read on the model grid, so header fields (voxel size, orientation) count only through what they do to
the image. The training subjects' features are standardised and summarised by PCA (components to 90 %
of the variance); an input's score is the mean of its whitened in-subspace distance (Hotelling T^2 / k)
and its residual off the subspace (Q over the training mean): about 1 for training-like inputs.

Thresholds come from the training subjects themselves, each scored by a reference fitted without it
(5-fold): 'unusual' above their 95th percentile, 'outside' above the larger of their maximum and the
99.9th percentile of a log-normal fitted to them. The verdict informs; it never refuses an input.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.errors import Mri2PetError

KIND = "mri2pet familiarity reference"
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
VARIANCE_KEPT = 0.90
FOLDS = 5


def t1_features(t1: np.ndarray, mask: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Regional mean and SD of the normalised T1 (every AAL region; 0 where empty) and its brain quantiles."""
    from mri2pet_cli.space.atlas import aal_names

    brain = mask > 0
    values = t1[brain].astype(np.float64)
    lab = labels[brain].astype(np.int64)
    size = max(aal_names()) + 1
    counts = np.bincount(lab, minlength=size)
    sums = np.bincount(lab, weights=values, minlength=size)
    squares = np.bincount(lab, weights=values**2, minlength=size)
    keys = sorted(aal_names())
    n = np.maximum(counts[keys], 1)
    means = sums[keys] / n
    sds = np.sqrt(np.maximum(squares[keys] / n - means**2, 0.0))
    return np.concatenate([means, sds, np.quantile(values, QUANTILES) if values.size else np.zeros(len(QUANTILES))])


def _fit(features: np.ndarray) -> dict:
    mean = features.mean(axis=0)
    sd = np.maximum(features.std(axis=0), 1e-3)
    z = (features - mean) / sd
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    variance = singular**2 / max(len(z) - 1, 1)
    kept = int(np.searchsorted(np.cumsum(variance) / variance.sum(), VARIANCE_KEPT) + 1)
    kept = max(1, min(kept, len(z) - 2))
    model = {"mean": mean, "sd": sd, "components": vt[:kept], "variance": variance[:kept], "q_mean": 1.0}
    q = _parts(model, features)[1]
    model["q_mean"] = float(max(q.mean(), 1e-9))
    return model


def _parts(model: dict, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = (np.atleast_2d(features) - model["mean"]) / model["sd"]
    scores = z @ model["components"].T
    t2 = (scores**2 / model["variance"]).sum(axis=1)
    q = ((z - scores @ model["components"]) ** 2).sum(axis=1)
    return t2, q


def _score(model: dict, features: np.ndarray) -> np.ndarray:
    t2, q = _parts(model, features)
    return 0.5 * (t2 / len(model["variance"]) + q / model["q_mean"])


def build_reference(features: np.ndarray, ids: list[str], source: str, seed: int = 0) -> dict:
    """The reference (PCA summary, thresholds, the training features) of ``features`` (subjects, features)."""
    features = np.asarray(features, dtype=np.float64)
    if len(features) < 2 * FOLDS:
        raise Mri2PetError(f"{len(features)} subjects are too few for a familiarity reference (at least {2 * FOLDS})")
    order = np.random.default_rng(seed).permutation(len(features))
    held_out = np.empty(len(features))
    for fold in range(FOLDS):
        test = order[fold::FOLDS]
        train = np.setdiff1d(order, test)
        held_out[test] = _score(_fit(features[train]), features[test])
    logs = np.log(held_out)
    unusual = float(np.quantile(held_out, 0.95))
    outside = float(max(held_out.max(), np.exp(logs.mean() + 3.09 * logs.std(ddof=1))))
    model = _fit(features)
    return {
        "kind": KIND,
        "tool_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "source": source,
        "n_subjects": len(ids),
        "subjects": list(ids),
        "features": "per AAL region mean and SD of the normalised T1 in the brain mask, then brain quantiles "
        + ", ".join(f"{q:g}" for q in QUANTILES),
        "thresholds": {"unusual": unusual, "outside": outside},
        "held_out_scores": np.round(held_out, 4).tolist(),
        "mean": model["mean"].tolist(),
        "sd": model["sd"].tolist(),
        "components": model["components"].tolist(),
        "variance": model["variance"].tolist(),
        "q_mean": model["q_mean"],
        "training_features": np.round(features, 5).tolist(),
    }


def _model_of(reference: dict) -> dict:
    return {k: np.asarray(reference[k], dtype=np.float64) for k in ("mean", "sd", "components", "variance")} | {
        "q_mean": float(reference["q_mean"])
    }


def familiarity(features: np.ndarray, reference: dict) -> dict:
    """The record's ``familiarity``: score, thresholds, verdict (typical / unusual / outside)."""
    score = float(_score(_model_of(reference), features)[0])
    thresholds = reference["thresholds"]
    verdict = "outside" if score > thresholds["outside"] else "unusual" if score > thresholds["unusual"] else "typical"
    return {
        "score": round(score, 4),
        "thresholds": thresholds,
        "verdict": verdict,
        "reference": f"{reference['source']} ({reference['n_subjects']} subjects)",
        "meaning": {
            "typical": "like the T1s the model was trained on",
            "unusual": "less like them than 95 % of the training T1s: read the PET with care",
            "outside": "unlike any training T1: the synthetic PET and its z-scores are not to be trusted",
        }[verdict],
    }


def familiarity_path_for(weights_path: Path) -> Path:
    return weights_path.with_name(weights_path.stem + ".familiarity.json")


def load_reference(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        reference = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Mri2PetError(f"{path}: not a readable familiarity reference ({exc})") from None
    if reference.get("kind") != KIND:
        raise Mri2PetError(f"{path}: not an mri2pet familiarity reference")
    return reference


def records_features(records: list) -> tuple[list[str], np.ndarray]:
    """Features of preprocessed subjects (their cached model-grid T1 and mask)."""
    from mri2pet_cli.preprocessing.cohort import record_grid
    from mri2pet_cli.preprocessing.storage import load_preprocessed
    from mri2pet_cli.space.atlas import template_maps

    ids, rows = [], []
    for record in records:
        pre = load_preprocessed(record.preproc_dir, record.subject_id)
        labels = template_maps(record_grid(record)).aal
        ids.append(record.subject_id)
        rows.append(t1_features(pre.t1, pre.mask, labels))
    return ids, np.array(rows)
