"""Synthetic PETs of a cohort, computed once per model and reused across runs and studies.

A prediction is stored as ``derivatives/mri2pet-synth/<model>-<sha256[:12]>/<subject>_age<age>.npy``
(float32, model grid): new weights or another age give another file, so a cached value is never stale. Writes are
atomic, so a killed run leaves no half file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from mri2pet_cli.models.runtime import predict
from mri2pet_cli.preprocessing.cohort import Arrays

SYNTHESIS_CACHE = "mri2pet-synth"


def cache_root(preproc_dir: Path) -> Path:
    """Beside the preprocessing cache (``derivatives/mri2pet-synth``), or inside a preprocessed folder."""
    preproc_dir = Path(preproc_dir)
    return (
        preproc_dir.parent / SYNTHESIS_CACHE if preproc_dir.name == "mri2pet-preproc" else preproc_dir / SYNTHESIS_CACHE
    )


def cache_file(folder: Path, subject: str, age: float | None) -> Path:
    label = "none" if age is None or not np.isfinite(age) else f"{age:g}"
    return folder / f"{subject}_age{label}.npy"


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    with os.fdopen(handle, "wb") as stream:
        np.save(stream, array.astype(np.float32))
    os.replace(temporary, path)


def cached_predict(
    model,
    card: dict,
    arrays: Arrays,
    cache_root: Path,
    *,
    ages: np.ndarray | None = None,
    device=None,
    progress=None,
) -> np.ndarray:
    """Point-estimate synthetic PETs of ``arrays`` (at ``ages``, default the subjects' own), cached."""
    ages = arrays.age if ages is None else np.asarray(ages, np.float32)
    folder = cache_root / f"{card['name']}-{card['sha256'][:12]}"
    out = np.empty_like(arrays.pet if arrays.pet.size else arrays.t1)
    for i, subject in enumerate(arrays.ids):
        path = cache_file(folder, subject, float(ages[i]))
        if path.exists():
            out[i] = np.load(path)
        else:
            pred, _ = predict(model, arrays.t1[i : i + 1], arrays.mask[i : i + 1], ages[i : i + 1], device=device)
            out[i] = pred[0]
            _save(pred[0], path)
        if progress:
            progress(subject, "ok")
    return out
