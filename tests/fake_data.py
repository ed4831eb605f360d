"""A tiny preprocessed paired dataset (16 x 16 x 16 voxels of 6 mm) for training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from mri2pet_cli.preprocessing.pipeline import Preprocessed
from mri2pet_cli.preprocessing.storage import save_preprocessed
from mri2pet_cli.space.grid import ModelGrid

TINY_GRID = ModelGrid(shape=(16, 16, 16), spacing=6.0)


def write_fake_dataset(folder: Path, n: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:16, :16, :16]
    mask = ((z - 7.5) ** 2 + (y - 7.5) ** 2 + (x - 7.5) ** 2) < 6.5**2
    rows = ["participant_id\tage\tsex\tdiagnosis"]
    for i in range(n):
        t1 = ndimage.gaussian_filter(rng.random((16, 16, 16)), 1.5).astype(np.float32)
        t1 = (t1 - t1.min()) / (t1.max() - t1.min()) * mask
        pet = (2.0 * t1 + 0.3) * mask
        sid = f"sub-{i + 1:03d}"
        result = Preprocessed(
            t1=t1.astype(np.float32),
            mask=mask,
            native_to_mni=np.eye(4),
            native_affine=TINY_GRID.affine,
            native_shape=TINY_GRID.shape,
            grid=TINY_GRID,
            pet=pet.astype(np.float32),
            pet_to_t1=np.eye(4),
        )
        save_preprocessed(result, folder, sid, sources={})
        rows.append(f"{sid}\t{60 + 3 * i}\tF\tCN")
    (folder / "participants.tsv").write_text("\n".join(rows) + "\n")
    return folder
