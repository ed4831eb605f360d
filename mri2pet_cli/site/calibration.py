"""`mri2pet calibrate`: per-region 90 % intervals from paired subjects that no training or selection saw.

A calibration file holds, for one set of weights, the split-conformal half-width of each AAL region
and key region (conformal.py), the subjects it came from and the data's fingerprint. ``synthesize``
reads the shipped ``weights/<model>.calibration.json`` (made on the v3 split's calibration part) or a
lab's own (``--calibration FILE``) and gives every regional SUVR its interval.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.site.conformal import MIN_SUBJECTS, regional_half_widths

KIND = "mri2pet split-conformal regional calibration"


def regional_suvr(pet: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Mean SUVR in every AAL region (keys: label numbers as text) and key region (keys: their names)."""
    from mri2pet_cli.reporting.key_regions import key_region_means
    from mri2pet_cli.space.atlas import roi_means

    values = {str(k): v for k, v in roi_means(pet, labels, mask > 0).items()}
    return values | key_region_means(pet, labels, mask > 0)


def paired_regional_values(model, card: dict, records: list, device, progress=None) -> tuple[list, list, list]:
    """(ids, real, synthetic): each subject's regional SUVRs, the synthetic ones as ``synthesize`` makes them
    (point estimate, re-normalised to the cerebellum), the predictions cached beside the preprocessing."""
    from mri2pet_cli.evaluation.cache import cache_root, cached_predict
    from mri2pet_cli.preprocessing.cohort import load_arrays, record_grid
    from mri2pet_cli.preprocessing.normalise import model_output_to_suvr
    from mri2pet_cli.space.atlas import template_maps

    ids, real, synthetic = [], [], []
    for start in range(0, len(records), 8):
        chunk = records[start : start + 8]
        arrays = load_arrays(chunk)
        grid = record_grid(chunk[0])
        labels = template_maps(grid).aal
        predicted = cached_predict(model, card, arrays, cache_root(chunk[0].preproc_dir), device=device)
        for i, sid in enumerate(arrays.ids):
            brain = arrays.mask[i] > 0
            pet, _ = model_output_to_suvr(predicted[i], grid, brain)
            ids.append(sid)
            real.append(regional_suvr(arrays.pet[i], labels, brain))
            synthetic.append(regional_suvr(pet, labels, brain))
            if progress:
                progress(sid, "ok")
    return ids, real, synthetic


def regional_arrays(real: list[dict], synthetic: list[dict]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(real, synthetic) as (subjects, regions) arrays over the region keys every subject has, and those keys."""
    keys = [k for k in real[0] if all(k in r and k in s for r, s in zip(real, synthetic))]
    return np.array([[r[k] for k in keys] for r in real]), np.array([[s[k] for k in keys] for s in synthetic]), keys


def fit_calibration(real: list[dict], synthetic: list[dict], coverage: float = 0.90) -> dict[str, float]:
    """Half-width per region key present in every subject."""
    real_arr, synth_arr, keys = regional_arrays(real, synthetic)
    widths = regional_half_widths(real_arr, synth_arr, coverage=coverage)
    return {k: float(w) for k, w in zip(keys, widths) if np.isfinite(w)}


def calibrate(
    model_name: str,
    data: str | Path,
    *,
    weights: str | None = None,
    subjects: list[str] | None = None,
    coverage: float = 0.90,
    device: str = "auto",
    jobs: int = 1,
    progress=None,
) -> dict:
    """The calibration of ``model_name``'s weights on the paired subjects of ``data`` (``subjects``: only those)."""
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.cohort import data_fingerprint, prepare_dataset

    if not 0.5 <= coverage < 1.0:
        raise Mri2PetError(f"--coverage {coverage:g} must lie in 0.5-0.99")
    model, card, files = load_model(model_name, weights)
    records, failed = prepare_dataset(data, jobs=jobs, only=subjects)
    if subjects is not None and (missing := sorted(set(subjects) - {r.subject_id for r in records})):
        raise Mri2PetError(f"{data}: {len(missing)} calibration subjects have no T1/PET pair: {', '.join(missing[:5])}")
    if len(records) < MIN_SUBJECTS:
        raise Mri2PetError(
            f"{data}: {len(records)} paired subjects are too few to calibrate",
            hint=f"{coverage:.0%} intervals need at least {MIN_SUBJECTS}; 20 or more give stable widths",
        )
    ids, real, synthetic = paired_regional_values(model, card, records, resolve_device(device), progress)
    half_widths = fit_calibration(real, synthetic, coverage)
    return {
        "kind": KIND,
        "tool_version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "model": model_name,
        "weights_sha256": card.get("sha256"),
        "weights": str(Path(files.weights).resolve()),
        "coverage": coverage,
        "reference_region": "cerebellum",
        "n_subjects": len(ids),
        "subjects": ids,
        "failed": failed,
        "data": str(Path(data).resolve()),
        "data_sha256": data_fingerprint(records),
        "method": "split-conformal: the ceil((n + 1) x coverage)-th smallest |real - synthetic| regional SUVR",
        "half_width_suvr": half_widths,
    }


def calibration_path_for(weights_path: Path) -> Path:
    """Where shipped (or exported) weights keep their calibration: ``<name>.calibration.json`` beside them."""
    return weights_path.with_name(weights_path.stem + ".calibration.json")


def load_calibration(path: str | Path, card: dict) -> dict:
    """A calibration file for these weights (one-line errors otherwise)."""
    path = Path(path)
    try:
        calibration = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise Mri2PetError(f"{path}: not a readable calibration file ({exc})") from None
    if not isinstance(calibration, dict) or calibration.get("kind") != KIND:
        raise Mri2PetError(f"{path}: not an mri2pet calibration file", hint="make one with `mri2pet calibrate`")
    if calibration.get("weights_sha256") != card.get("sha256"):
        raise Mri2PetError(
            f"{path}: made for other weights of model {calibration.get('model')} "
            f"(sha256 {str(calibration.get('weights_sha256'))[:12]}..., these are {str(card.get('sha256'))[:12]}...)",
            hint="calibrate these weights with `mri2pet calibrate`",
        )
    return calibration | {"file": str(path.resolve())}


def calibration_for(files, card: dict, explicit: str | None) -> dict | None:
    """The calibration ``synthesize`` uses: ``--calibration FILE``, else the one beside the weights, else None."""
    if explicit:
        return load_calibration(explicit, card)
    beside = calibration_path_for(Path(files.weights))
    return load_calibration(beside, card) if beside.exists() else None
