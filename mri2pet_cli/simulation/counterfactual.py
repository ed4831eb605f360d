"""The metabolic ("age only") effect of age on FDG, from the simulator's counterfactual renderings.

Paired data cannot separate it: the simulator's FDG falls with age mostly through atrophy, the atrophy
follows a brain age that the T1 shows only weakly (a ridge regression on the 116 regional grey-matter
fractions predicts age with cross-validated R^2 0.45 on the v2 training split), so a model of
E[PET | T1, age] lets the age stand in for the atrophy it cannot see. Adjusting the residual of the
fixed `unet` for the simulator's hidden brain age and severity recovers the age-only slope exactly
(frontal +0.024 per decade); adjusting for what the T1 gives does not (-0.022 for the T1-predicted age;
`benchmarks/age_identifiability.py`). The
simulator can render the same subject at another chronological age with its anatomy fixed (as
`simulate --truth-ages` writes its "age only" truth), so the effect is measured there: the mean over
training subjects of (SUVR at 90 - SUVR at 60) / 3, per voxel of the model grid.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.preprocessing.normalise import to_suvr
from mri2pet_cli.space.grid import ModelGrid

COUNTERFACTUAL_AGES = (60.0, 90.0)


def truth_subject(data_dir: Path, subject_id: str):
    """The subject as the cohort's simulator drew it (version and variety included), from its truth file."""
    from mri2pet_cli.simulation.cohort import subject_paths
    from mri2pet_cli.simulation.population import Subject

    path = subject_paths(data_dir, subject_id)["truth_json"]
    if not path.exists():
        raise Mri2PetError(f"{path}: no simulator truth; the age-only effect needs a cohort from `mri2pet simulate`")
    return Subject(**json.loads(path.read_text())["subject"])


def has_simulator_truth(data_dir: str | Path, subject_ids: list[str]) -> bool:
    """Whether every subject has the simulator's truth file (a cohort from `mri2pet simulate`)."""
    from mri2pet_cli.simulation.cohort import subject_paths

    return all(subject_paths(Path(data_dir), s)["truth_json"].exists() for s in subject_ids)


def counterfactual_suvr(
    data_dir: Path, subject_id: str, age: float, grid: ModelGrid, *, aged: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """SUVR on the model grid of the subject at ``age`` with its anatomy fixed ("age only"), or with its
    brain aged by those years too (``aged``); and the subject's brain mask as simulated.

    Reads the file `simulate --truth-ages` writes where it exists; otherwise renders it and stores it
    there (about 5 s per rendering).
    """
    from mri2pet_cli.io import save_volume
    from mri2pet_cli.simulation.anatomy import render_subject
    from mri2pet_cli.simulation.cohort import counterfactual_subjects, on_model_grid, subject_paths, truth_age_paths

    subject = truth_subject(data_dir, subject_id)
    brain = nib.load(str(subject_paths(data_dir, subject_id)["truth_mask"])).get_fdata() > 0
    path = truth_age_paths(data_dir, subject_id, age)["aged_pet" if aged else "age_only_pet"]
    if path.exists():
        pet = nib.load(str(path)).get_fdata(dtype=np.float32)
    else:
        age_only, older = counterfactual_subjects(subject, age)
        pet = on_model_grid(render_subject(older if aged else age_only).pet_mni, grid)
        save_volume(pet, path, affine=grid.affine)
    return to_suvr(pet, grid, brain)[0], brain


def metabolic_age_slope(
    data_dir: str | Path,
    subject_ids: list[str],
    grid: ModelGrid,
    *,
    ages: tuple[float, float] = COUNTERFACTUAL_AGES,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """SUVR change per decade of chronological age, anatomy fixed, averaged over ``subject_ids``.

    Each voxel averages the subjects whose brain mask holds it; zero where none does.
    """
    data_dir = Path(data_dir)
    total = np.zeros(grid.shape, dtype=np.float64)
    count = np.zeros(grid.shape, dtype=np.int32)
    for done, subject_id in enumerate(subject_ids):
        (young, brain), (old, _) = (counterfactual_suvr(data_dir, subject_id, age, grid) for age in ages)
        total[brain] += ((old - young) / ((ages[1] - ages[0]) / 10.0))[brain]
        count += brain
        if progress:
            progress(done + 1, len(subject_ids))
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
