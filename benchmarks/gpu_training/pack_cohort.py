"""Pack the cached v2 cohort's train + validation subjects for a GPU machine that takes 64 MiB per call.

Model-grid T1 and PET are stored as 16-bit NIfTI (scale factor per file: step <= 7e-5 SUVR, 5e-5 of the
T1's white-matter level), the masks and the preprocessing records as they are; two halves, one per call.
Usage: python benchmarks/gpu_training/pack_cohort.py runs/cohort-v2 runs/unet-v2/split.json .gpu
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def pack(cohort: Path, split_file: Path, out: Path) -> None:
    cache = cohort / "derivatives" / "mri2pet-preproc"
    split = json.loads(split_file.read_text())
    ids = sorted(split["train"] + split["validation"])
    for k, part in enumerate((ids[::2], ids[1::2]), 1):
        target = out / f"data{k}"
        shutil.rmtree(target, ignore_errors=True)
        for sid in part:
            (target / sid).mkdir(parents=True)
            for f in (cache / sid).iterdir():
                if f.name.endswith("_preproc.json") or "mask" in f.name:
                    shutil.copy(f, target / sid / f.name)
                elif f.name.endswith(".nii.gz"):
                    img = nib.load(f)
                    packed = nib.Nifti1Image(img.get_fdata(dtype=np.float32), img.affine, img.header)
                    packed.set_data_dtype(np.int16)
                    packed.to_filename(target / sid / f.name)
    shutil.copy(cohort / "participants.tsv", out / "participants.tsv")
    shutil.copy(split_file, out / "split.json")


if __name__ == "__main__":
    pack(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
