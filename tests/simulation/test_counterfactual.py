import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.simulation.cohort import truth_age_paths
from mri2pet_cli.simulation.counterfactual import metabolic_age_slope
from mri2pet_cli.simulation.fdg_model import _row_labels
from mri2pet_cli.simulation.fdg_reference import REGIONS
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid


def test_age_only_slope_has_the_corrected_literatures_signs_and_is_cached(simulated_cohort_latest):
    """Simulator v3, anatomy fixed: metabolism falls with age in every cortical group the table holds, most in
    frontal and cingulate cortex (Greve 2016), and rises in the thalamus against the cerebellum (Bonte 2017)."""
    grid = default_grid()
    slope = metabolic_age_slope(simulated_cohort_latest, ["sub-001"], grid)
    labels = template_maps(grid).aal
    rows = _row_labels()

    def row_mean(name: str) -> float:
        return float(slope[np.isin(labels, rows[name])].mean())

    cortical = [r.name for r in REGIONS if r.name not in ("caudate", "putamen", "pallidum", "thalamus", "vermis")]
    assert all(row_mean(name) < 0 for name in cortical), {n: round(row_mean(n), 4) for n in cortical}
    assert row_mean("frontal superior") < row_mean("precuneus") < 0
    assert row_mean("hippocampus") < 0 and row_mean("parahippocampal") < 0
    assert row_mean("thalamus") > 0
    cached = truth_age_paths(simulated_cohort_latest, "sub-001", 90.0)["age_only_pet"]
    assert nib.load(str(cached)).shape == grid.shape
    np.testing.assert_array_equal(metabolic_age_slope(simulated_cohort_latest, ["sub-001"], grid), slope)


def test_age_only_slope_needs_a_simulated_cohort(tmp_path):
    with pytest.raises(Mri2PetError, match="simulator truth"):
        metabolic_age_slope(tmp_path, ["sub-001"], default_grid())
