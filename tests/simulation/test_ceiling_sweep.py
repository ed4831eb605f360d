"""benchmarks/ceiling_sweep.py redraws each subject's atrophy severity as the simulator draws it."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from mri2pet_cli.simulation.population import ATROPHY_LAG_BY_VERSION, ATROPHY_SCATTER, atrophy_severity, draw_subject

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def load_sweep():
    sys.path.insert(0, str(BENCHMARKS))  # the sweep imports its sibling t1_ceiling_steps
    try:
        spec = importlib.util.spec_from_file_location("ceiling_sweep", BENCHMARKS / "ceiling_sweep.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_redrawn_atrophy_matches_the_simulators_draw_and_moves_features_by_their_atrophy_slope():
    sweep = load_sweep()
    subjects = [draw_subject(5, i, 4) for i in range(40)]
    streams = np.array([s.extras["stream"] for s in subjects], dtype=float)
    metabolic = np.array([s.severity for s in subjects])
    redrawn = np.clip(
        ATROPHY_LAG_BY_VERSION[4] * metabolic + ATROPHY_SCATTER * sweep.standard_normal_draws(streams), 0.0, 1.0
    )
    np.testing.assert_allclose(np.round(redrawn, 3), [atrophy_severity(s) for s in subjects], atol=1e-9)

    # features linear in the atrophy severity: the fitted slope is recovered whatever age does
    rng = np.random.default_rng(0)
    age, brain_age = rng.uniform(55, 90, 40), rng.uniform(55, 90, 40)
    atrophy = np.array([atrophy_severity(s) for s in subjects])
    facts = np.column_stack([age, brain_age, atrophy, metabolic])
    features = np.column_stack([-0.3 * atrophy + 0.01 * age, 0.2 * atrophy - 0.02 * brain_age])
    np.testing.assert_allclose(sweep.atrophy_slopes(features, facts), [-0.3, 0.2], atol=1e-8)
