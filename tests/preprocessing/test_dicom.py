"""DICOM in: dcm2niix converts, the T1 series is chosen by the written rule, bad DICOM gets one line."""

import zipfile

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage
from typer.testing import CliRunner

from mri2pet_cli.cli import app
from mri2pet_cli.completion import sha256_file
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.preprocessing.dicom import choose_t1, convert
from mri2pet_cli.preprocessing.inputs import check_subject_files, find_subjects, safe_label
from tests.conftest import oblique_affine
from tests.dicom_data import write_series

runner = CliRunner()


@pytest.fixture(scope="module")
def volume() -> nib.Nifti1Image:
    rng = np.random.default_rng(3)
    data = ndimage.gaussian_filter(rng.random((20, 24, 18)), 2.0).astype(np.float32) * 1000
    return nib.Nifti1Image(data, oblique_affine())


def world_centre(img: nib.Nifti1Image) -> np.ndarray:
    data = np.asarray(img.dataobj, dtype=np.float64)
    centre = np.array(ndimage.center_of_mass(np.clip(data - np.median(data), 0, None)))
    return nib.affines.apply_affine(img.affine, centre)


def test_the_t1_series_is_chosen_and_converted_where_it_lies(volume, tmp_path):
    session = tmp_path / "patient"
    write_series(volume, session / "a", number=2, description="t1_mprage_sag_p2")
    write_series(volume, session / "b", number=3, description="t2_spc_sag", acquisition="3D")
    write_series(volume, session / "c", number=1, description="localizer", image_type="ORIGINAL\\PRIMARY\\LOCALIZER")
    series = convert(session)
    chosen = choose_t1(series, session)
    assert chosen.number == 2 and chosen.sidecar["SeriesDescription"] == "t1_mprage_sag_p2"
    assert "PatientName" not in chosen.sidecar  # anonymised sidecar: it goes into the provenance
    converted = nib.load(str(chosen.nifti))
    assert sorted(converted.shape) == sorted(volume.shape)
    np.testing.assert_allclose(world_centre(converted), world_centre(volume), atol=0.6)
    again = choose_t1(convert(session), session)
    assert sha256_file(again.nifti) == sha256_file(chosen.nifti)  # same DICOM, same bytes


def test_bad_dicom_gets_one_line_listing_the_series(volume, tmp_path):
    two = tmp_path / "two"
    write_series(volume, two / "pre", number=5, description="T1 MPRAGE")
    write_series(volume, two / "post", number=7, description="T1 MPRAGE post contrast")
    with pytest.raises(Mri2PetError, match=r"2 T1-weighted series \(#5 'T1 MPRAGE'.*#7 .*--dicom-series N"):
        choose_t1(convert(two), two)
    assert choose_t1(convert(two), two, wanted=7).number == 7
    none = tmp_path / "none"
    write_series(volume, none / "t2", number=4, description="T2 FLAIR 3D")
    with pytest.raises(Mri2PetError, match=r"no T1-weighted 3D series among 1: #4 'T2 FLAIR 3D'"):
        choose_t1(convert(none), none)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "x.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    with pytest.raises(Mri2PetError, match="junk: no DICOM image series found"):
        convert(junk)


def test_a_zip_is_a_subject_named_safely_and_its_series_is_kept_in_the_record(volume, tmp_path):
    folder = write_series(volume, tmp_path / "dicom", number=2, description="T1w MPRAGE")
    archive = tmp_path / "Müller Hans.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in folder.iterdir():
            out.write(path, path.name)
    (subject,) = find_subjects([archive])
    assert subject.subject_id == "MullerHans" == safe_label("Müller Hans")
    (good,), bad = check_subject_files([subject])
    assert not bad and good.dicom["series_number"] == 2 and good.dicom["sidecar"]["MRAcquisitionType"] == "3D"
    result = runner.invoke(app, ["preprocess", str(tmp_path / "none.zip"), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2 and "file not found" in result.output


def test_synthesize_from_a_dicom_folder_and_back_to_dicom(simulated_cohort, tmp_path):
    import json

    import pydicom

    from mri2pet_cli.models.registry import build_model
    from mri2pet_cli.models.weights import save_weights

    t1 = nib.load(str(simulated_cohort / "sub-001" / "anat" / "sub-001_T1w.nii.gz"))
    folder = write_series(t1, tmp_path / "sub-007", number=3, description="MPRAGE")
    weights = save_weights(build_model("unet", {"base": 4, "levels": 2}), tmp_path / "w", {"version": "t"}).weights
    args = ["synthesize", str(folder), "--weights", str(weights), "-o", str(tmp_path / "out"), "--dicom-out"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    subject = tmp_path / "out" / "sub-007"
    record = json.loads((subject / "sub-007_desc-unet_synthesis.json").read_text())
    assert record["inputs"]["dicom"]["series_description"] == "MPRAGE"
    assert record["inputs"]["dicom"]["converter"].startswith("dcm2niix")
    native = nib.load(str(subject / "sub-007_space-T1w_desc-unet_pet.nii.gz"))
    assert sorted(native.shape) == sorted(t1.shape)
    # the DICOM series: in the T1's study, marked synthetic, and the same volume once read back
    files = sorted((subject / "sub-007_desc-unet_pet-dicom").glob("*.dcm"))
    assert len(files) == native.shape[2] and len(record["output_sha256"]) > len(files)
    first = pydicom.dcmread(files[0])
    source = pydicom.dcmread(next(folder.glob("*.dcm")))
    assert first.Modality == "PT" and list(first.ImageType) == ["DERIVED", "SECONDARY"]
    assert first.SeriesDescription == "SYNTHETIC FDG-PET mri2pet unet RESEARCH ONLY"
    assert (first.StudyInstanceUID, first.PatientID) == (source.StudyInstanceUID, source.PatientID)
    assert first.SeriesInstanceUID != source.SeriesInstanceUID
    import subprocess

    import dcm2niix

    back = tmp_path / "back"
    back.mkdir()  # without -i y: our own converter leaves derived series out, on purpose
    subprocess.run([dcm2niix.bin, "-z", "n", "-o", str(back), str(files[0].parent)], check=True, capture_output=True)
    (back_path,) = back.glob("*.nii")
    back_img = nib.load(str(back_path))
    back_img, native = nib.as_closest_canonical(back_img), nib.as_closest_canonical(native)
    np.testing.assert_allclose(back_img.affine, native.affine, atol=1e-3)  # same geometry
    slope = float(first.RescaleSlope)
    np.testing.assert_allclose(back_img.get_fdata(), native.get_fdata(), atol=slope)  # same voxels


def test_dicom_out_from_nifti_is_a_new_study_with_empty_patient_and_the_same_bytes_twice(volume, tmp_path):
    import pydicom

    from mri2pet_cli.errors import OutputExistsError
    from mri2pet_cli.inference.dicom_out import write_pet_series

    common = dict(subject_id="sub-1", model="cyclegan-3d", seed_text="request")
    first = write_pet_series(volume, tmp_path / "a", **common)
    second = write_pet_series(volume, tmp_path / "b", **common)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    ds = pydicom.dcmread(first[0])
    assert (str(ds.PatientName), ds.PatientID) == ("", "")
    assert ds.SeriesDescription.endswith(", NIFTI INPUT") and len(ds.SeriesDescription) <= 64
    with pytest.raises(OutputExistsError):
        write_pet_series(volume, tmp_path / "a", **common)
