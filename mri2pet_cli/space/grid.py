"""The model grid: the one place that says where in MNI space the models work.

Every stage (templates, simulation truth, preprocessing, models, reports)
reads the grid from here. A lab with a GPU may choose a finer spacing; the
field of view stays the same and the shape is rounded up to a multiple of 16
so that every model can halve it four times.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

# Field of view in MNI space (mm) and its centre. Chosen to hold the whole
# MNI152 brain with the cerebellum: the brain mask spans x -72..72,
# y -107..73, z -72..82 (brainstem to vertex), AAL spans z -61..84.
FIELD_OF_VIEW_MM = (160.0, 200.0, 160.0)
CENTER_MM = (0.0, -16.0, 10.0)
DEFAULT_SPACING_MM = 2.5
SHAPE_MULTIPLE = 16
GRID_ENV = "MRI2PET_GRID_MM"


@dataclass(frozen=True)
class ModelGrid:
    """An MNI-aligned (RAS) voxel grid: shape and isotropic spacing."""

    shape: tuple[int, int, int]
    spacing: float
    center: tuple[float, float, float] = CENTER_MM

    @property
    def affine(self) -> np.ndarray:
        origin = np.asarray(self.center) - (np.asarray(self.shape) - 1) / 2 * self.spacing
        affine = np.diag([self.spacing] * 3 + [1.0])
        affine[:3, 3] = origin
        return affine

    @property
    def voxel_volume_ml(self) -> float:
        return self.spacing**3 / 1000.0

    def world_coordinates(self) -> np.ndarray:
        """MNI coordinates (mm) of every voxel centre, shape (3, *shape)."""
        idx = np.indices(self.shape, dtype=np.float64).reshape(3, -1)
        world = self.affine[:3, :3] @ idx + self.affine[:3, 3:4]
        return world.reshape(3, *self.shape)

    def describe(self) -> dict:
        return {
            "space": "MNI152NLin2009cSym",
            "shape": list(self.shape),
            "spacing_mm": self.spacing,
            "affine": np.round(self.affine, 6).tolist(),
        }

    @classmethod
    def from_description(cls, description: dict) -> ModelGrid:
        """The grid that :meth:`describe` wrote (the affine follows from shape and spacing)."""
        return cls(shape=tuple(description["shape"]), spacing=float(description["spacing_mm"]))  # type: ignore[arg-type]


def grid_for_spacing(spacing: float) -> ModelGrid:
    """The grid covering the field of view at ``spacing`` mm."""
    if not 0.5 <= spacing <= 6.0:
        raise ValueError(f"grid spacing {spacing} mm is outside 0.5-6 mm")
    shape = tuple(int(math.ceil(fov / spacing / SHAPE_MULTIPLE) * SHAPE_MULTIPLE) for fov in FIELD_OF_VIEW_MM)
    return ModelGrid(shape=shape, spacing=float(spacing))  # type: ignore[arg-type]


def covers(grid: ModelGrid, low_mm: np.ndarray, high_mm: np.ndarray) -> bool:
    """Whether the box [low_mm, high_mm] (MNI, mm) lies inside the grid's voxel centres."""
    first = grid.affine[:3, 3]
    last = first + (np.asarray(grid.shape) - 1) * grid.spacing
    return bool(np.all(first <= low_mm) and np.all(high_mm <= last))


def default_grid() -> ModelGrid:
    """The model grid: 2.5 mm, 64 x 80 x 64, unless MRI2PET_GRID_MM says otherwise."""
    return grid_for_spacing(float(os.environ.get(GRID_ENV, DEFAULT_SPACING_MM)))
