"""Why `cyclegan-3d` is far below the baselines (issue 33): scale, collapse onto the T1's contrast, or structure?

    python benchmarks/cyclegan_diagnosis.py --data runs/study-v3-clean --n 30

On the first N paired subjects of a cohort (synthetic PETs cached beside its preprocessing, computed if
missing) it measures, for `cyclegan-3d` and the paired models it is compared with, inside each brain mask:

- MAE (SUVR) as scored, and after the best per-subject affine recalibration a + b x synthetic (fitted on the
  real PET, so an oracle): what is left once a wrong intensity scale or offset is forgiven;
- the voxel correlation with the real PET;
- the share of the image's variance that a function of the T1 intensity alone explains (64 quantile bins):
  near 1, a generator that only recolours the T1's tissue contrast; the real PET's own share is the reference.

Writes benchmarks/results/cyclegan_diagnosis.{json,png} (the png: one axial slice of T1, real PET and each
model for two subjects).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from mri2pet_cli.evaluation.cache import cache_root, cached_predict
from mri2pet_cli.models.registry import load_model
from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset

RESULTS = Path(__file__).parent / "results"
MODELS = ("cyclegan-3d", "unet", "pix2pix-3d")
BINS = 64


def affine_recalibrated_mae(synthetic: np.ndarray, real: np.ndarray) -> float:
    design = np.column_stack([synthetic, np.ones_like(synthetic)])
    coefficients, *_ = np.linalg.lstsq(design, real, rcond=None)
    return float(np.abs(design @ coefficients - real).mean())


def share_explained_by_t1_intensity(t1: np.ndarray, image: np.ndarray) -> float:
    """1 - var(image - E[image | T1 intensity bin]) / var(image), with quantile bins of the T1."""
    edges = np.quantile(t1, np.linspace(0.0, 1.0, BINS + 1))
    index = np.clip(np.searchsorted(edges, t1) - 1, 0, BINS - 1)
    means = np.bincount(index, image, BINS) / np.maximum(np.bincount(index, None, BINS), 1)
    return float(1.0 - np.var(image - means[index]) / np.var(image))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS / "cyclegan_diagnosis")
    args = parser.parse_args()

    records, _ = prepare_dataset(args.data)
    records = records[: args.n]
    arrays = load_arrays(records)
    synthetic = {}
    for name in MODELS:
        model, card, _ = load_model(name)
        synthetic[name] = cached_predict(model, card, arrays, cache_root(records[0].preproc_dir))
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in ("real PET", *MODELS)}
    for i in range(len(records)):
        inside = arrays.mask[i] > 0
        t1, real = arrays.t1[i][inside], arrays.pet[i][inside]
        rows["real PET"].setdefault("share_explained_by_t1_intensity", []).append(
            share_explained_by_t1_intensity(t1, real)
        )
        for name in MODELS:
            image = np.asarray(synthetic[name][i]).squeeze()[inside]
            values = {
                "mae": float(np.abs(image - real).mean()),
                "mae_after_affine_recalibration": affine_recalibrated_mae(image, real),
                "correlation_with_real": float(np.corrcoef(image, real)[0, 1]),
                "share_explained_by_t1_intensity": share_explained_by_t1_intensity(t1, image),
            }
            for key, value in values.items():
                rows[name].setdefault(key, []).append(value)
    result = {
        "cohort": str(args.data),
        "n_subjects": len(records),
        "means": {name: {k: round(float(np.mean(v)), 4) for k, v in per.items()} for name, per in rows.items()},
    }
    for name, values in result["means"].items():
        print(name, values)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    figure(arrays, synthetic, records, args.out.with_suffix(".png"))
    print(f"wrote {args.out.with_suffix('.json')} and .png")


def figure(arrays, synthetic: dict[str, np.ndarray], records, path: Path) -> None:
    columns = ("T1", "real PET", *MODELS)
    fig, axes = plt.subplots(2, len(columns), figsize=(2.6 * len(columns), 5.6))
    for row in range(2):
        z = arrays.t1.shape[3] // 2
        images = [arrays.t1[row], arrays.pet[row]] + [np.asarray(synthetic[m][row]).squeeze() for m in MODELS]
        for col, (title, image) in enumerate(zip(columns, images)):
            ax = axes[row, col]
            cmap, vmax = ("gray", None) if col == 0 else ("hot", 2.2)
            ax.imshow(np.rot90(image[:, :, z]), cmap=cmap, vmin=0, vmax=vmax)
            ax.set_title(f"{title}\n{records[row].subject_id}" if col == 0 else title, fontsize=9)
            ax.axis("off")
    fig.suptitle("cyclegan-3d against paired models (SUVR 0-2.2)")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


if __name__ == "__main__":
    main()
