"""Paired training / evaluation data: a raw BIDS-like dataset, preprocessed once and cached.

The cache lives in ``<data>/derivatives/mri2pet-preproc/<subject>/`` (what `mri2pet preprocess`
writes). A folder that already holds such outputs is used as it is.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mri2pet_cli.batch import run_batch
from mri2pet_cli.errors import InputImageError, Mri2PetError
from mri2pet_cli.preprocessing.inputs import bids_subjects, read_participants
from mri2pet_cli.preprocessing.storage import load_preprocessed, output_paths, preprocess_and_save

CACHE = Path("derivatives") / "mri2pet-preproc"


@dataclass(frozen=True)
class Record:
    subject_id: str
    age: float | None
    diagnosis: str | None
    preproc_dir: Path


@dataclass
class Arrays:
    """Model-grid arrays of a set of subjects, stacked: (n, X, Y, Z)."""

    ids: list[str]
    t1: np.ndarray
    mask: np.ndarray
    pet: np.ndarray
    age: np.ndarray  # NaN where unknown
    diagnosis: list[str | None] = field(default_factory=list)  # empty where not loaded from records


def _cached_ids(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("*/*_preproc.json"))


def paired_subject_ids(data_dir: str | Path) -> list[str]:
    """Ids of the subjects with a T1 and a PET, raw or preprocessed, before any preprocessing runs."""
    data_dir = Path(data_dir)
    raw = bids_subjects(data_dir) if data_dir.is_dir() else []
    if raw:
        return sorted(s.subject_id for s in raw if s.pet is not None)
    return [sid for sid in _cached_ids(data_dir) if output_paths(data_dir, sid)["pet"].exists()]


def prepare_dataset(
    data_dir: str | Path, *, jobs: int = 1, only: list[str] | None = None, t1_only: bool = False
) -> tuple[list[Record], dict[str, str]]:
    """Preprocess (or find) every paired subject (``only``: those ids); returns the records and the failures.

    ``t1_only``: the subjects with a T1 and no PET instead (the study's complete-dataset rows use them).
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise InputImageError(f"{data_dir}: data folder not found")
    participants = read_participants(data_dir)
    failed: dict[str, str] = {}
    raw = bids_subjects(data_dir)
    if raw:
        cache = data_dir / CACHE
        todo = [s for s in raw if (s.pet is None) == t1_only and not output_paths(cache, s.subject_id)["json"].exists()]
        todo = [s for s in todo if only is None or s.subject_id in only]
        if todo:
            work = functools.partial(preprocess_and_save, out_dir=cache)
            failed = run_batch(work, todo, key=lambda s: s.subject_id, jobs=jobs, label="preprocessing").failed
    else:
        cache = data_dir
    records = []
    for sid in _cached_ids(cache):
        if only is not None and sid not in only:
            continue
        if output_paths(cache, sid)["pet"].exists() == t1_only:
            continue  # a T1 without PET cannot train or be scored; with t1_only, only those
        row = participants.get(sid, {})
        age = row.get("age")
        records.append(Record(sid, float(age) if age not in (None, "", "n/a") else None, row.get("diagnosis"), cache))
    if not records and not t1_only:
        raise InputImageError(f"{data_dir}: no subject with both a T1 and a PET (raw BIDS-like or preprocessed)")
    return records, failed


def data_fingerprint(records: list[Record]) -> str:
    """sha256 over the subjects' ids, ages and preprocessed model-grid files: which data a run saw."""
    import hashlib

    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: r.subject_id):
        digest.update(f"{record.subject_id}\t{record.age}\n".encode())
        paths = output_paths(record.preproc_dir, record.subject_id)
        for key in ("t1", "mask", "pet"):
            if paths[key].exists():
                digest.update(hashlib.sha256(paths[key].read_bytes()).digest())
    return digest.hexdigest()


def record_grid(record: Record):
    """The model grid a subject was preprocessed onto (from its JSON)."""
    from mri2pet_cli.space.grid import ModelGrid

    meta = json.loads(output_paths(record.preproc_dir, record.subject_id)["json"].read_text())
    return ModelGrid.from_description(meta["grid"])


def load_arrays(records: list[Record]) -> Arrays:
    """Stacked model-grid arrays; a subject without PET gets NaN there (T1-only subjects of the study)."""
    items = [load_preprocessed(r.preproc_dir, r.subject_id) for r in records]
    return Arrays(
        ids=[r.subject_id for r in records],
        t1=np.stack([i.t1 for i in items]).astype(np.float32),
        mask=np.stack([i.mask for i in items]).astype(np.float32),
        pet=np.stack([np.full(i.t1.shape, np.nan) if i.pet is None else i.pet for i in items]).astype(np.float32),
        age=np.array([np.nan if r.age is None else r.age for r in records], dtype=np.float32),
        diagnosis=[r.diagnosis for r in records],
    )


SPLIT_PARTS = ("test", "validation", "calibration", "train")


def split_subjects(
    ids: list[str], seed: int, val_fraction: float, test_fraction: float, calibration_fraction: float = 0.0
) -> dict[str, list[str]]:
    """Subject-level train / validation / test split, reproducible from the seed.

    ``calibration_fraction`` > 0 also sets aside a calibration part (for interval calibration; no model
    selection may see it), drawn after test and validation so that the other parts stay as they were.
    """
    order = sorted(ids)
    rng = np.random.default_rng(seed)
    rng.shuffle(order)

    def count(fraction: float) -> int:
        return max(1, int(round(fraction * len(order)))) if fraction > 0 else 0

    n_test, n_val, n_cal = count(test_fraction), count(val_fraction), count(calibration_fraction)
    if len(order) - n_test - n_val - n_cal < 1:
        raise InputImageError(f"{len(order)} subjects are too few to split into train / validation / test")
    split = {
        "test": sorted(order[:n_test]),
        "validation": sorted(order[n_test : n_test + n_val]),
        "calibration": sorted(order[n_test + n_val : n_test + n_val + n_cal]),
        "train": sorted(order[n_test + n_val + n_cal :]),
    }
    return split if n_cal else {k: v for k, v in split.items() if k != "calibration"}


def write_split(split: dict, path: Path) -> None:
    from mri2pet_cli.io import write_text_atomic

    write_text_atomic(json.dumps(split, indent=2), path, overwrite=True)


def read_split(path: str | Path, data_dir: str | Path | None = None) -> dict[str, list[str]]:
    """A split.json as a run writes it (or a shipped one, with a calibration part and its cohort);
    a one-line error where it is not one, where parts overlap, or where it names another cohort than
    ``data_dir``'s."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputImageError(f"{path}: not a readable split file ({exc})") from None
    if not isinstance(split, dict) or any(not isinstance(split.get(k), list) for k in ("train", "validation", "test")):
        raise InputImageError(f"{path}: a split file needs lists 'train', 'validation' and 'test'")
    if not split["train"]:
        raise InputImageError(f"{path}: the split has no training subjects")
    parts = {k: [str(s) for s in split[k]] for k in SPLIT_PARTS if isinstance(split.get(k), list)}
    seen: dict[str, str] = {}
    if split.get("validation_in_sample") is True:  # a final fit on every pair (adapt): validation is only a log
        parts = {k: v for k, v in parts.items() if k != "validation"}
    for part, ids in parts.items():
        for sid in ids:
            if sid in seen:
                raise InputImageError(f"{path}: subject {sid} is in both '{seen[sid]}' and '{part}'")
            seen[sid] = part
    if data_dir is not None and isinstance(split.get("cohort"), dict):
        check_split_cohort(split["cohort"], data_dir, path)
    return {k: [str(s) for s in split[k]] for k in SPLIT_PARTS if isinstance(split.get(k), list)}


def cohort_description(data_dir: str | Path) -> dict | None:
    """What `simulate` recorded about a cohort (version, n, seed, ...); None for other data."""
    path = Path(data_dir) / "dataset_description.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get("mri2pet_simulation")


def check_split_cohort(expected: dict, data_dir: str | Path, split_path: Path) -> None:
    """A split drawn for one simulated cohort, refused on another (same ids, other subjects)."""
    actual = cohort_description(data_dir)
    if actual is None:
        return  # a lab's own data: the ids are all there is to check
    differ = [k for k in ("version", "n", "seed") if k in expected and actual.get(k) != expected[k]]
    if differ:
        found = ", ".join(f"{k} {actual.get(k)} (split: {expected[k]})" for k in differ)
        raise InputImageError(f"{split_path}: drawn for another simulated cohort than {data_dir}: {found}")


def subset(arrays: Arrays, ids: list[str]) -> Arrays:
    pick = [arrays.ids.index(i) for i in ids]
    diagnosis = [arrays.diagnosis[i] for i in pick] if arrays.diagnosis else []
    return Arrays(
        [arrays.ids[i] for i in pick], arrays.t1[pick], arrays.mask[pick], arrays.pet[pick], arrays.age[pick], diagnosis
    )


def check_split_present(split: dict, parts: tuple[str, ...], by_id: dict, data: str) -> None:
    """A one-line error naming the subjects of ``split[parts]`` that the data folder lacks."""
    missing = [s for part in parts for s in split[part] if s not in by_id]
    if missing:
        raise Mri2PetError(f"{data}: subjects of the recorded split are missing: {', '.join(missing[:5])}")
