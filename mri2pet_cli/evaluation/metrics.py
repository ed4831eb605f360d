"""Image-quality metrics inside a brain mask (numpy): MAE, MSE, PSNR, SSIM, MS-SSIM, Pearson r.

SSIM follows Wang et al. 2004 with a Gaussian window (sigma 1.5 voxels, truncated at 3.5 sigma),
K1 = 0.01, K2 = 0.03, population statistics: the settings of scikit-image's
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
The SSIM map is averaged over the brain mask (over the whole cropped volume when no mask is given,
as scikit-image does). The data range is stated with every result: by default the range of the
reference PET inside the mask.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIGMA = 1.5
TRUNCATE = 3.5
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001)  # first three of Wang et al. 2003, renormalised below


def _filter(x: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(x, SIGMA, truncate=TRUNCATE, mode="reflect")


def _local_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mx = _filter(x)
    return mx, _filter(x * x) - mx * mx


def _ssim_maps(x: np.ndarray, y: np.ndarray, data_range: float, x_stats=None) -> tuple[np.ndarray, np.ndarray]:
    """SSIM and contrast-structure maps; ``x_stats`` (local mean and variance of x) when already known."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, vx = x_stats if x_stats is not None else _local_stats(x)
    my, vy = _local_stats(y)
    cov = _filter(x * y) - mx * my
    cs = (2 * cov + c2) / (vx + vy + c2)
    lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    return lum * cs, cs


def _mean(values: np.ndarray, mask: np.ndarray | None) -> float:
    if mask is not None:
        return float(values[mask].mean())
    pad = (2 * int(TRUNCATE * SIGMA + 0.5) + 1 - 1) // 2  # scikit-image crops the filter's border
    return float(values[tuple(slice(pad, -pad) for _ in values.shape)].mean())


def ssim(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None):
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    data_range = data_range if data_range is not None else _range(ref, mask)
    return _mean(_ssim_maps(ref, out, data_range)[0], mask)


def ms_ssim(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None):
    """Multi-scale SSIM over three scales (the grid is too small for five), weights renormalised."""
    return ssim_and_ms_ssim_many(reference, [test], mask, data_range)[0][1]


def ssim_and_ms_ssim_many(
    reference: np.ndarray, tests: list[np.ndarray], mask: np.ndarray | None = None, data_range: float | None = None
) -> list[tuple[float, float]]:
    """(SSIM, MS-SSIM) of each test image against one reference.

    MS-SSIM's first scale is SSIM's maps, and the reference's local statistics at each scale are
    made once for all the test images.
    """
    ref = np.asarray(reference, np.float64)
    data_range = data_range if data_range is not None else _range(ref, mask)
    m = None if mask is None else mask.astype(bool)
    levels = []  # per scale: the reference, its local statistics, the mask
    for level in range(len(MS_SSIM_WEIGHTS)):
        if level > 0:
            ref = _halve(ref)
            m = None if m is None else _halve(m.astype(np.float64)) > 0.5
        levels.append((ref, _local_stats(ref), m))
    return [_ssim_and_ms_ssim(levels, np.asarray(t, np.float64), data_range) for t in tests]


def _ssim_and_ms_ssim(levels: list[tuple], out: np.ndarray, data_range: float) -> tuple[float, float]:
    weights = np.asarray(MS_SSIM_WEIGHTS) / np.sum(MS_SSIM_WEIGHTS)
    single, value = 0.0, 1.0
    for level, (ref, stats, m) in enumerate(levels):
        if level > 0:
            out = _halve(out)
        full, cs = _ssim_maps(ref, out, data_range, stats)
        if level == 0:
            single = _mean(full, m)
        term = _mean(full if level == len(weights) - 1 else cs, m)
        value *= max(term, 1e-6) ** weights[level]
    return single, float(value)


def _halve(x: np.ndarray) -> np.ndarray:
    """2x2x2 average pooling (odd edges dropped)."""
    s = [d - d % 2 for d in x.shape]
    x = x[: s[0], : s[1], : s[2]]
    return x.reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))


def _range(reference: np.ndarray, mask: np.ndarray | None) -> float:
    values = reference[mask] if mask is not None else reference
    return float(values.max() - values.min())


def psnr(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None, data_range: float | None = None):
    data_range = data_range if data_range is not None else _range(np.asarray(reference, np.float64), mask)
    mse = mean_squared_error(reference, test, mask)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range**2 / mse))


def mean_squared_error(reference: np.ndarray, test: np.ndarray, mask: np.ndarray | None = None) -> float:
    diff = np.asarray(test, np.float64) - np.asarray(reference, np.float64)
    return float(np.mean((diff[mask] if mask is not None else diff) ** 2))


def image_metrics(reference: np.ndarray, test: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """All metrics of ``test`` against ``reference`` inside ``mask``; data range = reference range in the mask."""
    mask = mask.astype(bool)
    ref, out = np.asarray(reference, np.float64), np.asarray(test, np.float64)
    data_range = _range(ref, mask)
    [(single, multi)] = ssim_and_ms_ssim_many(ref, [out], mask, data_range)
    return {
        "mae": float(np.mean(np.abs(out[mask] - ref[mask]))),
        "mse": mean_squared_error(ref, out, mask),
        "psnr": psnr(ref, out, mask, data_range),
        "ssim": single,
        "ms_ssim": multi,
        "pearson_r": float(np.corrcoef(ref[mask], out[mask])[0, 1]),
        "data_range": data_range,
    }
