"""A subject's brain on the MNI-aligned simulation grid (1.5 mm): tissue, atrophy, FDG uptake and T1 contrast.

The ground truth starts here; docs/simulation.md explains every number.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage

from mri2pet_cli.simulation import ageing
from mri2pet_cli.simulation.fdg_model import FdgModel, calibrated_model
from mri2pet_cli.simulation.fdg_model import regional_factors as fdg_regional_factors
from mri2pet_cli.simulation.population import (
    VESSEL_T1,
    Subject,
    atrophy_severity,
    scanner_contrast,
    subject_version,
)
from mri2pet_cli.space.atlas import (
    AD_PATTERN_REGIONS,
    FRONTAL_REGIONS,
    MEDIAL_TEMPORAL_REGIONS,
    TemplateMaps,
    aal_names,
    region_labels,
    template_maps,
)
from mri2pet_cli.space.grid import CENTER_MM, ModelGrid

SIM_GRID = ModelGrid(shape=(136, 160, 136), spacing=1.5, center=CENTER_MM)


# FDG uptake per tissue (GM about 4x WM, CSF near zero), before regional factors.
UPTAKE = {"gm": 4.0, "wm": 1.0, "csf": 0.05, "scalp": 0.25}


AGE_FRONTAL_DECLINE_PER_YEAR = 0.0035  # fraction per year after 50, frontal + anterior cingulate


AGE_GLOBAL_DECLINE_PER_YEAR = 0.001


AD_PARIETAL_DROP = 0.28  # posterior cingulate, precuneus, inferior parietal, angular at severity 1


AD_TEMPORAL_DROP = 0.20  # middle and inferior temporal gyri


AD_MEDIAL_TEMPORAL_DROP = 0.15


REGIONAL_SD = 0.04  # per-subject random regional variation (log scale)


@dataclass(frozen=True)
class SimTemplates:
    maps: TemplateMaps
    outside_mm: np.ndarray  # distance outside the brain mask (mm), 0 inside
    ventricle_distance: np.ndarray  # distance outside the lateral ventricles (mm)
    ventricle_normal: np.ndarray  # unit vector pointing away from the ventricles, (3, *shape)
    near_ventricles: np.ndarray  # bool, the deep box that holds the lateral ventricles (for volume figures)
    cortical_labels: list[int]  # AAL cortex: not deep grey matter, not cerebellum
    cerebellar_labels: list[int]  # AAL Cerebelum_* and Vermis_*
    deep_labels: list[int]  # caudate, putamen, pallidum, thalamus


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
    cerebellar = [v for v, n in names.items() if n.startswith(("Cerebelum", "Vermis"))]
    cortical = [v for v in names if v not in deep and v not in cerebellar]
    return SimTemplates(maps, outside, distance, normal, central, cortical, cerebellar, sorted(deep))


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
    atrophy = atrophy_severity(subject)  # before v3 the one severity
    push = ventricle_expansion(subject.brain_age, atrophy) * np.exp(-tpl.ventricle_distance / 10.0)
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

    if version >= 3:
        cerebellum, deep = np.isin(labels, tpl.cerebellar_labels), np.isin(labels, tpl.deep_labels)
        loss = ageing.atrophy_fraction(labels, cortex, cerebellum, deep, subject.brain_age, atrophy) * gm
    else:
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
        model = fdg or calibrated_model(version)
        lut = fdg_regional_factors(subject.age, subject.severity, rng if variation else None, model)
    else:
        lut = regional_factors(subject, rng)
    factor = lut[labels]
    uptake = ageing.UPTAKE if version >= 3 else UPTAKE
    pet = (uptake["gm"] * gm * factor + uptake["wm"] * wm + uptake["csf"] * csf).astype(np.float32)
    scalp = (outside >= scalp_in) & (outside < scalp_out)
    pet[scalp] = uptake["scalp"]
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
