"""Acquisition sites: profiles that shift a whole simulated cohort (scanners, protocol, population).

A lab's own data differ from the training cohort as a whole: another MRI field strength and vendor,
another voxel size and slice direction, a PET scanner with another resolution and noise, another
referral population. A profile (``data/sites.json``, tabled in docs/simulation.md) names what it
changes; ``apply_site`` changes exactly those fields of a drawn subject, from a random stream of its
own, so the same subject index is the same person at every site but for what the profile says.
'home' changes nothing: it is the training cohort, byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from mri2pet_cli.errors import UnknownNameError

SITES_FILE = Path(__file__).parent / "data" / "sites.json"
HOME = "home"

# which Subject fields (or extras keys) each profile entry may change: the tests hold profiles to it
CHANGED_FIELDS = {
    "t1_scanners": ("scanner",),
    "t1_spacing_mm": ("t1_spacing_mm",),
    "t1_orientation": ("t1_orientation",),
    "t1_noise_scale": ("t1_noise",),
    "pet_fwhm_mm": ("psf_fwhm_mm",),
    "pet_noise_scale": ("extras.pet_noise_scale",),
    "age_range": ("age", "brain_age"),
    "diagnosis_mix": ("diagnosis", "severity"),
}


@lru_cache(maxsize=1)
def site_profiles() -> dict[str, dict]:
    return json.loads(SITES_FILE.read_text())


def site_profile(name: str) -> dict:
    """The profile called ``name``; an unknown name gets the list of known ones."""
    profiles = site_profiles()
    if name not in profiles:
        from difflib import get_close_matches

        close = get_close_matches(name, list(profiles), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(profiles)}"
        raise UnknownNameError(f"unknown site {name!r}", hint=hint)
    return profiles[name]


def apply_site(
    subject,
    name: str,
    seed: int,
    index: int,
    *,
    home_mix: dict[str, float],
    severity_range: dict[str, tuple[float, float]],
    age_range: tuple[float, float],
    own_mix: bool = False,
):
    """``subject`` as site ``name`` would have scanned (and referred) them; 'home' returns it unchanged.

    ``home_mix``, ``severity_range`` and ``age_range``: the population the subject was drawn from;
    ``own_mix``: the cohort was given its own diagnosis mix, which the site's does not replace.
    """
    changes = site_profile(name)["changes"]
    if not changes:
        return subject
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 17]))
    draws = rng.random(4)  # every draw made whatever the profile, so profiles do not shift each other's streams
    fields: dict = {}
    extras = dict(subject.extras, site=name)
    if "t1_scanners" in changes:
        scanners = changes["t1_scanners"]
        fields["scanner"] = scanners[min(int(draws[0] * len(scanners)), len(scanners) - 1)]
    if "t1_spacing_mm" in changes:
        fields["t1_spacing_mm"] = [float(x) for x in changes["t1_spacing_mm"]]
    if "t1_orientation" in changes:
        fields["t1_orientation"] = changes["t1_orientation"]
    if "t1_noise_scale" in changes:
        fields["t1_noise"] = round(subject.t1_noise * float(changes["t1_noise_scale"]), 4)
    if "pet_fwhm_mm" in changes:
        low, high = changes["pet_fwhm_mm"]
        fields["psf_fwhm_mm"] = round(float(low + draws[1] * (high - low)), 2)
    if "pet_noise_scale" in changes:
        extras["pet_noise_scale"] = float(changes["pet_noise_scale"])
    diagnosis, severity, age = subject.diagnosis, subject.severity, subject.age
    if "diagnosis_mix" in changes and not own_mix:
        # monotone coupling: the subject's place in the home mix (CN, MCI, AD order) read against the
        # site's mix, so the fewest diagnoses change and the site's fractions hold exactly
        order = list(severity_range)
        home = np.array([home_mix[d] for d in order])
        own = order.index(diagnosis)
        at = float(np.cumsum(home)[own] - home[own] + draws[2] * home[own])
        edges = np.cumsum([changes["diagnosis_mix"][d] for d in order])
        new = order[min(int(np.searchsorted(edges, at, side="right")), len(order) - 1)]
        if new != diagnosis:  # a new diagnosis brings its own severity; the age stays
            low, high = severity_range[new]
            severity = round(float(low + draws[3] * (high - low)), 3)
            diagnosis = new
    if "age_range" in changes:  # the same position within the site's range
        low, high = changes["age_range"]
        age = low + (age - age_range[0]) / (age_range[1] - age_range[0]) * (high - low)
    age = round(float(np.clip(age, *changes.get("age_range", age_range))), 1)
    if (diagnosis, severity) != (subject.diagnosis, subject.severity):
        fields |= {"diagnosis": diagnosis, "severity": severity}
    if age != subject.age:
        fields |= {"age": age, "brain_age": subject.brain_age + age - subject.age}  # the brain-age gap stays
    return replace(subject, **fields, extras=extras)


def site_table() -> str:
    """The profiles as a markdown table (docs/simulation.md)."""
    lines = ["| site | what it is | changes | why it is realistic |", "|---|---|---|---|"]
    for name, profile in site_profiles().items():
        changes = "; ".join(f"{k} {v}" for k, v in profile["changes"].items()) or "nothing (the training cohort)"
        lines.append(f"| {name} | {profile['summary']} | {changes} | {profile['why']} |")
    return "\n".join(lines)
