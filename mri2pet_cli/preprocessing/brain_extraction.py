"""deepbet's brain mask of a RAS T1, with deepbet's own networks and steps.

``BrainExtraction.run`` (deepbet 1.0.2) spends 0.47 s of its 3 s in two ``torch.quantile`` calls
that sort the 2 M voxels of its 128^3 copy for the 0.5 and 99.5 % intensities, and copies the
volume four times for outputs mri2pet does not use. :func:`deepbet_mask` runs the same steps
(``run_model`` then ``postprocess``, code under deepbet's MIT licence) with the two quantiles
taken by selection; the mask is the same voxel for voxel (tests/preprocessing/test_preprocess.py).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _deepbet():
    import torch
    from deepbet.bet import BrainExtraction

    return BrainExtraction(no_gpu=not torch.cuda.is_available())


def quantile_by_selection(values, q: float):
    """``torch.quantile(values, q)`` (linear interpolation) by two selections instead of a full sort.

    The same arithmetic as torch: the rank in the values' dtype, then ``lerp`` of its two neighbours.
    """
    import torch

    flat = values.flatten()
    rank = torch.tensor(q, dtype=flat.dtype, device=flat.device) * (flat.numel() - 1)
    below, above = int(rank), int(torch.ceil(rank))
    low = torch.kthvalue(flat, below + 1).values
    high = low if above == below else torch.kthvalue(flat, above + 1).values
    return torch.lerp(low, high, rank - below)


def deepbet_mask(data: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """The brain mask (bool) deepbet gives for ``data`` (a RAS volume), as ``BrainExtraction.run`` does."""
    bet = _deepbet()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probability = _run_model(bet, np.array(data, dtype=np.float32))
    return bet.postprocess(probability > threshold, 0).astype(bool)


def _run_model(bet, x: np.ndarray, small_shape=(128, 128, 128), shape=(256, 256, 256), bbox_margin=0.1):
    """deepbet's ``BrainExtraction.run_model`` with :func:`quantile_by_selection` for the intensity range."""
    import torch
    import torch.nn.functional as F
    from deepbet.utils import keep_largest_connected_component, normalize

    device = next(bet.model.parameters()).device
    x = torch.nan_to_num(torch.from_numpy(x).to(device))
    mask = torch.zeros_like(x)
    x_small = F.interpolate(x[None, None], small_shape, mode="nearest-exact")[0, 0]
    low, high = quantile_by_selection(x_small, 0.005), quantile_by_selection(x_small, 0.995)
    with torch.no_grad():
        mask_small = bet.bbox_model(normalize(x_small, low, high)[None, None])[0, 1]
    mask_small = keep_largest_connected_component((mask_small > 0.5).float().cpu().numpy())
    mask_small = torch.from_numpy(mask_small).to(device)
    bet.bbox = bet.get_bbox_with_margin(mask_small, mask.shape, bbox_margin)
    x = F.interpolate(x[bet.bbox][None, None], shape, mode="nearest-exact")[0, 0]
    with torch.no_grad():
        mask_bbox = bet.model(normalize(x, low, high)[None, None])[0, 1]
    mask[bet.bbox] = F.interpolate(mask_bbox[None, None], mask[bet.bbox].shape, mode="nearest-exact")[0, 0]
    return mask.cpu().numpy()
