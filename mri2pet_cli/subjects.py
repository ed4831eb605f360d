"""Finding subjects: single files, folders of NIfTI files, or a BIDS-like dataset as `simulate` writes it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import InputImageError
from .io import is_nifti_path


@dataclass(frozen=True)
class SubjectInput:
    subject_id: str
    t1: Path
    pet: Path | None = None
    age: float | None = None


def subject_id_from(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for tag in ("_T1w", "_t1w", "_T1", "_t1"):
        if name.endswith(tag):
            name = name[: -len(tag)]
    return name


def read_participants(folder: Path) -> dict[str, dict[str, str]]:
    table = folder / "participants.tsv"
    if not table.exists():
        return {}
    lines = [line for line in table.read_text().splitlines() if line.strip()]
    header = lines[0].split("\t")
    return {row[0]: dict(zip(header, row)) for row in (line.split("\t") for line in lines[1:])}


def bids_subjects(folder: Path) -> list[SubjectInput]:
    participants = read_participants(folder)
    out = []
    for anat in sorted(folder.glob("sub-*/anat/*_T1w.nii*")):
        sid = anat.parent.parent.name
        pets = sorted((folder / sid / "pet").glob("*_pet.nii*"))
        age = participants.get(sid, {}).get("age")
        out.append(SubjectInput(sid, anat, pets[0] if pets else None, float(age) if age else None))
    return out


def find_subjects(inputs: list[Path], pet: Path | None = None, with_pet: bool = True) -> list[SubjectInput]:
    """Every T1 named by ``inputs`` (files, folders, BIDS-like datasets), with PET where known."""
    subjects: list[SubjectInput] = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = bids_subjects(item)
            if not found:
                found = [SubjectInput(subject_id_from(p), p) for p in sorted(item.iterdir()) if is_nifti_path(p)]
            if not found:
                raise InputImageError(f"{item}: no NIfTI files and no sub-*/anat/*_T1w.nii.gz in this folder")
            subjects.extend(found)
        else:
            subjects.append(SubjectInput(subject_id_from(item), item))
    if pet is not None:
        if len(subjects) != 1:
            raise InputImageError(f"{pet}: --pet goes with exactly one T1, got {len(subjects)}")
        subjects = [SubjectInput(subjects[0].subject_id, subjects[0].t1, Path(pet), subjects[0].age)]
    if not with_pet:
        subjects = [SubjectInput(s.subject_id, s.t1, None, s.age) for s in subjects]
    ids = [s.subject_id for s in subjects]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputImageError(f"two inputs share the subject id {duplicates[0]!r}; rename one of them")
    return subjects
