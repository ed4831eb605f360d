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


def subjects_from_tsv(table: Path) -> list[SubjectInput]:
    """A TSV with columns participant_id, t1 (path, relative to the TSV's folder) and optionally age, pet."""
    lines = [line for line in table.read_text().splitlines() if line.strip()]
    header = lines[0].split("\t") if lines else []
    if "participant_id" not in header or "t1" not in header:
        raise InputImageError(f"{table}: a subject table needs the columns participant_id and t1 (tab-separated)")
    out = []
    for number, line in enumerate(lines[1:], start=2):
        row = dict(zip(header, line.split("\t")))
        try:
            age = float(row["age"]) if row.get("age") not in (None, "", "n/a") else None
        except ValueError:
            raise InputImageError(f"{table}: line {number}: age {row.get('age')!r} is not a number") from None
        pet = table.parent / row["pet"] if row.get("pet") not in (None, "", "n/a") else None
        out.append(SubjectInput(row["participant_id"], table.parent / row["t1"], pet, age))
    return out


def find_subjects(
    inputs: list[Path], pet: Path | None = None, with_pet: bool = True, age: float | None = None
) -> list[SubjectInput]:
    """Every T1 named by ``inputs`` (files, folders, BIDS-like datasets, subject TSVs), with PET where known."""
    subjects: list[SubjectInput] = []
    for item in inputs:
        item = Path(item)
        if item.suffix == ".tsv" and item.is_file():
            subjects.extend(subjects_from_tsv(item))
        elif item.is_dir():
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
    if age is not None:
        if len(subjects) != 1:
            raise InputImageError(f"--age goes with exactly one T1, got {len(subjects)} (use a subject TSV with ages)")
        subjects = [SubjectInput(subjects[0].subject_id, subjects[0].t1, subjects[0].pet, age)]
    ids = [s.subject_id for s in subjects]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputImageError(f"two inputs share the subject id {duplicates[0]!r}; rename one of them")
    return subjects
