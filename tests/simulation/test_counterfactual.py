import nibabel as nib
import numpy as np
import pytest

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.simulation.cohort import truth_age_paths
from mri2pet_cli.simulation.counterfactual import metabolic_age_slope
from mri2pet_cli.simulation.fdg_model import _row_labels
from mri2pet_cli.space.atlas import template_maps
from mri2pet_cli.space.grid import default_grid


def test_age_only_slope_follows_the_simulators_metabolic_table_and_is_cached(simulated_cohort_v2):
    grid = default_grid()
    slope = metabolic_age_slope(simulated_cohort_v2, ["sub-001"], grid)
    labels = template_maps(grid).aal
    rows = _row_labels()

    def row_mean(name: str) -> float:
        return float(slope[np.isin(labels, rows[name])].mean())

    # the calibrated table: metabolism rises per decade against the cerebellum in the hippocampus
    # (+5.9 %) and the precuneus (+3.4 %), and falls in the putamen (-1.2 %)
    assert row_mean("hippocampus") > 0.01 and row_mean("precuneus") > 0.01
    assert row_mean("putamen") < 0 < row_mean("precuneus")
    cached = truth_age_paths(simulated_cohort_v2, "sub-001", 90.0)["age_only_pet"]
    assert nib.load(str(cached)).shape == grid.shape
    np.testing.assert_array_equal(metabolic_age_slope(simulated_cohort_v2, ["sub-001"], grid), slope)


def test_age_only_slope_needs_a_simulated_cohort(tmp_path):
    with pytest.raises(Mri2PetError, match="simulator truth"):
        metabolic_age_slope(tmp_path, ["sub-001"], default_grid())
