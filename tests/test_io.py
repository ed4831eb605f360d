import gzip

import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.errors import InputImageError, OutputExistsError
from mri2pet_cli.io import load_volume, save_volume
from tests.conftest import oblique_affine


def test_round_trip_keeps_data_affine_and_codes(tmp_path, tiny_path):
    img = load_volume(tiny_path)
    out = save_volume(img.get_fdata() * 2, tmp_path / "out.nii.gz", like=img)
    back = nib.load(str(out))
    np.testing.assert_allclose(back.get_fdata(), img.get_fdata() * 2, rtol=1e-6)
    np.testing.assert_allclose(back.affine, oblique_affine(), atol=1e-5)
    assert int(back.header["sform_code"]) == 4
    assert int(back.header["qform_code"]) == 1
    assert not list(tmp_path.glob(".*")), "no temporary file may be left behind"


def test_uncompressed_nifti_and_single_frame_4d_are_accepted(tmp_path, tiny_image):
    path = tmp_path / "frame.nii"
    nib.save(nib.Nifti1Image(tiny_image.get_fdata()[..., None], tiny_image.affine), str(path))
    assert load_volume(path).shape == (16, 20, 16)


def test_int16_with_scaling_is_read_in_real_units(tmp_path, tiny_image):
    img = nib.Nifti1Image(tiny_image.get_fdata().astype(np.float32) * 0.37, tiny_image.affine)
    img.set_data_dtype(np.int16)
    path = tmp_path / "scaled.nii.gz"
    nib.save(img, str(path))
    loaded = load_volume(path).get_fdata()
    np.testing.assert_allclose(loaded, tiny_image.get_fdata() * 0.37, atol=0.01)


def test_refuses_to_overwrite(tmp_path, tiny_image):
    target = tmp_path / "x.nii.gz"
    save_volume(tiny_image.get_fdata(), target, like=tiny_image)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_volume(tiny_image.get_fdata(), target, like=tiny_image)
    save_volume(tiny_image.get_fdata() + 1, target, like=tiny_image, overwrite=True)
    assert nib.load(str(target)).get_fdata().min() >= 1


def _write(tmp_path, name, data, affine=None):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(np.asarray(data), np.eye(4) if affine is None else affine), str(path))
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p, img: p / "missing.nii.gz", "file not found"),
        (lambda p, img: p, "is a folder"),
        (lambda p, img: (p / "notes.txt").write_text("x") and p / "notes.txt", "not a NIfTI file name"),
        (lambda p, img: (p / "fake.nii").write_bytes(b"hello world" * 10) and p / "fake.nii", "not a readable"),
        (lambda p, img: _write(p, "flat.nii.gz", np.ones((16, 20), np.float32) * np.arange(20)), "3D"),
        (lambda p, img: _write(p, "four.nii.gz", np.random.rand(16, 16, 16, 3).astype(np.float32)), "4D"),
        (lambda p, img: _write(p, "nan.nii.gz", np.where(img.get_fdata() > 50, np.nan, 1).astype(np.float32)), "NaN"),
        (lambda p, img: _write(p, "zero.nii.gz", np.zeros((16, 16, 16), np.float32)), "empty"),
        (lambda p, img: _write(p, "const.nii.gz", np.full((16, 16, 16), 7, np.float32)), "constant"),
        (lambda p, img: _write(p, "thin.nii.gz", np.random.rand(16, 16, 3).astype(np.float32)), "shape"),
        (
            lambda p, img: _write(
                p, "huge.nii.gz", np.random.rand(16, 16, 16).astype(np.float32), np.diag([40, 1, 1, 1])
            ),
            "voxel size",
        ),
    ],
)
def test_bad_inputs_give_one_clear_error(tmp_path, tiny_image, make, message):
    path = make(tmp_path, tiny_image)
    with pytest.raises(InputImageError, match=message) as info:
        load_volume(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_gzip(tmp_path, tiny_path):
    raw = tiny_path.read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputImageError, match="truncated|corrupt") as info:
        load_volume(cut)
    assert "cut.nii.gz" in str(info.value)


def test_gzip_of_garbage(tmp_path):
    path = tmp_path / "garbage.nii.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(b"\x00" * 400)
    with pytest.raises(InputImageError):
        load_volume(path)
