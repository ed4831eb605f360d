"""Simulator v2's FDG uptake: grey-matter uptake per AAL region, fitted to the literature table.

The table (fdg_reference.py) gives regional SUVRs as a scanner measures them: after the
point-spread blur, on AAL regions that mix grey matter with white matter and CSF. The
simulator's own numbers are pre-blur grey-matter uptake factors, so they are fitted
(`benchmarks/calibrate_simulation.py`) until the *measured* SUVRs of simulated CN subjects
match the table; the same holds for the age and AD effects, which atrophy already changes
through partial volume. The fitted values ship in ``data/fdg_v2_calibration.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from mri2pet_cli.simulation.fdg_reference import REGIONS, RegionReference, region_label_values
from mri2pet_cli.simulation.population import VERSIONS
from mri2pet_cli.space.atlas import aal_names, mean_in_labels, reference_labels

CALIBRATION_FILES = {  # every version from 2 on renders from a fitted FDG model
    version: Path(__file__).parent / "data" / f"fdg_v{version}_calibration.json" for version in VERSIONS if version >= 2
}
REFERENCE_AGE = 70.0  # regional factors hold at this age; age effects are relative to it
AD_REFERENCE_SEVERITY = 0.75  # the table's AD column is mild-to-moderate AD: severity 0.5-1.0, mean 0.75

# Between-subject variation (log scale), fitted by hand so the CN SDs match the table's
# (benchmarks/simulation_realism.py prints both): cortex-to-cerebellum level, region pairs, sides.
GLOBAL_SD = 0.05
PAIR_SD = 0.04
SIDE_SD = 0.015  # left/right asymmetry: a few per cent, as normal asymmetry indices are


@dataclass(frozen=True)
class FdgModel:
    """Per table row: GM uptake factor, metabolic age slope (%/decade), metabolic AD effect (% at severity 0.75)."""

    factor: dict[str, float]
    age_pct_per_decade: dict[str, float]
    ad_pct: dict[str, float]
    global_sd: float = GLOBAL_SD
    pair_sd: float = PAIR_SD
    side_sd: float = SIDE_SD
    # per-row region term where partial volume damps a region's own variation (deep and medial temporal
    # grey matter): fitted from the realism benchmark's SDs (benchmarks/calibrate_simulation.py --fit-variation)
    pair_sd_by_row: dict[str, float] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    # v3: the cerebellar cortex's own metabolic change with age (%/decade); the rows' age slopes are then
    # changes of the same absolute scale, so a row's SUVR moves by about its slope minus this one
    reference_age_pct_per_decade: float = 0.0

    @classmethod
    def uncalibrated(cls) -> FdgModel:
        """A start for the fit: the table's own numbers."""
        return cls(
            factor={r.name: r.suvr_mean for r in REGIONS},
            age_pct_per_decade={r.name: r.age_pct_per_decade for r in REGIONS},
            ad_pct={r.name: r.ad_pct for r in REGIONS},
        )

    def to_json(self) -> dict:
        return {
            "factor": self.factor,
            "age_pct_per_decade": self.age_pct_per_decade,
            "ad_pct": self.ad_pct,
            "global_sd": self.global_sd,
            "pair_sd": self.pair_sd,
            "side_sd": self.side_sd,
            "pair_sd_by_row": self.pair_sd_by_row,
            **({"reference_age_pct_per_decade": r} if (r := self.reference_age_pct_per_decade) else {}),
            "provenance": self.provenance,
        }


@lru_cache(maxsize=2)
def calibrated_model(version: int = 2) -> FdgModel:
    """The shipped FDG model of simulator ``version`` (2, 3 or 4)."""
    meta = json.loads(CALIBRATION_FILES[version].read_text())
    return FdgModel(
        factor=meta["factor"],
        age_pct_per_decade=meta["age_pct_per_decade"],
        ad_pct=meta["ad_pct"],
        global_sd=meta["global_sd"],
        pair_sd=meta["pair_sd"],
        side_sd=meta["side_sd"],
        pair_sd_by_row=meta.get("pair_sd_by_row", {}),
        provenance=meta.get("provenance", {}),
        reference_age_pct_per_decade=meta.get("reference_age_pct_per_decade", 0.0),
    )


@lru_cache(maxsize=1)
def _row_labels() -> dict[str, list[int]]:
    return {r.name: region_label_values(r) for r in REGIONS}


def regional_factors(
    age: float, severity: float, rng: np.random.Generator | None, model: FdgModel | None = None
) -> np.ndarray:
    """Grey-matter FDG uptake factor per AAL label (index 0 = unlabelled, cerebellar cortex = 1).

    ``rng`` draws the subject's own variation; None gives the population pattern.
    """
    model = model or calibrated_model()
    names = aal_names()
    lut = np.ones(max(names) + 1, dtype=np.float64)
    reference = set(reference_labels())
    if rng is not None:
        level = rng.normal(0.0, model.global_sd)
    for row, labels in _row_labels().items():
        age_term = 1.0 + model.age_pct_per_decade[row] / 100.0 * (age - REFERENCE_AGE) / 10.0
        ad_term = 1.0 + model.ad_pct[row] / 100.0 * severity / AD_REFERENCE_SEVERITY
        lut[labels] = model.factor[row] * max(age_term, 0.3) * max(ad_term, 0.3)
        if rng is not None:
            pair = rng.normal(0.0, model.pair_sd_by_row.get(row, model.pair_sd))
            for v in labels:
                lut[v] *= np.exp(level + pair + rng.normal(0.0, model.side_sd))
    reference_age = 1.0 + model.reference_age_pct_per_decade / 100.0 * (age - REFERENCE_AGE) / 10.0
    for v in reference:
        lut[v] = reference_age  # exactly 1 before v3
    return lut.astype(np.float32)


def row_suvr(pet: np.ndarray, labels: np.ndarray, rows: tuple[RegionReference, ...] = REGIONS) -> dict[str, float]:
    """Measured SUVR of each table row (cerebellar cortex reference), as the benchmark and calibration read it."""
    ref = mean_in_labels(pet, labels, reference_labels())
    lookup = _row_labels()
    return {r.name: mean_in_labels(pet, labels, lookup[r.name]) / ref for r in rows}
