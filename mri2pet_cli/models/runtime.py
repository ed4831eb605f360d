"""Running a model: the device, the precision (bf16 autocast) and batched prediction with optional samples."""

from __future__ import annotations

import contextlib

import numpy as np


def resolve_device(name: str = "auto"):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        from mri2pet_cli.errors import Mri2PetError

        raise Mri2PetError("--device cuda: no CUDA GPU is available here", hint="use --device auto or cpu")
    from mri2pet_cli.names import check_name

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

    from mri2pet_cli.models.cpu_kernels import onednn_convolutions

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
