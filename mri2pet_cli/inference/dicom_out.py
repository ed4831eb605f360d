"""DICOM out: the synthetic PET on the patient's T1 grid as a PET Image Storage series that a PACS viewer
can show and fuse with the MRI.

Marked so that no one takes it for an acquired scan: ImageType DERIVED\\SECONDARY, the series description
"SYNTHETIC FDG-PET mri2pet MODEL RESEARCH ONLY", and the image comments. Values are SUVR (Units NONE),
stored as 16-bit integers with a rescale slope. With a DICOM input the series joins the T1's patient, study
and frame of reference (read from the T1 series' own files); from a NIfTI input it opens a new study with
empty patient fields, and the series description says so. Every UID derives from the request (inputs' and
weights' hashes), so the same input gives the same bytes. Written into a temporary folder, then renamed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.errors import OutputExistsError

PET_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
LINKED_FROM_SOURCE = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "FrameOfReferenceUID",
)


def slice_geometry(affine: np.ndarray) -> tuple[np.ndarray, list[float], list[float], float]:
    """(LPS affine, ImageOrientationPatient, PixelSpacing, slice spacing) of slices along voxel axis 2,
    whose DICOM rows run along voxel axis 1 and columns along axis 0."""
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    orientation = [float(v) for v in (*(lps[:3, 0] / spacing[0]), *(lps[:3, 1] / spacing[1]))]
    return lps, orientation, [float(spacing[1]), float(spacing[0])], float(spacing[2])


def set_slice(ds, affine: np.ndarray, stored: np.ndarray, k: int, slope: float) -> None:
    """Slice ``k`` (voxel axis 2) of the int16 volume ``stored`` into ``ds``: its place, the pixel module
    and the rescale slope back to the volume's values."""
    lps, orientation, pixel_spacing, thickness = slice_geometry(affine)
    ds.ImagePositionPatient = [float(v) for v in (lps @ [0.0, 0.0, k, 1.0])[:3]]
    ds.ImageOrientationPatient = orientation
    ds.PixelSpacing, ds.SliceThickness = pixel_spacing, thickness
    ds.Rows, ds.Columns = stored.shape[1], stored.shape[0]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
    ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()


def source_attributes(dicom: dict | None) -> dict:
    """Patient, study and frame of reference of the T1 series a DICOM input came from (empty otherwise)."""
    if not dicom or not dicom.get("files_dir"):
        return {}
    import pydicom

    wanted = dicom.get("series_number")
    for path in sorted(Path(dicom["files_dir"]).rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:  # noqa: BLE001 - any file that is not DICOM is passed over
            continue
        if wanted is None or ds.get("SeriesNumber") == wanted:
            return {k: ds.get(k) for k in LINKED_FROM_SOURCE if ds.get(k) not in (None, "")}
    return {}


def write_pet_series(
    pet: nib.Nifti1Image,
    folder: Path,
    *,
    subject_id: str,
    model: str,
    seed_text: str,
    dicom: dict | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """One DICOM file per slice of ``pet`` (SUVR, native T1 grid) in ``folder``; the files written."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    if folder.exists() and not overwrite:
        raise OutputExistsError(f"{folder}: already exists", hint="pass --overwrite to replace it")
    data = np.nan_to_num(np.asarray(pet.dataobj, dtype=np.float64)).clip(min=0.0)
    slope = max(float(data.max()), 1e-6) / 32000.0
    stored = np.round(data / slope).astype(np.int16)
    linked = source_attributes(dicom)
    study_uid = linked.get("StudyInstanceUID") or generate_uid(entropy_srcs=[seed_text, "study"])
    series_uid = generate_uid(entropy_srcs=[seed_text, "series", model])
    frame_uid = linked.get("FrameOfReferenceUID") or generate_uid(entropy_srcs=[seed_text, "frame"])
    # LO: at most 64 characters
    description = f"SYNTHETIC FDG-PET mri2pet {model} RESEARCH ONLY" + ("" if linked else ", NIFTI INPUT")
    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    written = []
    try:
        for k in range(data.shape[2]):
            instance_uid = generate_uid(entropy_srcs=[seed_text, series_uid, str(k)])
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = PET_IMAGE_STORAGE, instance_uid
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = Dataset()
            ds.file_meta = meta
            ds.SOPClassUID, ds.SOPInstanceUID = PET_IMAGE_STORAGE, instance_uid
            ds.PatientName, ds.PatientID = "", ""  # type 2: known only from a DICOM input
            ds.StudyDescription = "" if linked else f"mri2pet synthetic PET of {subject_id} (NIfTI input)"[:64]
            for key, value in linked.items():
                setattr(ds, key, value)
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "PT", 9000, k + 1
            ds.SeriesDescription = description
            ds.ImageType = ["DERIVED", "SECONDARY"]
            ds.ImageComments = "Synthetic image computed from a T1-weighted MRI; not acquired; not for diagnosis."
            ds.Manufacturer, ds.ManufacturerModelName = "mri2pet", model
            ds.BurnedInAnnotation = "NO"
            ds.Units, ds.DecayCorrection, ds.CorrectedImage = "NONE", "NONE", ["DECY"]
            ds.SeriesType, ds.CountsSource = ["STATIC", "IMAGE"], "EMISSION"
            ds.RadiopharmaceuticalInformationSequence = [Dataset()]
            ds.RadiopharmaceuticalInformationSequence[0].Radiopharmaceutical = "Fluorodeoxyglucose (synthetic)"
            set_slice(ds, pet.affine, stored, k, slope)
            ds.RescaleType = "SUVR"
            name = f"{folder.name}_{k + 1:04d}.dcm"
            ds.save_as(temporary / name, enforce_file_format=True)
            written.append(folder / name)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(temporary, folder)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return written
