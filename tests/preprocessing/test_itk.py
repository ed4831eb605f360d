import numpy as np
import SimpleITK as sitk

from mri2pet_cli.preprocessing.itk import (
    from_sitk,
    ras_to_transform,
    read_transform,
    to_sitk,
    transform_to_ras,
    write_transform,
)
from mri2pet_cli.simulation.geometry import rigid
from tests.conftest import oblique_affine


def test_sitk_image_has_the_nifti_geometry():
    data = np.random.default_rng(1).random((5, 6, 7)).astype(np.float32)
    affine = oblique_affine()
    image = to_sitk(data, affine)
    index = (2, 3, 4)
    lps = np.asarray(image.TransformIndexToPhysicalPoint(index))
    ras = affine @ np.array([*index, 1.0])
    np.testing.assert_allclose(lps, ras[:3] * [-1, -1, 1], atol=1e-5)
    np.testing.assert_array_equal(from_sitk(image), data)


def test_transform_round_trip_through_itk_file(tmp_path):
    matrix = rigid([5.0, -7.0, 3.0], [10.0, -4.0, 2.5], 1.05)
    np.testing.assert_allclose(transform_to_ras(ras_to_transform(matrix)), matrix, atol=1e-10)
    path = tmp_path / "x.tfm"
    write_transform(matrix, path)
    np.testing.assert_allclose(read_transform(path), matrix, atol=1e-8)


def test_itk_transform_maps_points_like_the_ras_matrix():
    matrix = rigid([5.0, -7.0, 3.0], [10.0, -4.0, 2.5])
    transform = ras_to_transform(matrix)
    point = np.array([12.0, -30.0, 44.0])
    lps_out = np.asarray(transform.TransformPoint(tuple(point * [-1, -1, 1])))
    np.testing.assert_allclose(lps_out * [-1, -1, 1], (matrix @ np.append(point, 1))[:3], atol=1e-8)
    euler = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.2, 0.05, (4.0, 5.0, 6.0))
    ras = transform_to_ras(euler)
    lps_point = (7.0, -8.0, 9.0)
    expected = np.asarray(euler.TransformPoint(lps_point)) * [-1, -1, 1]
    np.testing.assert_allclose((ras @ np.array([-7.0, 8.0, 9.0, 1.0]))[:3], expected, atol=1e-8)
