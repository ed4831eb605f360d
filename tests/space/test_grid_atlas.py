import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.space.atlas import (
    AD_PATTERN_REGIONS,
    aal_files,
    aal_names,
    reference_labels,
    region_labels,
    template_maps,
)
from mri2pet_cli.space.grid import covers, default_grid, grid_for_spacing


def test_default_grid_is_the_documented_one():
    grid = default_grid()
    assert grid.shape == (64, 80, 64)
    assert grid.spacing == 2.5
    np.testing.assert_allclose(np.diag(grid.affine)[:3], 2.5)


def test_grid_spacing_is_a_parameter(monkeypatch):
    fine = grid_for_spacing(1.5)
    assert all(s % 16 == 0 for s in fine.shape)
    assert np.all(np.asarray(fine.shape) * 1.5 >= np.asarray((160, 200, 160)))
    monkeypatch.setenv("MRI2PET_GRID_MM", "2.0")
    assert default_grid().spacing == 2.0
    with pytest.raises(ValueError):
        grid_for_spacing(0.1)


@pytest.mark.parametrize("spacing", [2.5, 1.5])
def test_grid_covers_whole_brain_with_cerebellum(spacing):
    grid = grid_for_spacing(spacing)
    img = nib.load(str(aal_files()[0]))
    idx = np.argwhere(np.asarray(img.dataobj) > 0)
    world = img.affine[:3, :3] @ idx.T + img.affine[:3, 3:4]
    assert covers(grid, world.min(axis=1), world.max(axis=1))
    cerebellum = np.argwhere(np.isin(np.asarray(img.dataobj), reference_labels()))
    low = (img.affine[:3, :3] @ cerebellum.T + img.affine[:3, 3:4]).min(axis=1)
    assert covers(grid, low, low)


def test_aal_has_116_named_regions_with_hemispheres():
    names = aal_names()
    assert len(names) == 116
    assert names[67] == "Precuneus_L" and names[68] == "Precuneus_R"
    lefts = [n for n in names.values() if n.endswith("_L")]
    rights = [n for n in names.values() if n.endswith("_R")]
    assert len(lefts) == len(rights) == 54  # 8 vermis labels have no side
    assert len(region_labels(AD_PATTERN_REGIONS)) == 12
    assert len(reference_labels()) == 18


def test_templates_on_model_grid():
    grid = default_grid()
    maps = template_maps(grid)
    assert maps.aal.shape == grid.shape
    # every AAL region survives resampling, and left regions lie left of the midline (x < 0)
    assert set(np.unique(maps.aal)) - {0} == set(aal_names())
    world_x = grid.world_coordinates()[0]
    for value, name in aal_names().items():
        if name.endswith("_L"):
            assert world_x[maps.aal == value].mean() < 0, name
        elif name.endswith("_R"):
            assert world_x[maps.aal == value].mean() > 0, name
    brain_ml = maps.brain_mask.sum() * grid.voxel_volume_ml
    assert 1400 < brain_ml < 2200
    assert maps.gm[maps.aal == 67].mean() > maps.wm[maps.aal == 67].mean()  # cortex is grey
    assert not maps.aal[[0, -1]].any() and not maps.aal[:, [0, -1]].any() and not maps.aal[:, :, [0, -1]].any()


def test_reference_regions_where_the_literature_puts_them():
    from mri2pet_cli.preprocessing.normalise import reference_mask

    grid = default_grid()
    brain = template_maps(grid).brain_mask
    pons = reference_mask(grid, brain, "pons")
    ijk = np.argwhere(pons)
    centroid = grid.affine[:3, :3] @ ijk.mean(axis=0) + grid.affine[:3, 3]
    assert 10 < pons.sum() * grid.spacing**3 / 1000 < 25  # ml; an adult pons holds about 15-20
    np.testing.assert_allclose(centroid, [0.0, -27.0, -32.0], atol=4.0)
    cerebellum = reference_mask(grid, brain, "cerebellum")
    whole = reference_mask(grid, brain, "whole-brain")
    assert not (pons & cerebellum).any() and whole.sum() > 10 * cerebellum.sum() > 0
