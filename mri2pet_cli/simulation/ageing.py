"""Simulator v3's age and disease anatomy: grey-matter loss per region and the FDG signal of each tissue.

Version 3 takes these numbers from measurements, cited in docs/simulation.md ("Version 3"), instead of
fitting them: atrophy from volumetric studies of healthy ageing, tissue signal ratios from
partial-volume-corrected FDG-PET. Versions 1 and 2 keep their own numbers (anatomy.py).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mri2pet_cli.space.atlas import AD_PATTERN_REGIONS, FRONTAL_REGIONS, MEDIAL_TEMPORAL_REGIONS, region_labels

# Fraction of a region's grey matter (as at 50) lost per year after 50 in healthy ageing; sources in
# fdg_reference.SOURCES. Cortex: Fjell2009 (-0.5 %/year), Crivello2014 (-0.83 %/year globally); frontal a
# little faster (Raz2005: association cortex); hippocampus between Fraser2015 (0.85) and Barnes2009 (1.41);
# cerebellum between Raz2005 and Tang2001 (1.2); deep grey matter: Raz2005's caudate.
ATROPHY_PER_YEAR = {
    "cortex": 0.0050,
    "frontal": 0.0060,  # frontal cortex as a whole, not added to the cortex rate
    "medial_temporal": 0.0100,  # hippocampus, parahippocampal gyrus, amygdala
    "cerebellum": 0.0070,
    "deep": 0.0060,  # caudate, putamen, pallidum, thalamus
}
ATROPHY_START_AGE = 50.0
# AD: grey matter lost at atrophy severity 1 (the AD pattern and the medial temporal lobe), as v2
AD_PATTERN_LOSS = 0.10
AD_MEDIAL_TEMPORAL_LOSS = 0.30

# FDG uptake per tissue before regional factors (cerebellar grey matter = 4; cortical grey matter about 1.34x
# that, HellJNM2018): white matter and CSF as fractions of cortical grey matter. CSF: Greve2016 (about 15 %).
# White matter: 0.3, below the 0.47 Huang1980 measured without partial-volume correction (blur mixes grey in).
GM_UPTAKE = 4.0
CORTEX_TO_CEREBELLUM = 1.34
WM_TO_GM = 0.30
CSF_TO_GM = 0.15
UPTAKE = {
    "gm": GM_UPTAKE,
    "wm": WM_TO_GM * CORTEX_TO_CEREBELLUM * GM_UPTAKE,
    "csf": CSF_TO_GM * CORTEX_TO_CEREBELLUM * GM_UPTAKE,
    "scalp": 0.25,
}


def atrophy_fraction(
    labels: np.ndarray, cortex: np.ndarray, cerebellum: np.ndarray, deep: np.ndarray, brain_age: float, severity: float
) -> np.ndarray:
    """Fraction of grey matter turned into CSF in each voxel: ageing by region, then the AD pattern."""
    years = max(brain_age - ATROPHY_START_AGE, 0.0)
    frac = np.zeros(labels.shape, dtype=np.float32)
    frac[cortex] = ATROPHY_PER_YEAR["cortex"] * years
    frac[np.isin(labels, region_labels(FRONTAL_REGIONS))] = ATROPHY_PER_YEAR["frontal"] * years
    frac[cerebellum] = ATROPHY_PER_YEAR["cerebellum"] * years
    frac[deep] = ATROPHY_PER_YEAR["deep"] * years
    frac[np.isin(labels, region_labels(AD_PATTERN_REGIONS))] += AD_PATTERN_LOSS * severity
    medial = np.isin(labels, region_labels(MEDIAL_TEMPORAL_REGIONS))
    frac[medial] = ATROPHY_PER_YEAR["medial_temporal"] * years + AD_MEDIAL_TEMPORAL_LOSS * severity
    return np.clip(ndimage.gaussian_filter(frac, 1.0), 0.0, 0.6)
