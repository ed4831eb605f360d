"""DICOM input: a folder of DICOM files (or a .zip of one) converted by dcm2niix, whose wheel carries the
binary, and the T1-weighted series chosen by a written rule.

The rule, in order:
1. dcm2niix converts every series and leaves out derived, localizer and 2D images (``-i y``).
2. A series is a T1 candidate when it is one 3D MR volume whose series description or protocol name reads
   as T1-weighted (T1, MPRAGE, SPGR, BRAVO, TFL, TFE, FLASH, ...) and not as another contrast (T2, FLAIR,
   PD, diffusion, SWI, perfusion, BOLD, TOF) or as a scout, localizer or projection.
3. Of several candidates, 3D acquisitions (``MRAcquisitionType`` 3D) win over 2D ones.
4. Still several (e.g. before and after contrast), none, or a series that does not convert to one volume
   (mixed slice sizes): a one-line error lists every series found; ``--dicom-series N`` picks one by its
   series number.

The converted NIfTI (uncompressed, so the same DICOM gives the same bytes) lives in a temporary folder
for the run; dcm2niix's BIDS sidecar (anonymised: no names or dates) goes into the outputs' provenance.
"""

from __future__ import annotations

import atexit
import json
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mri2pet_cli.errors import InputImageError

T1_WORDS = re.compile(r"t1|mp-?rage|mp_rage|spgr|bravo|tfl|tfe|flash|mprage|ir-?prep", re.IGNORECASE)
OTHER_WORDS = re.compile(
    r"t2|flair|\bpd\b|dwi|dti|diff|swi|perf|bold|fmri|tof|asl|scout|locali[sz]er|survey|\bmip\b|\bmpr\b",
    re.IGNORECASE,
)
DICOM_MAGIC_OFFSET = 128


@dataclass(frozen=True)
class Series:
    number: int | None
    description: str
    nifti: Path
    sidecar: dict
    shape: tuple[int, ...]
    files_dir: Path  # the folder dcm2niix read (for a zip, where it was unpacked)

    def label(self) -> str:
        size = "x".join(str(s) for s in self.shape)
        return f"#{self.number if self.number is not None else '?'} '{self.description}' ({size})"


def is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(DICOM_MAGIC_OFFSET)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def looks_like_dicom(path: Path, probe: int = 20) -> bool:
    """A .zip, or a folder with DICOM files in it (or in its sub-folders) and no NIfTI file of its own."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if not path.is_dir() or any(p.name.lower().endswith((".nii", ".nii.gz")) for p in path.iterdir()):
        return False
    files = (p for p in path.rglob("*") if p.is_file())
    return any(is_dicom_file(p) for _, p in zip(range(probe), files))


def _work_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="mri2pet-dicom-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _unpacked(source: Path) -> Path:
    if source.is_dir():
        return source
    target = _work_dir()
    try:
        with zipfile.ZipFile(source) as archive:
            archive.extractall(target)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputImageError(f"{source}: not a readable zip file ({exc})") from None
    return target


def convert(source: Path) -> list[Series]:
    """Every series dcm2niix finds in ``source``, converted; a one-line error where it finds none."""
    import dcm2niix
    import nibabel as nib

    folder = _unpacked(Path(source))
    out = _work_dir()
    command = [dcm2niix.bin, "-z", "n", "-b", "y", "-ba", "y", "-i", "y", "-f", "%s_%d", "-o", str(out), str(folder)]
    done = subprocess.run(command, capture_output=True, text=True)
    series = []
    for nifti in sorted(out.glob("*.nii")):
        sidecar_path = nifti.with_suffix(".json")
        sidecar = json.loads(sidecar_path.read_text()) if sidecar_path.exists() else {}
        description = sidecar.get("SeriesDescription") or sidecar.get("ProtocolName") or nifti.stem
        shape = tuple(int(s) for s in nib.load(str(nifti)).shape)
        series.append(Series(sidecar.get("SeriesNumber"), str(description), nifti, sidecar, shape, folder))
    if not series:
        reason = (done.stderr or done.stdout).strip().splitlines()
        detail = f" (dcm2niix: {reason[-1]})" if reason else ""
        raise InputImageError(f"{source}: no DICOM image series found{detail}")
    return series


def is_t1_candidate(series: Series) -> bool:
    text = " ".join(str(series.sidecar.get(k, "")) for k in ("SeriesDescription", "ProtocolName"))
    text = text.strip() or series.description
    modality = series.sidecar.get("Modality", "MR")
    volume = len(series.shape) == 3 and min(series.shape) > 1
    return modality == "MR" and volume and bool(T1_WORDS.search(text)) and not OTHER_WORDS.search(text)


def choose_t1(series: list[Series], source: Path, wanted: int | None = None) -> Series:
    """The T1-weighted series by the module's rule (or series number ``wanted``); a one-line error else."""
    listing = "; ".join(s.label() for s in series)
    if wanted is not None:
        chosen = [s for s in series if s.number == wanted]
        if not chosen:
            raise InputImageError(f"{source}: no series number {wanted}; found {listing}")
        if len(chosen[0].shape) != 3:
            raise InputImageError(f"{source}: series {wanted} is not one 3D volume; found {listing}")
        return chosen[0]
    candidates = [s for s in series if is_t1_candidate(s)]
    three_d = [s for s in candidates if str(s.sidecar.get("MRAcquisitionType", "")).upper() == "3D"]
    candidates = three_d or candidates
    if not candidates:
        raise InputImageError(f"{source}: no T1-weighted 3D series among {len(series)}: {listing}")
    if len(candidates) > 1:
        names = "; ".join(s.label() for s in candidates)
        raise InputImageError(
            f"{source}: {len(candidates)} T1-weighted series ({names}); pick one with --dicom-series N"
        )
    return candidates[0]


def dicom_provenance(source: Path, series: Series) -> dict:
    """What the outputs' record keeps of a DICOM input: where, which series, and dcm2niix's sidecar."""
    import dcm2niix

    return {
        "source": str(Path(source).resolve()),
        "series_number": series.number,
        "series_description": series.description,
        "converter": f"dcm2niix {dcm2niix.__version__}",
        "files_dir": str(series.files_dir),  # read again by --dicom-out for the patient and study
        "sidecar": series.sidecar,
    }
