"""Scoring synthetic PET against real PET, with the two baselines of the seed papers.

Baselines: "mean training PET" (the voxel-wise mean of the training PETs, the same image for every
test subject) and "population" (Jung et al.: each test PET scored against every training PET,
then averaged). In the population baseline MAE, MSE, PSNR and r use every training PET; SSIM and
MS-SSIM use a seeded random subset of 20 training PETs, because they cost about 0.2 s per pair.
"""

from __future__ import annotations

import contextlib

import numpy as np

from ..dataset import Arrays
from ..metrics import image_metrics, ssim_and_ms_ssim_many

METRICS = ("mae", "mse", "psnr", "ssim", "ms_ssim", "pearson_r")
POPULATION_SSIM_SUBSET = 20


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from ..errors import Mri2PetError

        raise Mri2PetError("--device cuda: no CUDA GPU is available here", hint="use --device auto or cpu")
    from ..names import check_name

    check_name(name, ("auto", "cpu", "cuda"), "device")
    return torch.device(name)


def autocast(device, precision: str):
    """bf16 autocast where asked ("bf16"), or on a GPU with "auto"; float32 otherwise."""
    import torch

    use = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16) if use else contextlib.nullcontext()


def predict(
    model,
    t1: np.ndarray,
    mask: np.ndarray,
    age: np.ndarray | None = None,
    *,
    scan_age: np.ndarray | None = None,
    device=None,
    precision: str = "fp32",
    samples: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Synthetic PET for a stack of subjects (n, X, Y, Z); returns (mean, std or None).

    The defaults (one sample at temperature 0) give a sampling model's point estimate: the PET
    decoded from the mean of its conditional prior. Models that do not sample ignore both.
    ``scan_age``: the T1s' ages when the PET is wanted for another ``age`` (models with an age-only effect).
    """
    import torch

    from ..models.cpu_kernels import onednn_convolutions

    device = device or resolve_device("auto")
    model = model.to(device).eval()
    generator = torch.Generator(device=device).manual_seed(seed)
    means, stds = [], []
    for i in range(len(t1)):
        x = torch.from_numpy(t1[i : i + 1, None]).to(device)
        m = torch.from_numpy(mask[i : i + 1, None].astype(np.float32)).to(device)
        a = None
        if age is not None and np.isfinite(age[i]):
            a = torch.tensor([float(age[i])], device=device)
        extra = {} if scan_age is None else {"scan_age": torch.tensor([float(scan_age[i])], device=device)}
        with torch.no_grad(), autocast(device, precision), onednn_convolutions(model):
            mean, std = model.synthesize(
                x, m, a, samples=samples, temperature=temperature, generator=generator, **extra
            )
        means.append(mean.float().cpu().numpy()[0, 0])
        stds.append(None if std is None else std.float().cpu().numpy()[0, 0])
    return np.stack(means), (None if stds[0] is None else np.stack(stds))


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
        m: {"mean": float(np.mean([r[m] for r in rows])), "std": float(np.std([r[m] for r in rows]))}
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
