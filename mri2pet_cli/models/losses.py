"""Losses shared by the models (torch)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (torch.abs(pred - target) * mask).sum() / mask.sum().clamp_min(1.0)


def _gaussian_window(sigma: float = 1.5, radius: int = 5, device=None, dtype=None) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    r = g.numel() // 2
    x = F.conv3d(x, g.view(1, 1, -1, 1, 1), padding=(r, 0, 0))
    x = F.conv3d(x, g.view(1, 1, 1, -1, 1), padding=(0, r, 0))
    return F.conv3d(x, g.view(1, 1, 1, 1, -1), padding=(0, 0, r))


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean SSIM and mean contrast-structure term of single-channel 3D batches (Gaussian window, sigma 1.5)."""
    g = _gaussian_window(device=x.device, dtype=x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = _blur(x, g), _blur(y, g)
    vx = _blur(x * x, g) - mx * mx
    vy = _blur(y * y, g) - my * my
    cov = _blur(x * y, g) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(), cs.mean()


def ssim_loss(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.5) -> torch.Tensor:
    return 1.0 - ssim(x, y, data_range)[0]


# --- losses of the adversarial models (GLA-GAN, pix2pix) ---------------------------------------

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)  # GLA-GAN: three scales, the first three weights of Wang et al.


def _valid_blur(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian without padding, skipping an axis shorter than the window (as pytorch-msssim)."""
    for axis in range(3):
        if x.shape[2 + axis] >= g.numel():
            shape = [1, 1, 1, 1, 1]
            shape[2 + axis] = g.numel()
            x = F.conv3d(x, g.view(shape))
    return x


def ms_ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 2.5, weights: tuple[float, ...] = MS_SSIM_WEIGHTS
) -> torch.Tensor:
    """Multi-scale SSIM of single-channel 3D batches: 11-voxel Gaussian window (sigma 1.5), no padding.

    prod(cs_i ** w_i for the finer scales) * ssim_last ** w_last, halving by 2x2x2 average pooling;
    the weights are used as given (not renormalised), as in Wang et al. and pytorch-msssim.
    """
    g = _gaussian_window(device=x.device, dtype=x.dtype)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    factors = []
    for level, weight in enumerate(weights):
        mx, my = _valid_blur(x, g), _valid_blur(y, g)
        vx = _valid_blur(x * x, g) - mx * mx
        vy = _valid_blur(y * y, g) - my * my
        cov = _valid_blur(x * y, g) - mx * my
        cs_map = (2 * cov + c2) / (vx + vy + c2)
        if level < len(weights) - 1:
            factors.append(torch.relu(cs_map.flatten(1).mean(1)) ** weight)
            padding = [s % 2 for s in x.shape[2:]]
            x, y = F.avg_pool3d(x, 2, padding=padding), F.avg_pool3d(y, 2, padding=padding)
        else:
            ssim_map = ((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs_map
            factors.append(torch.relu(ssim_map.flatten(1).mean(1)) ** weight)
    return torch.stack(factors).prod(0).mean()


def ms_ssim_loss(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.5) -> torch.Tensor:
    return 1.0 - ms_ssim(x, y, data_range)


def region_means(volume: torch.Tensor, labels: torch.Tensor, n_regions: int) -> torch.Tensor:
    """Mean of ``volume`` (N, 1, D, H, W) in each label 1..n_regions of ``labels`` (D, H, W): (N, n_regions)."""
    flat = volume.flatten(1)
    index = labels.flatten().long().to(volume.device)
    sums = flat.new_zeros(flat.shape[0], n_regions + 1).index_add(1, index, flat)
    counts = torch.bincount(index, minlength=n_regions + 1).to(flat.dtype).clamp_min(1.0)
    return (sums / counts)[:, 1:]  # label 0 (background) dropped


def roi_loss(pred: torch.Tensor, target: torch.Tensor, labels: torch.Tensor, n_regions: int = 116) -> torch.Tensor:
    """GLA-GAN's ROI loss: mean squared difference of the regions' mean uptake (AAL: 116 regions)."""
    present = torch.bincount(labels.flatten().long(), minlength=n_regions + 1)[1:] > 0
    diff = region_means(pred, labels, n_regions) - region_means(target, labels, n_regions)
    return (diff[:, present] ** 2).mean()


def adversarial_loss(logits: torch.Tensor, real: bool, kind: str = "lsgan") -> torch.Tensor:
    """The generator's or discriminator's adversarial term: least squares (LSGAN) or binary cross-entropy."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ValueError(f"unknown adversarial loss {kind!r}")
