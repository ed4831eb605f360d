"""The head in a raw T1: brain masks (deepbet or intensity) and the cut below the head (neck, shoulders)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from mri2pet_cli.preprocessing.brain_extraction import deepbet_mask


def extract_brain_deepbet(img: nib.Nifti1Image) -> np.ndarray:
    """deepbet's brain mask (bool) for a RAS image."""
    return deepbet_mask(np.asarray(img.dataobj, dtype=np.float32))


def mask_from_intensity(data: np.ndarray) -> np.ndarray:
    """Mask of an already brain-extracted image: non-background, holes filled, largest component."""
    mask = data > 0.02 * np.percentile(data[data > 0], 99) if np.any(data > 0) else data > 0
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum(mask, labels, range(1, count + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    return ndimage.binary_fill_holes(mask)


HEAD_HEIGHT_MM = 200.0  # vertex to the foramen magnum is about 120-150 mm; below 200 mm is neck and shoulders


def without_neck(head: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The head mask without what lies more than 200 mm below its top (a RAS image: the third axis is up).

    A long field of view with neck and shoulders otherwise pulls the centre of mass, where the
    registration starts, far below the brain.
    """
    out = head.copy()
    out[:, :, : _below_top(np.flatnonzero(head.any(axis=(0, 1))), affine)] = False
    return out


def slices_below_head(data: np.ndarray, affine: np.ndarray) -> int:
    """How many of the lowest slices of a RAS image lie more than 200 mm below the top of the head."""
    positive = data[data > 0]
    if positive.size == 0:
        return 0
    head = data > 0.1 * np.percentile(positive, 99)
    return _below_top(np.flatnonzero(head.sum(axis=(0, 1)) >= 50), affine)  # >= 50: not stray bright voxels


def _below_top(head_slices: np.ndarray, affine: np.ndarray) -> int:
    """The number of slices more than 200 mm below the highest of ``head_slices`` (0 without any)."""
    if head_slices.size == 0:
        return 0
    keep = int(np.ceil(HEAD_HEIGHT_MM / abs(float(np.linalg.norm(affine[:3, 2])))))
    return max(0, int(head_slices[-1]) + 1 - keep)
