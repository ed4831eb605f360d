"""Where a synthesis writes: BIDS derivative names per subject, model and age."""

from __future__ import annotations

from pathlib import Path


def bids_label(text: str) -> str:
    """A BIDS label: letters and digits only ('dual-glow' -> 'dualglow', 72.5 -> '72p5')."""
    return "".join(c for c in str(text).replace(".", "p") if c.isalnum())


def output_paths(out_dir: Path, subject_id: str, model: str, age: float | None = None) -> dict[str, Path]:
    """Files of one synthesis (BIDS derivative names); with an age series each age gets its own (``_age-70``).

    The std map of a sampling model carries ``stat-std`` (as in BIDS statistical derivatives).
    """
    folder = Path(out_dir) / subject_id
    tag = "" if age is None else f"_age-{bids_label(f'{age:g}')}"
    desc = f"desc-{bids_label(model)}"
    stem = f"{subject_id}{tag}_{desc}"
    return {
        "pet_native": folder / f"{subject_id}{tag}_space-T1w_{desc}_pet.nii.gz",
        "pet_mni": folder / f"{subject_id}{tag}_space-MNI152_{desc}_pet.nii.gz",
        "std_native": folder / f"{subject_id}{tag}_space-T1w_{desc}_stat-std_pet.nii.gz",
        "std_mni": folder / f"{subject_id}{tag}_space-MNI152_{desc}_stat-std_pet.nii.gz",
        "roi_csv": folder / f"{stem}_roi.csv",
        "report_png": folder / f"{stem}_report.png",
        "report_html": folder / f"{stem}_report.html",
        "dicom_dir": folder / f"{subject_id}{tag}_{desc}_pet-dicom",
        "record": folder / f"{stem}_synthesis.json",
    }


def age_series_paths(out_dir: Path, subject_id: str, model: str) -> dict[str, Path]:
    folder = Path(out_dir) / subject_id
    return {
        "csv": folder / f"{subject_id}_desc-{bids_label(model)}_agecurve.csv",
        "png": folder / f"{subject_id}_desc-{bids_label(model)}_agecurve.png",
    }
