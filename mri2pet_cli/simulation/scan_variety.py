"""Simulator v2: the variety of real clinical T1 scans, each switched on per subject by chance.

neck          neck, jaw and shoulders in the field of view (long z coverage)
origin_offset the image origin 40-100 mm from the head centre
thick_slices  a 2D acquisition: 0.9-1 mm in plane, 3-5 mm slices, any of the three planes
low_contrast  1.5 T (low grey/white contrast) or contrast-enhanced (bright vessels and sinuses)
cut_fov       a field of view that cuts the top of the head or the cerebellum
motion        mild motion ringing along a phase-encoding direction

What each subject got is in its truth JSON (``subject.extras["variety"]``).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft

from mri2pet_cli.errors import UnknownNameError

VARIETIES = ("neck", "origin_offset", "thick_slices", "low_contrast", "cut_fov", "motion")
DEFAULT_PROBABILITY = {
    "neck": 0.4,
    "origin_offset": 0.3,
    "thick_slices": 0.15,
    "low_contrast": 0.25,
    "cut_fov": 0.15,
    "motion": 0.2,
}
LOW_CONTRAST_SCANNERS = ("1.5t-spgr", "contrast-enhanced")
BRAIN_TOP_MNI = np.array([0.0, -20.0, 78.0])
CEREBELLUM_BOTTOM_MNI = np.array([0.0, -60.0, -66.0])


def variety_probabilities(spec: str) -> dict[str, float]:
    """'default', 'none', 'all', or a comma list of names (those on for every subject, the rest off)."""
    spec = spec.strip()
    if spec == "default":
        return dict(DEFAULT_PROBABILITY)
    if spec in ("none", ""):
        return dict.fromkeys(VARIETIES, 0.0)
    if spec == "all":
        return dict.fromkeys(VARIETIES, 1.0)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    unknown = [n for n in names if n not in VARIETIES]
    if unknown:
        raise UnknownNameError(
            f"unknown scan variety {unknown[0]!r}",
            hint=f"use default, none, all or a comma list of {', '.join(VARIETIES)}",
        )
    return {v: 1.0 if v in names else 0.0 for v in VARIETIES}


def draw_variety(rng: np.random.Generator, probability: dict[str, float]) -> dict:
    """Which varieties a subject gets, with their parameters (every draw made, on or off, so streams align)."""
    on = {v: bool(rng.random() < probability[v]) for v in VARIETIES}
    params = {
        "neck": {"extra_mm": round(float(rng.uniform(80, 140)), 1)},
        "origin_offset": {"offset_mm": (rng.normal(0, 1, 3) / 1.0).tolist(), "norm_mm": float(rng.uniform(40, 100))},
        "thick_slices": {
            "slice_mm": round(float(rng.uniform(3.0, 5.0)), 2),
            "in_plane_mm": round(float(rng.uniform(0.9, 1.0)), 3),
            "axis": int(rng.integers(0, 3)),
        },
        "low_contrast": {"scanner": str(rng.choice(LOW_CONTRAST_SCANNERS))},
        "cut_fov": {"where": str(rng.choice(["top", "cerebellum"])), "cut_mm": round(float(rng.uniform(0, 12)), 1)},
        "motion": {
            "axis": int(rng.integers(0, 3)),
            "fraction": round(float(rng.uniform(0.1, 0.3)), 3),
            "phase_sd": round(float(rng.uniform(0.2, 0.5)), 3),
        },
    }
    direction = np.asarray(params["origin_offset"].pop("offset_mm"))
    direction /= max(np.linalg.norm(direction), 1e-6)
    params["origin_offset"]["offset_mm"] = (direction * params["origin_offset"].pop("norm_mm")).round(1).tolist()
    if on["cut_fov"] and params["cut_fov"]["where"] == "cerebellum":
        on["neck"] = False  # a slab that cuts the cerebellum cannot hold the neck
    return {v: params[v] for v in VARIETIES if on[v]}


# ----------------------------------------------------------------------------------------------
# field of view


def field_of_view(variety: dict, head_to_world: np.ndarray, fov_mm: tuple, center: np.ndarray):
    """The T1's field of view (world x, y, z extents) and centre after the neck and cut-FOV varieties."""
    fov = np.array(fov_mm, dtype=float)
    center = np.array(center, dtype=float)
    bottom, top = center[2] - fov[2] / 2, center[2] + fov[2] / 2
    if "neck" in variety:
        bottom -= variety["neck"]["extra_mm"]
    if "cut_fov" in variety:
        cut = variety["cut_fov"]
        if cut["where"] == "top":
            top = (head_to_world @ np.append(BRAIN_TOP_MNI - [0, 0, cut["cut_mm"]], 1.0))[2]
        else:
            bottom = (head_to_world @ np.append(CEREBELLUM_BOTTOM_MNI + [0, 0, 5 + cut["cut_mm"]], 1.0))[2]
    fov[2] = top - bottom
    center[2] = (top + bottom) / 2
    return tuple(fov), center


# ----------------------------------------------------------------------------------------------
# neck, jaw and shoulders


def _ellipse_radius(x: np.ndarray, y: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    return np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)


def body_t1(mni: np.ndarray, contrast: tuple[float, ...]) -> np.ndarray:
    """T1 intensity of neck, jaw, spine and shoulders at MNI points (3, ...); 0 where there is none.

    A coarse body below the brain: enough for a registration to be trapped by, not anatomy.
    """
    c_csf, c_gm, _, _, c_scalp = contrast
    x, y, z = mni
    muscle, fat, marrow, cord = 0.75 * c_gm, c_scalp, 0.8 * c_scalp, 0.85
    out = np.zeros(x.shape, dtype=np.float32)
    # jaw and tongue: an ellipsoid under the front of the brain
    jaw = np.sqrt((x / 55) ** 2 + ((y - 25) / 55) ** 2 + ((z + 80) / 35) ** 2)
    out = np.where(jaw < 1, np.where(jaw > 0.88, fat, muscle), out)
    # neck: widening towards the shoulders
    width = 1.0 + np.clip((-z - 170) / 40.0, 0, 1) * 2.2
    neck = _ellipse_radius(x, y, 0.0, -25.0, 52.0 * width, 58.0)
    in_neck = (z < -60) & (neck < 1)
    out = np.where(in_neck, np.where(neck > 1 - 6 / 52.0, fat, muscle), out)
    # cervical spine: marrow around a canal with the cord
    spine = _ellipse_radius(x, y, 0.0, -45.0, 1.0, 1.0)
    out = np.where(in_neck & (spine < 12), marrow, out)
    out = np.where(in_neck & (spine < 7), c_csf, out)
    out = np.where(in_neck & (spine < 4), cord, out)
    return out.astype(np.float32)


# ----------------------------------------------------------------------------------------------
# acquisition


def thick_slice_grid(affine: np.ndarray, shape: tuple[int, ...], axis: int, sub: int = 3):
    """A grid with ``sub`` thin slices per thick slice along ``axis`` (for the slice profile)."""
    fine = affine.copy()
    fine[:3, axis] = affine[:3, axis] / sub
    # the first thin slice sits (sub - 1) / 2 thin steps before the thick slice's centre
    fine[:3, 3] = affine[:3, 3] - fine[:3, axis] * (sub - 1) / 2
    fine_shape = list(shape)
    fine_shape[axis] *= sub
    return fine, tuple(fine_shape)


def average_slices(data: np.ndarray, axis: int, sub: int = 3) -> np.ndarray:
    """Thin slices back to thick ones: a box slice profile."""
    moved = np.moveaxis(data, axis, 0)
    thick = moved.reshape(moved.shape[0] // sub, sub, *moved.shape[1:]).mean(axis=1)
    return np.moveaxis(thick, 0, axis).astype(np.float32)


def motion_ringing(data: np.ndarray, axis: int, fraction: float, phase_sd: float, rng: np.random.Generator):
    """Random phase errors on a fraction of the k-space lines along one axis (ghosts and ringing)."""
    k = sp_fft.fft(data.astype(np.float32), axis=axis, workers=1)
    n = data.shape[axis]
    lines = np.flatnonzero(rng.random(n) < fraction)
    freq = np.abs(np.fft.fftfreq(n))
    lines = lines[freq[lines] > 0.02]  # the centre of k-space is acquired while the head is still
    phase = np.ones(n, dtype=np.complex64)
    phase[lines] = np.exp(1j * rng.normal(0.0, phase_sd, lines.size)).astype(np.complex64)
    shape = [1] * data.ndim
    shape[axis] = n
    k *= phase.reshape(shape)
    return np.abs(sp_fft.ifft(k, axis=axis, workers=1)).astype(np.float32)
