"""Scoring synthetic PET against real PET, with the two baselines of the seed papers.

Baselines: "mean training PET" (the voxel-wise mean of the training PETs, the same image for every
test subject) and "population" (Jung et al.: each test PET scored against every training PET,
then averaged). In the population baseline MAE, MSE, PSNR and r use every training PET; SSIM and
MS-SSIM use a seeded random subset of 20 training PETs, because they cost about 0.2 s per pair.
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.evaluation.metrics import image_metrics, ssim_and_ms_ssim_many
from mri2pet_cli.models.runtime import autocast, predict
from mri2pet_cli.preprocessing.cohort import Arrays

METRICS = ("mae", "mse", "psnr", "ssim", "ms_ssim", "pearson_r")


POPULATION_SSIM_SUBSET = 20


def score(predictions: np.ndarray, arrays: Arrays, progress=None) -> list[dict]:
    rows = []
    for i, sid in enumerate(arrays.ids):
        rows.append({"subject": sid, **image_metrics(arrays.pet[i], predictions[i], arrays.mask[i] > 0)})
        if progress:
            progress(sid)
    return rows


def mean_training_baseline(train: Arrays, test: Arrays) -> list[dict]:
    template = train.pet.mean(axis=0)
    return score(np.repeat(template[None], len(test.ids), axis=0) * test.mask, test)


def population_baseline(train: Arrays, test: Arrays, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    subset = rng.choice(len(train.ids), size=min(POPULATION_SSIM_SUBSET, len(train.ids)), replace=False)
    rows = []
    for i, sid in enumerate(test.ids):
        mask = test.mask[i] > 0
        ref = test.pet[i].astype(np.float64)
        data_range = float(ref[mask].max() - ref[mask].min())
        others = train.pet * test.mask[i]
        diff = others[:, mask] - ref[mask]
        mse = np.mean(diff**2, axis=1)
        r = [np.corrcoef(ref[mask], o[mask])[0, 1] for o in others]
        structure = ssim_and_ms_ssim_many(ref, [others[j] for j in subset], mask, data_range)
        rows.append(
            {
                "subject": sid,
                "mae": float(np.mean(np.abs(diff))),
                "mse": float(mse.mean()),
                "psnr": float(np.mean(10 * np.log10(data_range**2 / mse))),
                "ssim": float(np.mean([single for single, _ in structure])),
                "ms_ssim": float(np.mean([multi for _, multi in structure])),
                "pearson_r": float(np.mean(r)),
                "data_range": data_range,
            }
        )
    return rows


def summarize(rows: list[dict]) -> dict[str, dict[str, float]]:
    return {
        m: {"mean": float(np.mean([r[m] for r in rows])), "std": float(np.std([r[m] for r in rows])), "n": len(rows)}
        for m in METRICS
        if rows and m in rows[0]
    }


def validation_score(model, arrays: Arrays, device, precision: str) -> float | None:
    """The model's own selection score on the validation subjects, one at a time (None: it has none)."""
    import torch

    scores = []
    for i in range(len(arrays.ids)):
        volumes = (torch.from_numpy(v[i : i + 1, None]).to(device) for v in (arrays.t1, arrays.pet, arrays.mask))
        age = torch.from_numpy(arrays.age[i : i + 1]).to(device)
        with autocast(device, precision):
            score = model.validation_score(*volumes, age)
        if score is None:
            return None
        scores.append(score)
    return float(np.mean(scores))


def validation_mae(model, arrays: Arrays, device, precision: str) -> float:
    pred, _ = predict(model, arrays.t1, arrays.mask, arrays.age, device=device, precision=precision)
    return float(np.mean([np.abs(pred[i] - arrays.pet[i])[arrays.mask[i] > 0].mean() for i in range(len(pred))]))
