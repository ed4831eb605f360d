"""The image-score conventions of other papers, so that their numbers can be set next to ours.

Ours (scoring.py): SUVR inside the brain mask, data range = range of the real PET in the mask.
The field also reports:
- "whole box [0,1]": each volume min-max scaled to [0, 1] over the whole grid, SSIM and PSNR over the
  whole box with data range 1 (many 3D GAN papers, e.g. GLA-GAN's MS-SSIM setting);
- "axial slices, 255": each volume min-max scaled to [0, 255], 2D SSIM on every axial slice that holds
  brain, averaged (slice-wise papers such as TPA-GAN; data range 255 as for 8-bit images).
Every SSIM here uses the same window as ours (Gaussian, sigma 1.5): scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.evaluation.metrics import psnr, ssim

CONVENTIONS = {
    "whole box [0,1]": "each volume min-max scaled to [0, 1] over the whole grid; data range 1; no mask",
    "axial slices, 255": "each volume min-max scaled to [0, 255]; 2D SSIM per axial slice with brain; mean",
}


def min_max(volume: np.ndarray, top: float = 1.0) -> np.ndarray:
    volume = np.asarray(volume, np.float64)
    low, high = float(volume.min()), float(volume.max())
    return np.zeros_like(volume) if high == low else (volume - low) / (high - low) * top


def whole_box_scores(reference: np.ndarray, test: np.ndarray) -> dict[str, float]:
    ref, out = min_max(reference), min_max(test)
    return {"ssim": ssim(ref, out, None, data_range=1.0), "psnr": psnr(ref, out, None, data_range=1.0)}


def axial_slice_ssim(reference: np.ndarray, test: np.ndarray, mask: np.ndarray, top: float = 255.0) -> float:
    """Mean 2D SSIM over the axial slices (last axis) that contain brain, after scaling to [0, top]."""
    ref, out = min_max(reference, top), min_max(test, top)
    slices = [k for k in range(ref.shape[2]) if mask[:, :, k].any()]
    return float(np.mean([ssim(ref[:, :, k], out[:, :, k], None, data_range=top) for k in slices]))


def convention_scores(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """One subject's scores in every convention of CONVENTIONS."""
    box = whole_box_scores(reference, test)
    return {
        "whole box [0,1] ssim": box["ssim"],
        "whole box [0,1] psnr": box["psnr"],
        "axial slices, 255 ssim": axial_slice_ssim(reference, test, mask > 0),
    }
