"""DICOM series written from NIfTI volumes with pydicom (MR Image Storage, one file per slice), for tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.inference.dicom_out import set_slice

MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def write_series(
    img: nib.Nifti1Image,
    folder: Path,
    *,
    number: int,
    description: str,
    acquisition: str = "3D",
    study_uid: str = "1.2.826.0.1.3680043.8.498.1",
    image_type: str = "ORIGINAL\\PRIMARY\\M\\ND",
) -> Path:
    """One DICOM file per axial slice of ``img`` (its affine turned into patient positions, LPS)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    data = np.asarray(img.dataobj, dtype=np.float32)
    scale = float(data.max()) / 30000.0 if data.max() > 0 else 1.0
    stored = np.round(data / scale).astype(np.int16)
    series_uid = generate_uid(entropy_srcs=[study_uid, str(number)])
    for k in range(data.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MR_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series_uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = MR_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Test^Simulated", "SIM001", "19550101"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = study_uid + ".9"
        ds.StudyDate, ds.StudyTime, ds.SeriesTime = "20260101", "120000", f"12{number:02d}00"
        ds.Modality, ds.Manufacturer, ds.MagneticFieldStrength = "MR", "Simulated", 3.0
        ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = number, k + 1, 1
        ds.SeriesDescription = ds.ProtocolName = description
        ds.MRAcquisitionType, ds.ScanningSequence, ds.SequenceVariant = acquisition, "GR\\IR", "SP\\MP"
        ds.ImageType = image_type
        ds.RepetitionTime, ds.EchoTime, ds.FlipAngle = 2300.0, 2.98, 9.0
        set_slice(ds, img.affine, stored, k, scale)  # the output writer's geometry and pixel module
        ds.save_as(folder / f"{number:03d}_{k + 1:04d}.dcm", enforce_file_format=True)
    return folder
