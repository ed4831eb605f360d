"""The simulated paired T1 / FDG-PET cohort.

No patient data ships with mri2pet. Tests, demos and the shipped weights use a
cohort that this module renders from the MNI152 tissue maps and the AAL atlas.
Every number below is explained in docs/simulation.md.

Spaces: anatomy is built on an MNI-aligned simulation grid (1.5 mm). A
subject's T1 is then sampled in a scanner ("native") space through a known
affine (head pose and size), the PET in its own space through a further small
rigid offset. The ground truth is what a perfect affine registration to MNI
would give on the model grid, plus the transforms themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from . import __version__
from .atlas import (
    AD_PATTERN_REGIONS,
    FRONTAL_REGIONS,
    MEDIAL_TEMPORAL_REGIONS,
    TemplateMaps,
    aal_names,
    region_labels,
    template_maps,
)
from .errors import UnknownNameError
from .fdg_model import FdgModel
from .fdg_model import regional_factors as fdg_regional_factors
from .grid import CENTER_MM, ModelGrid, default_grid
from .io import check_writable, save_volume, write_atomic, write_text_atomic
from .resample import resample
from .scan_variety import (
    average_slices,
    body_t1,
    draw_variety,
    field_of_view,
    motion_ringing,
    thick_slice_grid,
    variety_probabilities,
)

SIM_GRID = ModelGrid(shape=(136, 160, 136), spacing=1.5, center=CENTER_MM)
ORIENTATIONS = ("RAS", "LPS", "LAS", "RPI", "LIA", "PIR", "ASL", "SRA")
BRAIN_CENTER_MNI = np.array([0.0, -18.0, 12.0])

# Group-level demographics (ADNI-like; see docs/simulation.md).
DIAGNOSIS_P = {"CN": 0.40, "MCI": 0.35, "AD": 0.25}
SEVERITY_RANGE = {"CN": (0.0, 0.05), "MCI": (0.2, 0.5), "AD": (0.5, 1.0)}
AGE_RANGE = (55.0, 92.0)

# Scanner T1 contrasts: (CSF, GM, WM, skull, scalp) relative to WM.
SCANNERS = {
    "siemens-mprage": (0.20, 0.60, 1.0, 0.08, 0.75),
    "ge-spgr": (0.28, 0.66, 1.0, 0.12, 0.85),
    "philips-tfe": (0.14, 0.54, 1.0, 0.06, 0.70),
}

# v2 adds the low-contrast ones (scan_variety.low_contrast); kept apart so v1's draws stay as they were.
LOW_CONTRAST_SCANNERS = {
    "1.5t-spgr": (0.30, 0.72, 1.0, 0.10, 0.85),
    "contrast-enhanced": (0.25, 0.68, 1.0, 0.10, 0.85),
}
VESSEL_T1 = 1.5  # gadolinium-enhanced sinuses and veins, relative to WM
VERSIONS = (1, 2)
DEFAULT_VERSION = 2


def scanner_contrast(name: str) -> tuple[float, ...]:
    return SCANNERS.get(name) or LOW_CONTRAST_SCANNERS[name]


# FDG uptake per tissue (GM about 4x WM, CSF near zero), before regional factors.
UPTAKE = {"gm": 4.0, "wm": 1.0, "csf": 0.05, "scalp": 0.25}
AGE_FRONTAL_DECLINE_PER_YEAR = 0.0035  # fraction per year after 50, frontal + anterior cingulate
AGE_GLOBAL_DECLINE_PER_YEAR = 0.001
AD_PARIETAL_DROP = 0.28  # posterior cingulate, precuneus, inferior parietal, angular at severity 1
AD_TEMPORAL_DROP = 0.20  # middle and inferior temporal gyri
AD_MEDIAL_TEMPORAL_DROP = 0.15
REGIONAL_SD = 0.04  # per-subject random regional variation (log scale)


@dataclass
class Subject:
    """Demographics and every random draw that defines one simulated subject."""

    participant_id: str
    age: float
    sex: str
    diagnosis: str
    severity: float
    brain_age: float
    scanner: str
    head_scale: float
    rotation_deg: list[float]
    shift_mm: list[float]
    t1_orientation: str
    t1_spacing_mm: list[float]
    pet_orientation: str
    pet_spacing_mm: list[float]
    pet_offset_rotation_deg: list[float]
    pet_offset_shift_mm: list[float]
    psf_fwhm_mm: float
    suv_gm_mean: float
    t1_noise: float
    t1_gain: float
    extras: dict = field(default_factory=dict)


def draw_subject(seed: int, index: int, version: int = 1, variety: dict[str, float] | None = None) -> Subject:
    """All random choices for subject ``index`` of the cohort with ``seed``.

    Each subject has its own random stream, so a cohort is the same whatever
    the number of jobs, and subject 7 is the same in a cohort of 10 or 100.
    Version 2 draws the same demographics, then its scan variety from a stream of its own
    (``variety``: probability of each, default scan_variety.DEFAULT_PROBABILITY).
    """
    subject = _draw_v1(seed, index)
    if version == 1:
        return subject
    if version not in VERSIONS:
        raise ValueError(f"unknown simulator version {version}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7]))
    chosen = draw_variety(rng, variety if variety is not None else variety_probabilities("default"))
    subject.extras.update({"version": 2, "variety": chosen})
    if "low_contrast" in chosen:
        subject.scanner = chosen["low_contrast"]["scanner"]
    if "origin_offset" in chosen:
        subject.shift_mm = (np.asarray(subject.shift_mm) + chosen["origin_offset"]["offset_mm"]).round(2).tolist()
    if "thick_slices" in chosen:
        thick = chosen["thick_slices"]
        spacing = [thick["in_plane_mm"]] * 3
        spacing[thick["axis"]] = thick["slice_mm"]
        subject.t1_spacing_mm = spacing
    return subject


def subject_version(subject: Subject) -> int:
    return int(subject.extras.get("version", 1))


def _draw_v1(seed: int, index: int) -> Subject:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    diagnosis = str(rng.choice(list(DIAGNOSIS_P), p=list(DIAGNOSIS_P.values())))
    if diagnosis == "CN":
        age = rng.uniform(*AGE_RANGE)
    else:
        age = float(np.clip(rng.normal(75.0, 7.0), *AGE_RANGE))
    sex = str(rng.choice(["F", "M"]))
    severity = float(rng.uniform(*SEVERITY_RANGE[diagnosis]))
    return Subject(
        participant_id=f"sub-{index + 1:03d}",
        age=round(float(age), 1),
        sex=sex,
        diagnosis=diagnosis,
        severity=round(severity, 3),
        # atrophy follows a biological age that the T1 shows only with this scatter
        brain_age=float(age + rng.normal(0.0, 4.0)),
        scanner=str(rng.choice(list(SCANNERS))),
        head_scale=float(np.clip(rng.normal(0.96 if sex == "M" else 0.92, 0.035), 0.84, 1.06)),
        rotation_deg=rng.uniform(-15, 15, 3).round(2).tolist(),
        shift_mm=rng.uniform(-20, 20, 3).round(2).tolist(),
        t1_orientation=str(rng.choice(ORIENTATIONS)),
        t1_spacing_mm=[round(float(x), 3) for x in (*[rng.uniform(1.0, 1.15)] * 2, rng.uniform(1.0, 1.3))],
        pet_orientation=str(rng.choice(ORIENTATIONS)),
        pet_spacing_mm=[round(float(x), 3) for x in (*[rng.uniform(1.9, 2.2)] * 2, rng.uniform(2.0, 2.5))],
        pet_offset_rotation_deg=rng.uniform(-3, 3, 3).round(2).tolist(),
        pet_offset_shift_mm=rng.uniform(-5, 5, 3).round(2).tolist(),
        psf_fwhm_mm=round(float(rng.uniform(6.0, 8.0)), 2),
        suv_gm_mean=round(float(rng.normal(8.0, 1.2)), 3),
        t1_noise=round(float(rng.uniform(0.015, 0.04)), 4),
        t1_gain=round(float(rng.uniform(300, 1500)), 1),
        extras={"stream": [int(seed), int(index)]},
    )


# ----------------------------------------------------------------------------------------------
# geometry helpers


def rotation_matrix(degrees: list[float] | np.ndarray) -> np.ndarray:
    """Rotation about x, then y, then z (degrees)."""
    ax, ay, az = np.deg2rad(degrees)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def rigid(degrees: list[float], shift: list[float], scale: float = 1.0) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = rotation_matrix(degrees) * scale
    out[:3, 3] = shift
    return out


def oriented_affine(code: str, spacing: list[float], fov_mm: tuple[float, float, float], center: np.ndarray):
    """A voxel grid with on-disk orientation ``code`` (e.g. 'LIA') covering ``fov_mm`` around ``center``.

    ``fov_mm`` is given along the world axes (x, y, z); returns (affine, shape).
    """
    ornt = nib.orientations.axcodes2ornt(tuple(code))
    directions = np.zeros((3, 3))
    shape = []
    for voxel_axis, (world_axis, sign) in enumerate(ornt):
        directions[int(world_axis), voxel_axis] = sign
        shape.append(int(round(fov_mm[int(world_axis)] / spacing[voxel_axis])))
    affine = np.eye(4)
    affine[:3, :3] = directions * np.asarray(spacing)
    affine[:3, 3] = center - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine, tuple(shape)


# ----------------------------------------------------------------------------------------------
# template-level maps on the simulation grid (once per process)


@dataclass(frozen=True)
class SimTemplates:
    maps: TemplateMaps
    outside_mm: np.ndarray  # distance outside the brain mask (mm), 0 inside
    ventricle_distance: np.ndarray  # distance outside the lateral ventricles (mm)
    ventricle_normal: np.ndarray  # unit vector pointing away from the ventricles, (3, *shape)
    near_ventricles: np.ndarray  # bool, the deep box that holds the lateral ventricles (for volume figures)
    cortical_labels: list[int]  # AAL cortex: not deep grey matter, not cerebellum


@lru_cache(maxsize=1)
def sim_templates() -> SimTemplates:
    maps = template_maps(SIM_GRID)
    outside = ndimage.distance_transform_edt(~maps.brain_mask, sampling=SIM_GRID.spacing).astype(np.float32)
    world = SIM_GRID.world_coordinates()
    central = (np.abs(world[0]) < 25) & (world[1] > -45) & (world[1] < 25) & (world[2] > -5) & (world[2] < 35)
    ventricles = central & (maps.csf > 0.5)
    distance = ndimage.distance_transform_edt(~ventricles, sampling=SIM_GRID.spacing).astype(np.float32)
    normal = np.stack(np.gradient(ndimage.gaussian_filter(distance, 1.0), SIM_GRID.spacing)).astype(np.float32)
    normal /= np.maximum(np.linalg.norm(normal, axis=0), 1e-3)
    names = aal_names()
    deep = set(region_labels(("Caudate", "Putamen", "Pallidum", "Thalamus")))
    cortical = [v for v, n in names.items() if v not in deep and not n.startswith(("Cerebelum", "Vermis"))]
    return SimTemplates(maps, outside, distance, normal, central, cortical)


# ----------------------------------------------------------------------------------------------
# anatomy, T1 and PET for one subject on the simulation grid


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], sd: float, step: int = 8) -> np.ndarray:
    """A smooth random scalar field with about ``sd``: Gaussian noise on a grid every ``step`` voxels, zoomed."""
    coarse_shape = tuple(int(np.ceil(s / step)) + 1 for s in shape)
    coarse = ndimage.gaussian_filter(rng.normal(0.0, 1.0, coarse_shape), 1.0)
    coarse *= sd / max(coarse.std(), 1e-6)
    return ndimage.zoom(coarse, [s / cs for s, cs in zip(shape, coarse_shape)], order=1)[
        : shape[0], : shape[1], : shape[2]
    ]


def smooth_displacement(rng: np.random.Generator, shape: tuple[int, ...], sd_mm: float, step: int = 8):
    """A smooth random displacement field (3, *shape) in mm with about ``sd_mm`` per component."""
    out = np.empty((3, *shape), dtype=np.float32)
    for c in range(3):
        out[c] = smooth_field(rng, shape, sd_mm, step)
    return out


def atrophy_fraction(labels: np.ndarray, cortex: np.ndarray, brain_age: float, severity: float) -> np.ndarray:
    """Fraction of grey matter turned into CSF in each voxel (cortical thinning, MTL atrophy)."""
    frac = np.zeros(labels.shape, dtype=np.float32)
    years = max(brain_age - 50.0, 0.0)
    frac[cortex] = 0.004 * years
    frac[np.isin(labels, region_labels(FRONTAL_REGIONS))] += 0.002 * years
    frac[np.isin(labels, region_labels(AD_PATTERN_REGIONS))] += 0.10 * severity
    frac[np.isin(labels, region_labels(MEDIAL_TEMPORAL_REGIONS))] = 0.006 * years + 0.30 * severity
    return np.clip(ndimage.gaussian_filter(frac, 1.0), 0.0, 0.6)


def ventricle_expansion(brain_age: float, severity: float) -> float:
    """How far (mm) the ventricle walls move outwards."""
    return float(np.clip(0.12 * max(brain_age - 50.0, 0.0) + 2.5 * severity, 0.0, 7.0))


def regional_factors(subject: Subject, rng: np.random.Generator) -> np.ndarray:
    """FDG uptake factor per AAL label (index 0 = unlabelled tissue)."""
    names = aal_names()
    lut = np.ones(max(names) + 1, dtype=np.float32)

    def scale(prefixes: tuple[str, ...], factor: float) -> None:
        lut[region_labels(prefixes)] *= factor

    # population pattern of resting FDG uptake (docs/simulation.md)
    scale(("Calcarine", "Cuneus", "Lingual", "Occipital_Sup", "Occipital_Mid"), 1.10)
    scale(("Caudate", "Putamen"), 1.10)
    scale(("Thalamus",), 1.05)
    scale(("Pallidum",), 0.80)
    scale(MEDIAL_TEMPORAL_REGIONS, 0.75)
    lut[[v for v, n in names.items() if n.startswith(("Cerebelum", "Vermis"))]] *= 0.85
    # per-subject variation, partly shared by both hemispheres
    pair_noise = {n.rsplit("_", 1)[0]: rng.normal(0.0, REGIONAL_SD) for n in names.values()}
    for v, n in names.items():
        lut[v] *= np.exp(pair_noise[n.rsplit("_", 1)[0]] + rng.normal(0.0, REGIONAL_SD / 2))
    # metabolism beyond atrophy: age (chronological, not brain age) and AD pattern
    years = max(subject.age - 50.0, 0.0)
    scale(FRONTAL_REGIONS, 1.0 - AGE_FRONTAL_DECLINE_PER_YEAR * years)
    scale(("Cingulum_Post", "Precuneus", "Parietal_Inf", "Angular"), 1.0 - AD_PARIETAL_DROP * subject.severity)
    scale(("Temporal_Mid", "Temporal_Inf"), 1.0 - AD_TEMPORAL_DROP * subject.severity)
    scale(MEDIAL_TEMPORAL_REGIONS, 1.0 - AD_MEDIAL_TEMPORAL_DROP * subject.severity)
    return lut


def vary_sulcal_depth(gm: np.ndarray, csf: np.ndarray, cortex: np.ndarray, rng: np.random.Generator):
    """Wider sulci in some places, narrower in others: up to 25 % of cortical GM exchanged with CSF."""
    field = smooth_field(rng, gm.shape, sd=0.12, step=6).astype(np.float32)
    widen = np.clip(field, 0.0, 0.25) * gm * cortex
    fill = np.minimum(np.clip(-field, 0.0, 0.25) * gm, csf) * cortex
    return gm - widen + fill, csf + widen - fill


def enhanced_vessels(
    outside: np.ndarray, csf: np.ndarray, brain: np.ndarray, skull_in: float, rng: np.random.Generator
) -> np.ndarray:
    """Weight (0-1) of contrast-filled sinuses and cortical veins on the simulation grid."""
    x, y, z = SIM_GRID.world_coordinates().astype(np.float32)
    rim = (outside > 0.3) & (outside < skull_in + 0.5)
    sagittal = rim & (np.abs(x) < 5) & ((z > 15) | (y < -75))
    transverse = rim & (y < -70) & (z > -40) & (z < -5) & (np.abs(x) > 8)
    veins_noise = ndimage.gaussian_filter(rng.normal(0, 1, outside.shape).astype(np.float32), 1.5)
    veins = brain & (csf > 0.5) & (veins_noise > np.percentile(veins_noise, 85))
    return ndimage.gaussian_filter((sagittal | transverse | veins).astype(np.float32), 0.6)


@dataclass
class SubjectVolumes:
    t1_mni: np.ndarray  # noise-free T1 on the simulation grid (WM = 1)
    pet_mni: np.ndarray  # PSF-blurred PET (SUV) on the simulation grid
    brain: np.ndarray  # brain mask (bool)
    labels: np.ndarray  # subject's AAL labels
    displacement: np.ndarray  # registration-relevant nonlinear part u (mm), (3, *shape)
    gm_volume_ml: float
    ventricle_volume_ml: float


def render_subject(subject: Subject, *, fdg: FdgModel | None = None, variation: bool = True) -> SubjectVolumes:
    """Anatomy, T1 and PET of one subject on the MNI-aligned simulation grid.

    Version 2 (``subject.extras["version"]``): multi-scale anatomy, sulcal depth, vessels when
    contrast-enhanced, and FDG uptake from the calibrated literature model (``fdg``, default the
    shipped one; ``variation=False`` leaves out the subject's own regional variation, for fitting).
    """
    tpl = sim_templates()
    maps = tpl.maps
    version = subject_version(subject)
    rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 1]))
    extra = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 5]))
    shape = SIM_GRID.shape
    spacing = SIM_GRID.spacing

    # individual shape (u) plus ventricle enlargement (v), both as displacements in mm
    u = smooth_displacement(rng, shape, sd_mm=1.5)
    if version >= 2:  # anatomy varies at more than one scale: lobes, gyri
        u += smooth_displacement(extra, shape, sd_mm=2.5, step=16)
        u += smooth_displacement(extra, shape, sd_mm=0.6, step=4)
    world = SIM_GRID.world_coordinates().astype(np.float32)
    # walls move out by `push` mm, fading over 10 mm: sampling nearer the ventricle enlarges it
    push = ventricle_expansion(subject.brain_age, subject.severity) * np.exp(-tpl.ventricle_distance / 10.0)
    source = world + u - push * tpl.ventricle_normal
    del push
    vox = (source - SIM_GRID.affine[:3, 3, None, None, None].astype(np.float32)) / spacing
    del source, world

    def warp(volume: np.ndarray, order: int = 1) -> np.ndarray:
        return ndimage.map_coordinates(volume, vox, order=order, mode="nearest", prefilter=False)

    gm, wm, csf = warp(maps.gm), warp(maps.wm), warp(maps.csf)
    labels = warp(maps.aal, order=0).astype(np.int16)
    outside = warp(tpl.outside_mm)
    brain = warp(maps.brain_mask.astype(np.float32)) > 0.5
    cortex = np.isin(labels, tpl.cortical_labels)

    loss = atrophy_fraction(labels, cortex, subject.brain_age, subject.severity) * gm
    gm = gm - loss
    csf = csf + loss
    if version >= 2:
        gm, csf = vary_sulcal_depth(gm, csf, cortex, extra)

    # T1: tissue contrast of the scanner, mild texture, CSF rim, skull and scalp
    c_csf, c_gm, c_wm, c_skull, c_scalp = scanner_contrast(subject.scanner)
    texture = 1.0 + 0.03 * ndimage.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 2.0) / 0.06
    t1 = (c_csf * csf + c_gm * gm + c_wm * wm) * texture
    skull_in = 2.0 + rng.uniform(0.0, 1.5)
    scalp_in = skull_in + rng.uniform(4.0, 7.0)
    scalp_out = scalp_in + rng.uniform(5.0, 8.0)
    shell = np.where(outside < skull_in, c_csf, np.where(outside < scalp_in, c_skull, c_scalp))
    shell = np.where(outside < scalp_out, shell, 0.0).astype(np.float32)
    shell = ndimage.gaussian_filter(shell, 0.7)
    outside_brain = ~brain
    t1[outside_brain] = shell[outside_brain]
    if subject.scanner == "contrast-enhanced":
        vessels = enhanced_vessels(outside, csf, brain, skull_in, extra)
        t1 = (t1 * (1 - vessels) + VESSEL_T1 * vessels).astype(np.float32)

    # PET: uptake by tissue, regional factors, age and AD effects, PSF blur
    if version >= 2:
        lut = fdg_regional_factors(subject.age, subject.severity, rng if variation else None, fdg)
    else:
        lut = regional_factors(subject, rng)
    factor = lut[labels]
    pet = (UPTAKE["gm"] * gm * factor + UPTAKE["wm"] * wm + UPTAKE["csf"] * csf).astype(np.float32)
    scalp = (outside >= scalp_in) & (outside < scalp_out)
    pet[scalp] = UPTAKE["scalp"]
    pet *= 1.0 - AGE_GLOBAL_DECLINE_PER_YEAR * max(subject.age - 50.0, 0.0)
    sigma = subject.psf_fwhm_mm / (2.0 * np.sqrt(2.0 * np.log(2.0))) / spacing
    pet = ndimage.gaussian_filter(pet, sigma)
    gm_sel = gm > 0.5
    pet *= subject.suv_gm_mean / float(pet[gm_sel].mean())

    voxel_ml = spacing**3 / 1000.0
    ventricles = (csf > 0.5) & tpl.near_ventricles
    return SubjectVolumes(
        t1_mni=t1.astype(np.float32),
        pet_mni=pet.astype(np.float32),
        brain=brain,
        labels=labels,
        displacement=u,
        gm_volume_ml=float(gm[brain].sum() * voxel_ml * subject.head_scale**3),
        ventricle_volume_ml=float(ventricles.sum() * voxel_ml * subject.head_scale**3),
    )


# ----------------------------------------------------------------------------------------------
# native scans


def native_to_mni(subject: Subject) -> np.ndarray:
    """The true affine from the T1's world (scanner) coordinates to MNI (mm)."""
    head_to_world = rigid(subject.rotation_deg, subject.shift_mm, subject.head_scale)
    return np.linalg.inv(head_to_world)


def pet_to_t1(subject: Subject) -> np.ndarray:
    """The true rigid map from PET world coordinates to T1 world coordinates."""
    return rigid(subject.pet_offset_rotation_deg, subject.pet_offset_shift_mm)


def t1_grid(subject: Subject) -> tuple[np.random.Generator, np.ndarray, tuple, np.ndarray]:
    """The raw T1's grid (affine, shape) and field-of-view centre, and the subject's T1 random stream
    after drawing them (the bias field and the noise come next, in that order)."""
    rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 2]))
    to_mni = native_to_mni(subject)
    center = np.linalg.inv(to_mni)[:3] @ np.append(BRAIN_CENTER_MNI, 1.0) + rng.uniform(-5, 5, 3)
    fov = (200.0, 250.0, 230.0)
    if subject_version(subject) >= 2:
        fov, center = field_of_view(subject.extras.get("variety", {}), np.linalg.inv(to_mni), fov, center)
    affine, shape = oriented_affine(subject.t1_orientation, subject.t1_spacing_mm, fov, center)
    return rng, affine, shape, center


def native_t1(subject: Subject, volumes: SubjectVolumes) -> nib.Nifti1Image:
    """The raw T1 as a scanner would store it: pose, orientation, bias field, Rician noise, int16.

    Version 2 adds the subject's scan variety (scan_variety.py): neck, cut field of view, thick
    slices, motion ringing (the origin offset and low contrast are already in its pose and scanner).
    """
    rng, affine, shape, center = t1_grid(subject)
    to_mni = native_to_mni(subject)
    variety = subject.extras.get("variety", {})
    if subject_version(subject) >= 2:
        clean = _render_t1_v2(subject, volumes, affine, shape, to_mni)
    else:
        clean = resample(volumes.t1_mni, SIM_GRID.affine, shape, affine, world_to_world=to_mni, antialias=False)
    biased = clean * bias_field(rng, affine, shape, center)
    if "motion" in variety:
        motion = variety["motion"]
        ringing_rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 6]))
        biased = motion_ringing(biased, motion["axis"], motion["fraction"], motion["phase_sd"], ringing_rng)

    sigma = subject.t1_noise
    noisy = np.sqrt((biased + rng.normal(0, sigma, shape)) ** 2 + rng.normal(0, sigma, shape) ** 2)
    data = (noisy * subject.t1_gain).astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.set_data_dtype(np.int16)  # nibabel picks scl_slope / scl_inter
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"mri2pet simulated T1w"
    return img


def _render_t1_v2(subject: Subject, volumes: SubjectVolumes, affine: np.ndarray, shape: tuple, to_mni: np.ndarray):
    """Noise-free v2 T1 on the native grid: the head, the body below it, the slice profile."""
    variety = subject.extras.get("variety", {})
    thick = variety.get("thick_slices")
    grid_affine, grid_shape = thick_slice_grid(affine, shape, thick["axis"]) if thick else (affine, shape)
    clean = resample(volumes.t1_mni, SIM_GRID.affine, grid_shape, grid_affine, world_to_world=to_mni, antialias=False)
    if "neck" in variety:
        near_brain = (sim_templates().outside_mm < 12.0).astype(np.float32)
        near = resample(near_brain, SIM_GRID.affine, grid_shape, grid_affine, world_to_world=to_mni, antialias=False)
        # the body lies below MNI z = -40: evaluate it only there
        vox_to_mni = (to_mni @ grid_affine)[:3].astype(np.float32)
        ijk = np.indices(grid_shape, dtype=np.float32)
        z = sum(vox_to_mni[2, a] * ijk[a] for a in range(3)) + vox_to_mni[2, 3]
        below = (z < -40) & (near < 0.5)
        points = np.stack([ijk[a][below] for a in range(3)])
        mni = vox_to_mni[:, :3] @ points + vox_to_mni[:, 3:4]
        body = body_t1(mni, scanner_contrast(subject.scanner))
        del ijk, z, points, mni
        clean[below] = np.where(body > 0, body, clean[below])
    return average_slices(clean, thick["axis"]) if thick else clean


def bias_field(rng: np.random.Generator, affine: np.ndarray, shape: tuple, center: np.ndarray) -> np.ndarray:
    """Smooth multiplicative bias field: a random quadratic in world coordinates (about +-20%)."""
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    coords = [
        sum(affine[w, a] * axes[a].reshape([-1 if i == a else 1 for i in range(3)]) for a in range(3))
        + affine[w, 3]
        - center[w]
        for w in range(3)
    ]
    coords = [c / 100.0 for c in coords]
    log_bias = sum(rng.normal(0, 0.08) * c for c in coords)
    log_bias = log_bias + sum(rng.normal(0, 0.06) * c * c for c in coords)
    log_bias = log_bias + rng.normal(0, 0.05) * coords[0] * coords[1] + rng.normal(0, 0.05) * coords[1] * coords[2]
    return np.exp(log_bias).astype(np.float32)


def native_pet(subject: Subject, volumes: SubjectVolumes) -> nib.Nifti1Image:
    """The raw PET on its own grid, with a small rigid offset from the T1 and noise (SUV, float32)."""
    rng = np.random.default_rng(np.random.SeedSequence([*subject.extras["stream"], 3]))
    to_t1 = pet_to_t1(subject)
    to_mni = native_to_mni(subject) @ to_t1
    center = np.linalg.inv(to_mni)[:3] @ np.append(BRAIN_CENTER_MNI, 1.0) + rng.uniform(-5, 5, 3)
    affine, shape = oriented_affine(subject.pet_orientation, subject.pet_spacing_mm, (256.0, 256.0, 200.0), center)
    clean = resample(volumes.pet_mni, SIM_GRID.affine, shape, affine, world_to_world=to_mni)
    noise_sd = 0.05 * np.sqrt(np.maximum(clean, 0.0) * subject.suv_gm_mean)
    noisy = np.maximum(clean + rng.normal(0, 1, shape).astype(np.float32) * noise_sd, 0.0)
    img = nib.Nifti1Image(noisy.astype(np.float32), affine)
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"mri2pet simulated FDG-PET (SUV)"
    return img


# ----------------------------------------------------------------------------------------------
# writing a cohort


PARTICIPANT_COLUMNS = ("participant_id", "age", "sex", "diagnosis", "severity")


def subject_paths(out_dir: Path, participant_id: str) -> dict[str, Path]:
    truth = out_dir / "derivatives" / "truth" / participant_id
    return {
        "t1": out_dir / participant_id / "anat" / f"{participant_id}_T1w.nii.gz",
        "pet": out_dir / participant_id / "pet" / f"{participant_id}_pet.nii.gz",
        "truth_t1": truth / f"{participant_id}_space-model_T1w.nii.gz",
        "truth_pet": truth / f"{participant_id}_space-model_pet.nii.gz",
        "truth_mask": truth / f"{participant_id}_space-model_mask.nii.gz",
        "truth_labels": truth / f"{participant_id}_space-model_aal.nii.gz",
        "truth_warp": truth / f"{participant_id}_space-model_warp.nii.gz",
        "truth_json": truth / f"{participant_id}_truth.json",
    }


def on_model_grid(volume: np.ndarray, grid: ModelGrid, order: int = 1) -> np.ndarray:
    """A simulation-grid volume on the model grid (what a perfect affine registration gives)."""
    return resample(volume, SIM_GRID.affine, grid.shape, grid.affine, order=order, antialias=order > 0)


def parse_ages(text: str) -> tuple[float, ...]:
    """'60,70,80' -> (60.0, 70.0, 80.0); ages outside 40-100 are refused."""
    try:
        ages = tuple(float(a) for a in text.split(",") if a.strip())
    except ValueError:
        raise UnknownNameError(f"--truth-ages {text!r} is not a comma list of ages", hint="e.g. 60,70,80,90") from None
    bad = [a for a in ages if not 40.0 <= a <= 100.0]
    if not ages or bad:
        raise UnknownNameError(f"--truth-ages {text!r}: ages must lie in 40-100", hint="e.g. 60,70,80,90")
    return ages


def truth_age_paths(out_dir: Path, participant_id: str, age: float) -> dict[str, Path]:
    """Counterfactual truth at ``age``: 'age only' (anatomy fixed) and 'aged' (brain age moved too)."""
    truth = out_dir / "derivatives" / "truth" / participant_id
    label = f"age{age:g}".replace(".", "p")
    return {
        "age_only_pet": truth / f"{participant_id}_space-model_desc-{label}only_pet.nii.gz",
        "aged_pet": truth / f"{participant_id}_space-model_desc-{label}aged_pet.nii.gz",
        "aged_t1": truth / f"{participant_id}_space-model_desc-{label}aged_T1w.nii.gz",
    }


def counterfactual_subjects(subject: Subject, age: float) -> tuple[Subject, Subject]:
    """The same person at another chronological age: anatomy fixed ('age only'), and with the brain aged too."""
    from dataclasses import replace

    age_only = replace(subject, age=float(age))
    aged = replace(subject, age=float(age), brain_age=subject.brain_age + float(age) - subject.age)
    return age_only, aged


def simulate_subject(
    seed: int,
    index: int,
    out_dir: Path,
    grid: ModelGrid,
    overwrite: bool = False,
    version: int = 1,
    variety: dict[str, float] | None = None,
    truth_ages: tuple[float, ...] = (),
) -> dict:
    """Render and write one subject; returns its participants.tsv row and ground-truth figures."""
    subject = draw_subject(seed, index, version, variety)
    paths = subject_paths(out_dir, subject.participant_id)
    age_paths = {a: truth_age_paths(out_dir, subject.participant_id, a) for a in truth_ages}
    for path in [*paths.values(), *(p for d in age_paths.values() for p in d.values())]:
        check_writable(path, overwrite)
    volumes = render_subject(subject)

    write_atomic(native_t1(subject, volumes), paths["t1"])
    write_atomic(native_pet(subject, volumes), paths["pet"])

    def to_model(volume: np.ndarray, order: int = 1) -> np.ndarray:
        return on_model_grid(volume, grid, order)

    save_volume(to_model(volumes.t1_mni), paths["truth_t1"], affine=grid.affine, overwrite=overwrite)
    save_volume(to_model(volumes.pet_mni), paths["truth_pet"], affine=grid.affine, overwrite=overwrite)
    mask = to_model(volumes.brain.astype(np.float32)) > 0.5
    save_volume(mask.astype(np.uint8), paths["truth_mask"], affine=grid.affine, dtype=np.uint8, overwrite=overwrite)
    labels = to_model(volumes.labels, order=0).astype(np.uint8)
    save_volume(labels, paths["truth_labels"], affine=grid.affine, dtype=np.uint8, overwrite=overwrite)
    warp = np.stack([to_model(c) for c in volumes.displacement], axis=-1)
    save_volume(warp, paths["truth_warp"], affine=grid.affine, overwrite=overwrite)
    for age, files in age_paths.items():
        age_only, aged = counterfactual_subjects(subject, age)
        save_volume(
            to_model(render_subject(age_only).pet_mni), files["age_only_pet"], affine=grid.affine, overwrite=overwrite
        )
        aged_volumes = render_subject(aged)
        save_volume(to_model(aged_volumes.pet_mni), files["aged_pet"], affine=grid.affine, overwrite=overwrite)
        save_volume(to_model(aged_volumes.t1_mni), files["aged_t1"], affine=grid.affine, overwrite=overwrite)

    truth = {
        "cohort_version": subject_version(subject),
        "truth_ages": {f"{a:g}": {k: p.name for k, p in files.items()} for a, files in age_paths.items()},
        "subject": asdict(subject),
        "native_to_mni": native_to_mni(subject).tolist(),
        "pet_to_t1": pet_to_t1(subject).tolist(),
        "gm_volume_ml": round(volumes.gm_volume_ml, 2),
        "ventricle_volume_ml": round(volumes.ventricle_volume_ml, 2),
        "ventricle_expansion": ventricle_expansion(subject.brain_age, subject.severity),
        "grid": grid.describe(),
        "notes": (
            "native_to_mni maps T1 world mm to MNI mm (affine part of the truth); the nonlinear rest, "
            "in mm on the model grid, is in *_space-model_warp.nii.gz. Model-grid volumes are what a "
            "perfect affine registration would give."
        ),
    }
    write_text_atomic(json.dumps(truth, indent=2), paths["truth_json"], overwrite=True)
    row = {c: getattr(subject, c) for c in PARTICIPANT_COLUMNS}
    return row


def _simulate_job(args: tuple) -> dict:
    return simulate_subject(*args[:5], **args[5])


def simulate_cohort(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    *,
    jobs: int = 1,
    grid: ModelGrid | None = None,
    overwrite: bool = False,
    progress=None,
    version: int = DEFAULT_VERSION,
    variety: str = "default",
    truth_ages: tuple[float, ...] = (),
    truth_subjects: int | None = None,
) -> Path:
    """Write a simulated paired cohort of ``n`` subjects in a BIDS-like layout.

    ``version`` picks the simulator (1: the first one, kept reproducible; 2: the FDG pattern
    calibrated to the literature and real-scan variety). ``variety`` (version 2): 'default',
    'none', 'all' or a comma list (scan_variety.py). ``truth_ages``: also write each subject's
    counterfactual truth at these ages (only the first ``truth_subjects`` subjects where given: each
    age costs two more renderings). ``progress(subject_id, status)`` is called after each
    subject (for a progress bar or log line). Returns the path of participants.tsv.
    """
    out_dir = Path(out_dir)
    grid = grid or default_grid()
    if n < 1:
        raise ValueError("n must be at least 1")
    if version not in VERSIONS:
        raise UnknownNameError(f"unknown simulator version {version}", hint="choose 1 or 2")
    probabilities = variety_probabilities(variety) if version >= 2 else None
    options = {"version": version, "variety": probabilities, "truth_ages": tuple(float(a) for a in truth_ages)}
    participants = out_dir / "participants.tsv"
    check_writable(participants, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    with_truth = n if truth_subjects is None else truth_subjects
    tasks = [
        (seed, i, out_dir, grid, overwrite, options if i < with_truth else options | {"truth_ages": ()})
        for i in range(n)
    ]
    rows: list[dict] = []
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for row in pool.map(_simulate_job, tasks):
                rows.append(row)
                if progress:
                    progress(row["participant_id"], "ok")
    else:
        for task in tasks:
            rows.append(_simulate_job(task))
            if progress:
                progress(rows[-1]["participant_id"], "ok")
    lines = ["\t".join(PARTICIPANT_COLUMNS)]
    lines += ["\t".join(str(r[c]) for c in PARTICIPANT_COLUMNS) for r in rows]
    write_text_atomic("\n".join(lines) + "\n", participants, overwrite=True)
    description = {
        "Name": "mri2pet simulated paired T1w / FDG-PET cohort (not patient data)",
        "BIDSVersion": "1.9.0",
        "DatasetType": "raw",
        "GeneratedBy": [{"Name": "mri2pet", "Version": __version__}],
        "mri2pet_simulation": {
            "version": version,
            "n": n,
            "seed": seed,
            "variety_probability": probabilities,
            "truth_ages": list(options["truth_ages"]),
            "truth_subjects": min(n, with_truth) if options["truth_ages"] else 0,
            "model_grid": grid.describe(),
        },
    }
    write_text_atomic(json.dumps(description, indent=2), out_dir / "dataset_description.json", overwrite=True)
    return participants
