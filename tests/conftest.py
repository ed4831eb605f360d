"""Shared fixtures: tiny volumes with an oblique affine, built in tmp_path.

The suite runs in two worker processes (pytest-xdist, ``-n 2`` in pyproject.toml); each then computes with
one thread, so the two do not fight over the two cores.
"""

from __future__ import annotations

import os

if os.environ.get("PYTEST_XDIST_WORKER"):
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import SimpleITK as sitk
        import torch

        torch.set_num_threads(1)
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def oblique_affine() -> np.ndarray:
    angle = np.deg2rad(12.0)
    rot = np.array([[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([1.2, 1.0, 1.1])
    affine[:3, 3] = [-10.0, 20.0, -5.0]
    return affine


@pytest.fixture
def tiny_image() -> nib.Nifti1Image:
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 100, (16, 20, 16)).astype(np.float32)
    img = nib.Nifti1Image(data, oblique_affine())
    img.set_qform(oblique_affine(), 1)
    img.set_sform(oblique_affine(), 4)
    return img


@pytest.fixture
def tiny_path(tmp_path, tiny_image):
    path = tmp_path / "tiny.nii.gz"
    nib.save(tiny_image, str(path))
    return path


@pytest.fixture(scope="session")
def simulated_cohort(tmp_path_factory):
    """One simulated subject (raw T1, PET and truth), shared by the slower tests.

    Version 1: the preprocessing and report tests were written against it; v2 has its own tests.
    """
    from mri2pet_cli.simulation.cohort import simulate_cohort

    folder = tmp_path_factory.mktemp("cohort")
    simulate_cohort(folder, 1, seed=5, version=1)
    return folder


@pytest.fixture(scope="session")
def preprocessed_run(tmp_path_factory, simulated_cohort):
    """`mri2pet preprocess` of the shared subject and a broken file, once: (cohort, out folder, CLI result).

    The synthesis tests read the out folder as an input (its preprocessing is reused)."""
    from typer.testing import CliRunner

    from mri2pet_cli.cli import app

    root = tmp_path_factory.mktemp("pre")
    bad = root / "bad"
    bad.mkdir()
    (bad / "broken_T1w.nii.gz").write_bytes(b"\x1f\x8b\x08\x00not really gzip")
    out = root / "out"
    args = ["preprocess", str(simulated_cohort), str(bad / "broken_T1w.nii.gz"), "-o", str(out)]
    return simulated_cohort, out, CliRunner().invoke(app, args)


@pytest.fixture(scope="session")
def simulated_cohort_v2(tmp_path_factory):
    """One version 2 subject: the world the shipped weights were trained in (their cards say so)."""
    from mri2pet_cli.simulation.cohort import simulate_cohort

    folder = tmp_path_factory.mktemp("cohort-v2")
    simulate_cohort(folder, 1, seed=5, version=2)
    return folder


@pytest.fixture(scope="session")
def simulated_cohort_latest(tmp_path_factory):
    """One subject of the default simulator (version 4), with its age-only truth at 60 and 90."""
    from mri2pet_cli.simulation.cohort import simulate_cohort
    from mri2pet_cli.simulation.population import DEFAULT_VERSION

    folder = tmp_path_factory.mktemp("cohort-latest")
    simulate_cohort(folder, 1, seed=5, version=DEFAULT_VERSION, variety="none", truth_ages=(60.0, 90.0))
    return folder
