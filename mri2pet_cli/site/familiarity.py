"""How familiar an input is: the T1 the model sees, and how it was acquired, against the model's training T1s.

Two blocks of features, each scored against the training subjects on its own:

- **appearance**: the mean and SD of the normalised model-grid T1 (white matter = 1) in each AAL region inside
  the brain mask, and quantiles of its brain histogram (contrast, texture, tissue proportions, regional
  shape). Standardised and summarised by PCA (components to 90 % of the variance); the score is the mean of
  the whitened in-subspace distance (Hotelling T^2 / k) and the residual off the subspace (Q over the
  training mean). Anatomy dominates its variance.
- **acquisition**: what the scanner did (``site.acquisition``: native noise in deep white matter, the three
  voxel spacings, grey/white contrast), in logs; the score is the Mahalanobis distance^2 / k. Resampling to
  the 2.5 mm grid averages noise away and anatomy swamps the appearance block, so a 1.5 T protocol or a new
  voxel size scored about as typical there (AUROC 0.51 far site vs home): hence its own block.

Each block's score is divided by the median of its held-out training scores (so 1 is typical) and the
input's score is the larger of the two: a shift in either block is enough. Thresholds come from the training
subjects themselves, each scored by a reference fitted without it (5-fold): 'unusual' above their 95th
percentile, 'outside' above the larger of their maximum and the 99.9th percentile of a log-normal fitted to
them. The verdict informs; it never refuses an input.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.site.acquisition import FEATURES as ACQUISITION_FEATURES

KIND = "mri2pet familiarity reference"
FORMAT = 2  # 1: the appearance block alone (before 2026-12-07)
BLOCKS = ("appearance", "acquisition")
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
VARIANCE_KEPT = {"appearance": 0.90, "acquisition": None}
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


def subject_features(pre, raw) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Both blocks' features of one preprocessed subject and its raw T1 (a nibabel image; None: its noise is
    unknown and counts as typical), and the acquisition values in their units (for the report)."""
    from mri2pet_cli.site.acquisition import acquisition_features, feature_vector
    from mri2pet_cli.space.atlas import template_maps

    contrast = pre.checks.get("wm_to_gm_ratio", float("nan"))
    acquisition = acquisition_features(raw, pre.native_affine, pre.native_to_mni, pre.mask, pre.grid, contrast)
    features = {
        "appearance": t1_features(pre.t1, pre.mask, template_maps(pre.grid).aal),
        "acquisition": feature_vector(acquisition),
    }
    return features, acquisition


def _fit(features: np.ndarray, variance_kept: float | None) -> dict:
    """PCA summary of standardised features (components to ``variance_kept``); None: each feature on its own
    (a diagonal model, mean z^2)."""
    known = np.isfinite(features)
    count = np.maximum(known.sum(axis=0), 1)
    filled = np.where(known, features, 0.0)
    mean = filled.sum(axis=0) / count  # a feature nobody has (noise without raw T1s) gets mean 0, SD 1
    sd = np.sqrt((np.where(known, features - mean, 0.0) ** 2).sum(axis=0) / count)
    sd = np.where(known.any(axis=0), np.maximum(sd, 1e-3), 1.0)
    if variance_kept is None:
        k = features.shape[1]
        return {
            "mean": mean,
            "sd": sd,
            "components": np.eye(k),
            "variance": np.ones(k),
            "q_mean": 1.0,
            "residual": False,
        }
    z = np.nan_to_num((features - mean) / sd)
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    variance = np.maximum(singular**2 / max(len(z) - 1, 1), 1e-12)
    kept = int(np.searchsorted(np.cumsum(variance) / variance.sum(), variance_kept - 1e-9) + 1)
    kept = max(1, min(kept, len(z) - 2, len(variance)))
    residual = kept < features.shape[1]
    model = {"mean": mean, "sd": sd, "components": vt[:kept], "variance": variance[:kept], "q_mean": 1.0}
    model["residual"] = residual
    if residual:
        model["q_mean"] = float(max(_parts(model, features)[1].mean(), 1e-9))
    return model


def _parts(model: dict, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.nan_to_num((np.atleast_2d(features) - model["mean"]) / model["sd"])  # a missing value counts as typical
    scores = z @ model["components"].T
    t2 = (scores**2 / model["variance"]).sum(axis=1)
    q = ((z - scores @ model["components"]) ** 2).sum(axis=1)
    return t2, q


def _score(model: dict, features: np.ndarray) -> np.ndarray:
    t2, q = _parts(model, features)
    if not model["residual"]:
        return t2 / len(model["variance"])
    return 0.5 * (t2 / len(model["variance"]) + q / model["q_mean"])


def build_reference(features: dict[str, np.ndarray], ids: list[str], source: str, seed: int = 0) -> dict:
    """The reference (each block's PCA summary and held-out median, thresholds, the training features) of
    ``features`` (block name -> subjects x features)."""
    features = {block: np.asarray(features[block], dtype=np.float64) for block in BLOCKS}
    n = len(ids)
    if n < 2 * FOLDS:
        raise Mri2PetError(f"{n} subjects are too few for a familiarity reference (at least {2 * FOLDS})")
    order = np.random.default_rng(seed).permutation(n)
    held_out = {block: np.empty(n) for block in BLOCKS}
    for fold in range(FOLDS):
        test = order[fold::FOLDS]
        train = np.setdiff1d(order, test)
        for block in BLOCKS:
            model = _fit(features[block][train], VARIANCE_KEPT[block])
            held_out[block][test] = _score(model, features[block][test])
    medians = {block: float(max(np.median(held_out[block]), 1e-9)) for block in BLOCKS}
    combined = np.max([held_out[block] / medians[block] for block in BLOCKS], axis=0)
    logs = np.log(combined)
    unusual = float(np.quantile(combined, 0.95))
    outside = float(max(combined.max(), np.exp(logs.mean() + 3.09 * logs.std(ddof=1))))
    blocks = {}
    for block in BLOCKS:
        model = _fit(features[block], VARIANCE_KEPT[block])
        blocks[block] = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in model.items()}
        blocks[block]["held_out_median"] = medians[block]
    raw_acquisition = np.exp(features["acquisition"])
    return {
        "kind": KIND,
        "format": FORMAT,
        "tool_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "source": source,
        "n_subjects": n,
        "subjects": list(ids),
        "features": {
            "appearance": "per AAL region mean and SD of the normalised T1 in the brain mask, then brain quantiles "
            + ", ".join(f"{q:g}" for q in QUANTILES),
            "acquisition": "logs of " + ", ".join(ACQUISITION_FEATURES) + " (mri2pet_cli/site/acquisition.py)",
        },
        "thresholds": {"unusual": unusual, "outside": outside},
        "held_out_scores": np.round(combined, 4).tolist(),
        "blocks": blocks,
        "acquisition_range": {name: _range(raw_acquisition[:, i]) for i, name in enumerate(ACQUISITION_FEATURES)},
        "training_features": {block: np.round(features[block], 6).tolist() for block in BLOCKS},
    }


def _range(values: np.ndarray) -> list[float | None]:
    finite = values[np.isfinite(values)]
    return [float(finite.min()), float(finite.max())] if finite.size else [None, None]


def _model_of(block: dict) -> dict:
    model = {k: np.asarray(block[k], dtype=np.float64) for k in ("mean", "sd", "components", "variance")}
    return model | {"q_mean": float(block["q_mean"]), "residual": bool(block["residual"])}


def familiarity(features: dict[str, np.ndarray], reference: dict, acquisition: dict[str, float] | None = None) -> dict:
    """The record's ``familiarity``: score, thresholds, verdict (typical / unusual / outside), each block's
    score, the block that drives the verdict and, given ``acquisition``, which values lie outside training's."""
    if reference.get("format", 1) < FORMAT:
        return {
            "verdict": None,
            "note": f"the familiarity reference ({reference.get('source', '?')}) was made by an older mri2pet: "
            "rerun `mri2pet calibrate --split ...` (or `adapt`) to remake it",
        }
    blocks = {
        block: float(_score(_model_of(reference["blocks"][block]), features[block])[0])
        / reference["blocks"][block]["held_out_median"]
        for block in BLOCKS
    }
    score = max(blocks.values())
    thresholds = reference["thresholds"]
    verdict = "outside" if score > thresholds["outside"] else "unusual" if score > thresholds["unusual"] else "typical"
    record = {
        "score": round(score, 4),
        "thresholds": thresholds,
        "verdict": verdict,
        "blocks": {block: round(value, 4) for block, value in blocks.items()},
        "driven_by": max(blocks, key=blocks.get),
        "reference": f"{reference['source']} ({reference['n_subjects']} subjects)",
        "meaning": {
            "typical": "like the T1s the model was trained on",
            "unusual": "less like them than 95 % of the training T1s: read the PET with care",
            "outside": "unlike any training T1: the synthetic PET and its z-scores are not to be trusted",
        }[verdict],
    }
    if acquisition is not None:
        ranges = reference["acquisition_range"]
        record["acquisition"] = {name: {"value": acquisition[name], "training_range": ranges[name]} for name in ranges}
        record["unlike_training"] = [
            name
            for name, (low, high) in ranges.items()
            if low is not None and np.isfinite(acquisition[name]) and not low <= acquisition[name] <= high
        ]
    return record


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


def raw_t1_of(record):
    """The raw T1 a cached preprocessing came from (its sidecar's ``sources``); None where it is gone."""
    import nibabel as nib

    from mri2pet_cli.preprocessing.storage import output_paths

    sidecar = output_paths(record.preproc_dir, record.subject_id)["json"]
    path = json.loads(sidecar.read_text()).get("sources", {}).get("t1")
    return nib.load(path) if path and Path(path).exists() else None


def records_features(records: list) -> tuple[list[str], dict[str, np.ndarray]]:
    """Both blocks' features of preprocessed subjects (their cached model-grid T1 and mask, and raw T1)."""
    from mri2pet_cli.preprocessing.storage import load_preprocessed

    ids, rows = [], {block: [] for block in BLOCKS}
    for record in records:
        pre = load_preprocessed(record.preproc_dir, record.subject_id)
        features, _ = subject_features(pre, raw_t1_of(record))
        ids.append(record.subject_id)
        for block in BLOCKS:
            rows[block].append(features[block])
    return ids, {block: np.array(values) for block, values in rows.items()}
