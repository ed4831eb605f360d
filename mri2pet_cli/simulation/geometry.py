"""Rigid and oriented affines of the simulated scanners (head pose, voxel axes)."""

from __future__ import annotations

import nibabel as nib
import numpy as np


def rotation_matrix(degrees: list[float] | np.ndarray) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = np.deg2rad(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(degrees: list[float], shift: list[float], scale: float = 1.0) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation_matrix(degrees) * scale
    out[:3, 3] = shift
    return out


def oriented_affine(code: str, spacing: list[float], fov_mm: tuple[float, float, float], center: np.ndarray):
    """A voxel grid with on-disk orientation ``code`` (e.g. 'LIA') covering ``fov_mm`` around ``center``.

    ``fov_mm`` is given along the world axes (x, y, z); returns (affine, shape).
    """
    ornt = nib.orientations.axcodes2ornt(tuple(code))
    directions = np.zeros((3, 3))
    shape = []
    for voxel_axis, (world_axis, sign) in enumerate(ornt):
        directions[int(world_axis), voxel_axis] = sign
        shape.append(int(round(fov_mm[int(world_axis)] / spacing[voxel_axis])))
    affine = np.eye(4)
    affine[:3, :3] = directions * np.asarray(spacing)
    affine[:3, 3] = center - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine, tuple(shape)
