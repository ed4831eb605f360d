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
) -> np.ndarray:
    """Resample ``data`` onto a target grid through an optional affine world map.

    When the target is coarser than the source, the source is first smoothed
    with a Gaussian so that downsampling does not alias (off for labels).
    """
    matrix = voxel_map(target_affine, source_affine, world_to_world)
    if antialias and order > 0:
        # source voxels per target voxel; a Gaussian of this width removes what the coarser grid cannot hold
        factor = float(np.max(np.linalg.norm(matrix[:3, :3], axis=0)))
        if factor > 1.05:
            sigma = 0.42 * np.sqrt(factor**2 - 1)
            data = ndimage.gaussian_filter(np.asarray(data, dtype=np.float32), sigma)
    return ndimage.affine_transform(
        np.asarray(data, dtype=np.float32 if order > 0 else data.dtype),
        matrix[:3, :3],
        offset=matrix[:3, 3],
        output_shape=tuple(target_shape),
        order=order,
        mode="constant",
        cval=cval,
        prefilter=False,
    )
