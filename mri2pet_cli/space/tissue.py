"""A model-grid T1's tissue: a 3-class Gaussian mixture (CSF, grey, white matter) of its intensities inside
the brain mask, as posteriors or as partial-volume fractions, and regional means over the AAL atlas.

Shared by the study's "MRI only" features (evaluation) and the pairs-only age effect (models).
"""

from __future__ import annotations

import numpy as np

from mri2pet_cli.space.atlas import aal_names, roi_means

GM_MIXTURE_SEED = 0
GM_MIXTURE_SAMPLES = 20_000  # voxels drawn to fit the mixture; the posterior is then computed for all


def region_order() -> list[int]:
    """AAL label values in the order of the feature columns."""
    return sorted(aal_names())


def regional_values(volume: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of ``volume`` in each AAL region inside ``mask``; NaN where a region has no voxel."""
    means = roi_means(volume, labels, mask > 0)
    return np.array([means.get(v, np.nan) for v in region_order()], dtype=np.float64)


def tissue_mixture(t1: np.ndarray, mask: np.ndarray):
    """A 3-class Gaussian mixture fitted to a seeded sample of the T1's intensities inside the mask; with the
    mask and all the intensities inside it (a column)."""
    from sklearn.mixture import GaussianMixture

    inside = mask > 0
    values = t1[inside].astype(np.float64).reshape(-1, 1)
    rng = np.random.default_rng(GM_MIXTURE_SEED)
    sample = values[rng.choice(len(values), size=min(GM_MIXTURE_SAMPLES, len(values)), replace=False)]
    start = np.percentile(sample, [10, 50, 90]).reshape(-1, 1)
    return GaussianMixture(3, means_init=start, random_state=GM_MIXTURE_SEED).fit(sample), inside, values


def _posteriors(mixture, inside: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    posterior = mixture.predict_proba(values)
    out = []
    for component in np.argsort(mixture.means_.ravel()):
        probability = np.zeros(inside.shape, dtype=np.float32)
        probability[inside] = posterior[:, component]
        out.append(probability)
    return out[0], out[1], out[2]


def grey_matter_fraction(values: np.ndarray, dark: float, middle: float, bright: float) -> np.ndarray:
    """Linear unmixing between neighbouring tissue intensities: CSF-GM below the grey-matter intensity
    ``middle``, GM-WM above it."""
    x = np.clip(values, dark, bright)
    return np.where(x <= middle, (x - dark) / (middle - dark), (bright - x) / (bright - middle))


def _fractions(mixture, inside: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dark, middle, bright = np.sort(mixture.means_.ravel())
    gm = grey_matter_fraction(values[:, 0], dark, middle, bright)
    csf = np.where(values[:, 0] <= middle, 1.0 - gm, 0.0)  # clipping to [dark, bright] keeps this side
    out = []
    for fraction in (csf, gm, 1.0 - gm - csf):
        volume = np.zeros(inside.shape, dtype=np.float32)
        volume[inside] = fraction
        out.append(volume)
    return out[0], out[1], out[2]


def tissue_probabilities(t1: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSF, grey- and white-matter posteriors of a 3-class Gaussian mixture on the T1 inside the mask
    (classes by their mean intensity: dark, middle, bright), 0 outside."""
    return _posteriors(*tissue_mixture(t1, mask))


def tissue_fractions(t1: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSF, grey- and white-matter *fractions* of each voxel (partial volume): the mixture's three class means,
    then linear unmixing between the two neighbouring means (CSF-GM below the GM mean, GM-WM above), 0 outside.
    Two tissues per voxel at most: grey matter lost to CSF beside white matter is not seen as a loss."""
    return _fractions(*tissue_mixture(t1, mask))


def tissue_probabilities_and_fractions(t1: np.ndarray, mask: np.ndarray) -> tuple[tuple, tuple]:
    """Both of the above from one mixture fit: (CSF, GM, WM posteriors), (CSF, GM, WM fractions)."""
    fitted = tissue_mixture(t1, mask)
    return _posteriors(*fitted), _fractions(*fitted)
