"""Resampling between voxel grids with scipy (linear for images, nearest for labels)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def voxel_map(target_affine: np.ndarray, source_affine: np.ndarray, world_to_world: np.ndarray | None = None):
    """The 4x4 matrix taking target voxel indices to source voxel indices.

    ``world_to_world`` maps target world coordinates to source world
    coordinates (identity when both images live in the same space).
    """
    w2w = np.eye(4) if world_to_world is None else world_to_world
    return np.linalg.inv(source_affine) @ w2w @ target_affine


def resample(
    data: np.ndarray,
    source_affine: np.ndarray,
    target_shape: tuple[int, ...],
    target_affine: np.ndarray,
    *,
    world_to_world: np.ndarray | None = None,
    order: int = 1,
    antialias: bool = True,
    cval: float = 0.0,
    only_near_nonzero: bool = False,
) -> np.ndarray:
    """Resample ``data`` onto a target grid through an optional affine world map.

    When the target is coarser than the source, the source is first smoothed
    with a Gaussian so that downsampling does not alias (off for labels). ``only_near_nonzero``
    interpolates only the target box that the source's non-zero voxels can reach (linear or nearest,
    zero outside): the same values up to the rounding of shifted sample positions, and a brain PET
    onto a long native field of view without interpolating the empty rest.
    """
    matrix = voxel_map(target_affine, source_affine, world_to_world)
    if antialias and order > 0:
        # source voxels per target voxel; a Gaussian of this width removes what the coarser grid cannot hold
        factor = float(np.max(np.linalg.norm(matrix[:3, :3], axis=0)))
        if factor > 1.05:
            sigma = 0.42 * np.sqrt(factor**2 - 1)
            data = ndimage.gaussian_filter(np.asarray(data, dtype=np.float32), sigma)
    data = np.asarray(data, dtype=np.float32 if order > 0 else data.dtype)
    box = _reach_of_nonzero(data, matrix, target_shape) if only_near_nonzero and order <= 1 and cval == 0 else None
    if box is None:
        return _affine(data, matrix, tuple(target_shape), order, cval)
    out = np.zeros(tuple(target_shape), dtype=data.dtype)
    low = np.array([b.start for b in box], dtype=float)
    shifted = matrix.copy()
    shifted[:3, 3] = matrix[:3, :3] @ low + matrix[:3, 3]
    out[box] = _affine(data, shifted, tuple(b.stop - b.start for b in box), order, cval)
    return out


def _affine(data: np.ndarray, matrix: np.ndarray, shape: tuple[int, ...], order: int, cval: float) -> np.ndarray:
    return ndimage.affine_transform(
        data,
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=shape,
        order=order,
        mode="constant",
        cval=cval,
        prefilter=False,
    )


def nonzero_bounds(data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The first and one-past-last index of non-zero voxels along each axis of a 3D array; None if all zero."""
    occupied = [np.flatnonzero(data.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    if any(o.size == 0 for o in occupied):
        return None
    return np.array([o[0] for o in occupied]), np.array([o[-1] + 1 for o in occupied])


def _reach_of_nonzero(data: np.ndarray, matrix: np.ndarray, target_shape) -> tuple[slice, ...] | None:
    """The target voxels whose linear interpolation can touch a non-zero source voxel (a box); None: all."""
    bounds = nonzero_bounds(data)
    if bounds is None:
        return None
    low = bounds[0] - 1.0  # one voxel beyond: the neighbours a linear sample reads
    high = bounds[1].astype(float)
    corners = np.array([[c[0], c[1], c[2], 1.0] for c in np.array(np.meshgrid(*zip(low, high))).reshape(3, -1).T])
    target = (np.linalg.inv(matrix) @ corners.T)[:3]
    start = np.maximum(np.floor(target.min(axis=1)) - 1, 0).astype(int)
    stop = np.minimum(np.ceil(target.max(axis=1)) + 2, target_shape).astype(int)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))
