"""Pictures people look at: registration QC and slice montages (matplotlib, no screen needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from mri2pet_cli.io import write_bytes_atomic
from mri2pet_cli.space.grid import ModelGrid


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def planes(volume: np.ndarray, center: tuple[int, int, int]) -> list[np.ndarray]:
    """Sagittal, coronal, axial slices through ``center``, transposed for display (RAS grid)."""
    i, j, k = center
    return [volume[i].T, volume[:, j].T, volume[:, :, k].T]


def save_figure(fig, path: str | Path) -> Path:
    """Write a PNG atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    pyplot().close(fig)
    return write_bytes_atomic(buffer.getvalue(), path)


def registration_qc(t1: np.ndarray, template_mask: np.ndarray, grid: ModelGrid, title: str, path: str | Path) -> Path:
    """Three planes of the registered T1 with the MNI brain outline in red over it."""
    plt = pyplot()
    center = mni_voxel(grid, (0.0, -18.0, 12.0))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    vmax = float(np.percentile(t1[t1 > 0], 99.5)) if np.any(t1 > 0) else 1.0
    for ax, img, outline, name in zip(
        axes, planes(t1, center), planes(template_mask.astype(float), center), ("sagittal", "coronal", "axial")
    ):
        ax.imshow(img, origin="lower", cmap="gray", vmin=0, vmax=vmax)
        ax.contour(outline, levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(name)
        ax.axis("off")
    fig.suptitle(f"{title}: registered T1, MNI brain outline in red")
    return save_figure(fig, path)


def mni_voxel(grid: ModelGrid, mni_mm: tuple[float, float, float]) -> tuple[int, int, int]:
    idx = np.linalg.inv(grid.affine) @ np.append(np.asarray(mni_mm), 1.0)
    return tuple(int(np.clip(round(v), 0, s - 1)) for v, s in zip(idx[:3], grid.shape))  # type: ignore[return-value]
