"""Who the simulated subjects are: demographics, diagnosis, severity, scanner and pose, one random stream each.

The group-level numbers (ADNI-like) are explained in docs/simulation.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mri2pet_cli.simulation.scan_variety import draw_variety, variety_probabilities

ORIENTATIONS = ("RAS", "LPS", "LAS", "RPI", "LIA", "PIR", "ASL", "SRA")


BRAIN_CENTER_MNI = np.array([0.0, -18.0, 12.0])


# Group-level demographics (ADNI-like; see docs/simulation.md).
DIAGNOSIS_P = {"CN": 0.40, "MCI": 0.35, "AD": 0.25}


SEVERITY_RANGE = {"CN": (0.0, 0.05), "MCI": (0.2, 0.5), "AD": (0.5, 1.0)}


# v3 on: the drawn severity is the metabolic one (what FDG shows); atrophy lags it and scatters around it, so
# a T1 holds part of the disease, not all of it (docs/simulation.md, "Version 3" and "Version 4": why these).
# The lag is the mean atrophy severity per unit of metabolic severity: v3 chose 0.55 on one seed, v4 0.70 on
# three (its T1 ceiling lands in the cited range on each).
ATROPHY_LAG_BY_VERSION = {3: 0.55, 4: 0.70}
ATROPHY_SCATTER = 0.15  # SD of the atrophy severity around that mean


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


# Only site profiles use these (sites.py): no cohort draws them by chance.
SITE_SCANNERS = {
    "1.5t-se": (0.32, 0.80, 1.0, 0.12, 0.90),  # spin-echo T1: low grey/white contrast
}


VESSEL_T1 = 1.5  # gadolinium-enhanced sinuses and veins, relative to WM


VERSIONS = (1, 2, 3, 4)


DEFAULT_VERSION = 4


def scanner_contrast(name: str) -> tuple[float, ...]:
    return SCANNERS.get(name) or LOW_CONTRAST_SCANNERS.get(name) or SITE_SCANNERS[name]


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


def draw_subject(
    seed: int,
    index: int,
    version: int = 1,
    variety: dict[str, float] | None = None,
    diagnosis_p: dict[str, float] | None = None,
    site: str = "home",
) -> Subject:
    """All random choices for subject ``index`` of the cohort with ``seed``.

    Each subject has its own random stream, so a cohort is the same whatever
    the number of jobs, and subject 7 is the same in a cohort of 10 or 100.
    Version 2 draws the same demographics, then its scan variety from a stream of its own
    (``variety``: probability of each, default scan_variety.DEFAULT_PROBABILITY). Version 3 adds
    an atrophy severity from a third stream (``extras["atrophy_severity"]``; ``severity`` is then the
    metabolic one) and takes ``diagnosis_p`` (the cohort's diagnosis mix, default DIAGNOSIS_P) and
    ``site`` (sites.py: a profile that changes scanners, protocol and population; 'home' changes nothing).
    Version 4 is version 3 with the atrophy lagging the metabolic severity less (ATROPHY_LAG_BY_VERSION).
    """
    if version not in VERSIONS:
        raise ValueError(f"unknown simulator version {version}")
    if diagnosis_p is not None and version < 3:
        raise ValueError("a diagnosis mix needs simulator version 3 or later")
    if site != "home" and version < 3:
        raise ValueError("a site profile needs simulator version 3 or later")
    subject = _draw_v1(seed, index, diagnosis_p or DIAGNOSIS_P)
    if version == 1:
        return subject
    if site != "home":
        from mri2pet_cli.simulation.sites import apply_site

        population = {"home_mix": diagnosis_p or DIAGNOSIS_P, "severity_range": SEVERITY_RANGE, "age_range": AGE_RANGE}
        subject = apply_site(subject, site, seed, index, **population, own_mix=diagnosis_p is not None)
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
    if version >= 3:
        disease = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 13]))
        lag = ATROPHY_LAG_BY_VERSION[version]
        atrophy = np.clip(lag * subject.severity + disease.normal(0.0, ATROPHY_SCATTER), 0.0, 1.0)
        subject.extras.update({"version": version, "atrophy_severity": round(float(atrophy), 3)})
    return subject


def subject_version(subject: Subject) -> int:
    return int(subject.extras.get("version", 1))


def atrophy_severity(subject: Subject) -> float:
    """The severity the anatomy shows: v3's and v4's own draw; before v3 the one severity drove both."""
    return float(subject.extras.get("atrophy_severity", subject.severity))


def parse_diagnosis_mix(text: str) -> dict[str, float]:
    """'CN=0.5,AD=0.5' -> {'CN': 0.5, 'MCI': 0.0, 'AD': 0.5}; the fractions must sum to 1."""
    from mri2pet_cli.errors import UnknownNameError

    mix = dict.fromkeys(DIAGNOSIS_P, 0.0)
    try:
        for part in text.split(","):
            name, value = part.split("=")
            if name.strip().upper() not in mix:
                raise ValueError(name)
            mix[name.strip().upper()] = float(value)
    except ValueError:
        raise UnknownNameError(
            f"--diagnosis-mix {text!r} is not a list of CN, MCI, AD fractions", hint="e.g. CN=0.5,MCI=0.2,AD=0.3"
        ) from None
    if any(v < 0 for v in mix.values()) or abs(sum(mix.values()) - 1.0) > 1e-6:
        raise UnknownNameError(f"--diagnosis-mix {text!r}: fractions must be >= 0 and sum to 1")
    return mix


def _draw_v1(seed: int, index: int, diagnosis_p: dict[str, float] = DIAGNOSIS_P) -> Subject:
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    diagnosis = str(rng.choice(list(diagnosis_p), p=list(diagnosis_p.values())))
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
