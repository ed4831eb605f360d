"""Finding subjects: single files, folders of NIfTI files, BIDS datasets, subject tables and DICOM.

A subject table is tab-separated with a ``participant_id`` column and optionally ``t1``, ``pet``
and ``age``. Relative paths in it are read from the table's folder, so that a table travels with
its images. Without a ``t1`` column (a BIDS ``participants.tsv``) each subject's T1 and PET are
found in the BIDS layout beside the table: ``sub-X/[ses-Y/]anat/*_T1w.nii[.gz]`` and
``sub-X/[ses-Y/]pet/*_pet.nii[.gz]``. A folder of DICOM files (or a .zip) is one subject, named after the
folder, whose T1 series is converted and chosen when the files are checked (see ``dicom``).

Subject ids become BIDS-safe labels: letters, digits and hyphens only, accents folded to ASCII
('Müller Hans_T1w.nii.gz' -> 'MullerHans').
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from mri2pet_cli.errors import InputImageError, Mri2PetError
from mri2pet_cli.io import is_nifti_path, open_volume

MISSING = (None, "", "n/a", "NA", "nan")


@dataclass(frozen=True)
class SubjectInput:
    subject_id: str
    t1: Path
    pet: Path | None = None
    age: float | None = None
    dicom: dict | None = None  # a DICOM input: its source (and, once converted, series and sidecar)
    preprocessed: Path | None = None  # a derivatives folder that may hold this subject's preprocessing


PREPROCESSED = Path("derivatives") / "mri2pet-preproc"  # in a dataset: what `preprocess` writes, all reuse

def safe_label(text: str) -> str:
    """Letters, digits and hyphens only (BIDS labels; hyphens keep 'sub-001'), accents folded to ASCII."""
    import unicodedata

    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded if c.isalnum() or c == "-").strip("-") or "subject"


def subject_id_from(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii", ".zip"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    for tag in ("_T1w", "_t1w", "_T1", "_t1"):
        if name.endswith(tag):
            name = name[: -len(tag)]
    return safe_label(name)


def read_table(table: Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a tab-separated table (blank lines skipped)."""
    lines = [line.rstrip("\r") for line in table.read_text().splitlines() if line.strip()]
    header = [h.strip() for h in lines[0].split("\t")] if lines else []
    return header, [dict(zip(header, (c.strip() for c in line.split("\t")))) for line in lines[1:]]


def read_participants(folder: Path) -> dict[str, dict[str, str]]:
    table = folder / "participants.tsv"
    if not table.exists():
        return {}
    _, rows = read_table(table)
    return {row["participant_id"]: row for row in rows if row.get("participant_id")}


def parse_age(value: str | None, where: str) -> float | None:
    if value in MISSING:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        raise InputImageError(f"{where}: age {value!r} is not a number") from None


def _sessions(folder: Path, sid: str) -> list[tuple[str, Path]]:
    """(subject id, folder holding anat/ and pet/) for a BIDS subject, one per session."""
    root = folder / sid
    sessions = sorted(p for p in root.glob("ses-*") if p.is_dir())
    if not sessions:
        return [(sid, root)]
    return [(f"{sid}_{ses.name}", ses) for ses in sessions]


def _first(folder: Path, pattern: str) -> Path | None:
    found = sorted(p for p in folder.glob(pattern) if is_nifti_path(p))
    return found[0] if found else None


def bids_layout_subjects(folder: Path, sid: str, age: float | None) -> list[SubjectInput]:
    out = []
    for subject_id, root in _sessions(folder, sid):
        t1 = _first(root / "anat", "*_T1w.nii*")
        if t1 is not None:
            pet = _first(root / "pet", "*_pet.nii*")
            out.append(SubjectInput(subject_id, t1, pet, age, preprocessed=folder / PREPROCESSED))
    return out


def preprocessed_subjects(folder: Path) -> list[SubjectInput]:
    """The subjects of a `preprocess` output folder, their raw T1 and PET named by each sidecar."""
    import json

    out = []
    for sidecar in sorted(folder.glob("*/*_preproc.json")):
        meta = json.loads(sidecar.read_text())
        sources = meta.get("sources", {})
        sid = meta.get("subject_id", sidecar.parent.name)
        if "t1" not in sources:
            raise InputImageError(f"{sidecar}: names no source T1; preprocess the raw T1 again")
        pet = Path(sources["pet"]) if sources.get("pet") else None
        t1, dicom = Path(sources["t1"]), sources.get("dicom")
        if dicom:  # its converted T1 lived for that run only: convert the same series again (same bytes)
            t1, dicom = Path(dicom["source"]), {"source": dicom["source"], "series_wanted": dicom["series_number"]}
        out.append(SubjectInput(sid, t1, pet, dicom=dicom, preprocessed=folder))
    return out


def bids_subjects(folder: Path) -> list[SubjectInput]:
    """Every subject (and session) with a T1w in a BIDS(-like) dataset, ages from participants.tsv."""
    participants = read_participants(folder)
    out: list[SubjectInput] = []
    for sub in sorted(p.name for p in folder.glob("sub-*") if p.is_dir()):
        age = parse_age(participants.get(sub, {}).get("age"), str(folder / "participants.tsv"))
        out.extend(bids_layout_subjects(folder, sub, age))
    return out


def subjects_from_tsv(table: Path) -> list[SubjectInput]:
    """Subjects of a table: ``participant_id`` and ``t1`` (or a BIDS layout beside it), ``pet``, ``age``."""
    header, rows = read_table(table)
    if "participant_id" not in header:
        raise InputImageError(f"{table}: a subject table needs a participant_id column (tab-separated)")
    out = []
    for number, row in enumerate(rows, start=2):
        sid = row.get("participant_id", "")
        age = parse_age(row.get("age"), f"{table}: line {number}")
        if "t1" in header:
            pet = table.parent / row["pet"] if row.get("pet") not in MISSING else None
            out.append(SubjectInput(sid, table.parent / row.get("t1", ""), pet, age))
            continue
        found = bids_layout_subjects(table.parent, sid, age)
        if not found:
            raise InputImageError(
                f"{table}: line {number}: no {sid}/anat/*_T1w.nii[.gz] beside the table",
                hint="add a t1 column with each subject's T1 path",
            )
        out.extend(found)
    return out


def find_subjects(
    inputs: list[Path],
    pet: Path | None = None,
    with_pet: bool = True,
    age: float | None = None,
    dicom_series: int | None = None,
) -> list[SubjectInput]:
    """Every T1 named by ``inputs`` (files, folders, BIDS datasets, subject tables, DICOM folders or zips),
    with PET where known. ``dicom_series``: the series number to take from DICOM inputs."""
    from mri2pet_cli.preprocessing.dicom import looks_like_dicom

    def dicom_subject(item: Path) -> SubjectInput:
        source = {"source": str(item), "series_wanted": dicom_series}
        return SubjectInput(subject_id_from(item), item, dicom=source)

    subjects: list[SubjectInput] = []
    for item in inputs:
        item = Path(item)
        if item.suffix == ".tsv" and item.is_file():
            subjects.extend(subjects_from_tsv(item))
        elif item.is_dir():
            # a dataset first: a BIDS folder may keep its DICOM in sourcedata/
            found = bids_subjects(item) or preprocessed_subjects(item)
            if not found:
                found = [SubjectInput(subject_id_from(p), p) for p in sorted(item.iterdir()) if is_nifti_path(p)]
            if not found and looks_like_dicom(item):
                found = [dicom_subject(item)]
            if not found:
                raise InputImageError(
                    f"{item}: no NIfTI files, no sub-*/anat/*_T1w.nii.gz and no preprocessed subjects in this folder"
                )
            subjects.extend(found)
        elif looks_like_dicom(item):  # a .zip
            subjects.append(dicom_subject(item))
        else:
            subjects.append(SubjectInput(subject_id_from(item), item))
    if pet is not None:
        if len(subjects) != 1:
            raise InputImageError(f"{pet}: --pet goes with exactly one T1, got {len(subjects)}")
        subjects = [replace(subjects[0], pet=Path(pet))]
    if not with_pet:
        subjects = [replace(s, pet=None) for s in subjects]
    if age is not None:
        if len(subjects) != 1:
            raise InputImageError(f"--age goes with exactly one T1, got {len(subjects)} (use a subject TSV with ages)")
        subjects = [replace(subjects[0], age=age)]
    ids = [s.subject_id for s in subjects]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputImageError(f"two inputs share the subject id {duplicates[0]!r}; rename one of them")
    return subjects


def converted(subject: SubjectInput) -> SubjectInput:
    """A DICOM subject with its T1 series converted to NIfTI and chosen; any other subject as it is."""
    if subject.dicom is None or "sidecar" in subject.dicom:
        return subject
    from mri2pet_cli.preprocessing.dicom import choose_t1, convert, dicom_provenance

    source = Path(subject.dicom["source"])
    series = choose_t1(convert(source), source, subject.dicom.get("series_wanted"))
    return replace(subject, t1=series.nifti, dicom=dicom_provenance(source, series))


def check_subject_files(
    subjects: list[SubjectInput], *, require_one: bool = True
) -> tuple[list[SubjectInput], dict[str, str]]:
    """Split subjects into those whose files open as 3D NIfTI images and the others (id -> reason).

    Only headers are read, so a batch learns of a missing or non-NIfTI file before any work.
    Raises when no subject is usable (unless ``require_one`` is off, as for one shard of a batch):
    the whole command is then a bad input (exit code 2).
    """
    good, bad = [], {}
    for subject in subjects:
        try:
            subject = converted(subject)
            open_volume(subject.t1, what="T1")
            if subject.pet is not None:
                open_volume(subject.pet, what="PET")
            good.append(subject)
        except Mri2PetError as exc:
            bad[subject.subject_id] = str(exc)
    if subjects and not good and require_one:
        if len(bad) == 1:
            raise InputImageError(next(iter(bad.values())))
        first = next(iter(bad.items()))
        raise InputImageError(f"none of the {len(bad)} inputs can be read; first: {first[0]}: {first[1]}")
    return good, bad
