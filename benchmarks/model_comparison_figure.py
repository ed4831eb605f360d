"""One test subject through every model: its PET and error map side by side (issue 14).

    python benchmarks/model_comparison_figure.py runs/cohort-v2 [--models unet,dual-glow,...]

Takes the first subject of the first model's test split (or --subject), runs each model with its
shipped weights on the cached preprocessed volumes and draws, in three planes: the T1, the reference
PET, then each model's synthetic PET and its error (synthetic - reference), in the report's fixed
windows. Writes benchmarks/results/model_comparison.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mri2pet_cli.models.registry import load_model
from mri2pet_cli.models.runtime import predict, resolve_device
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset
from mri2pet_cli.reporting.report import ERROR_WINDOW_SUVR, PET_WINDOW_SUVR, T1_WINDOW, montage
from mri2pet_cli.space.grid import default_grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--models", default="unet,dual-glow,gla-gan,pix2pix-3d,pix2pix-2d,cyclegan-3d")
    parser.add_argument("--subject")
    args = parser.parse_args()
    names = [m.strip() for m in args.models.split(",")]
    loaded = {name: load_model(name) for name in names}
    records, _ = prepare_dataset(args.data)
    by_id = {r.subject_id: r for r in records}
    sid = args.subject or loaded[names[0]][1]["training_data"]["split"]["test"][0]
    arrays = load_arrays([by_id[sid]])
    mask = arrays.mask[0] > 0
    panels = [
        ("T1", arrays.t1[0], "gray", T1_WINDOW, "T1 / WM median"),
        ("reference PET", arrays.pet[0], "hot", PET_WINDOW_SUVR, "SUVR"),
    ]
    for name, (model, _card, _files) in loaded.items():
        pred, _ = predict(model, arrays.t1, arrays.mask, arrays.age, device=resolve_device("cpu"))
        pet = np.where(mask, pred[0], 0.0)
        mae = float(np.abs(pet - arrays.pet[0])[mask].mean())
        panels.append((f"{name} (MAE {mae:.3f})", pet, "hot", PET_WINDOW_SUVR, "SUVR"))
        panels.append((f"{name} - reference", pet - arrays.pet[0], "coolwarm", ERROR_WINDOW_SUVR, "SUVR"))
    out = Path(__file__).parent / "results" / "model_comparison.png"
    title = f"{sid} (simulated test subject): every model, shipped weights"
    montage(panels, default_grid(), title, out)
    print(out)


if __name__ == "__main__":
    main()
