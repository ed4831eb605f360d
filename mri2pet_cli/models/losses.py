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
