"""Why the cortex's grey-matter loss reads low on the rendered T1s: in-place against pial-side thinning.

    python benchmarks/gm_loss_readout.py [--subjects 3] [--sigmas 1,2] [--powers 1,2] [--sharpen 2,4]
        [--rates cortex=0.0055,...] [--out FILE]

The realism benchmark reads grey-matter loss per decade from each rendered model-grid T1 (a 3-class mixture,
partial-volume fractions): cortex -2.1 %/decade where the simulator removes 5-6 (docs/simulation.md). Version 3
turns a fraction of each voxel's grey matter into CSF in place, so a voxel beside white matter that loses grey
matter reads as *more* grey matter. Real thinning happens at the pial surface, beside CSF. This experiment
renders CN subjects (v3, no scan variety, no disease) at brain ages 60 and 80, once as the simulator does and
once with each region's same total loss moved towards CSF (weight: grey matter x blurred CSF fraction to a
power), and prints the loss read on the model-grid T1 next to the loss the simulator removed (1.5 mm grid).
A third variant asks whether a crisper anatomy helps: the template's tissue probabilities raised to a power
and renormalised (a population average made more like one brain), thinned in place as v3 does. Both
variants are experiments here, not simulator options. Each variant is read twice: with the realism benchmark's
mixture, and with tissue intensities taken from the voxels the template calls pure (as a segmentation with
spatial priors would); the pure grey matter's intensity at each age says whether the loss thins the ribbon or
dilutes it. ``--rates`` overrides v3's atrophy rates in this process. Writes
benchmarks/results/gm_loss_readout.json.
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
from scipy import ndimage

from mri2pet_cli.simulation import anatomy
from mri2pet_cli.simulation.cohort import on_model_grid
from mri2pet_cli.simulation.population import draw_subject
from mri2pet_cli.simulation.scan_variety import variety_probabilities
from mri2pet_cli.space.atlas import aal_names, template_maps
from mri2pet_cli.space.grid import default_grid
from mri2pet_cli.space.tissue import grey_matter_fraction, tissue_fractions

RESULTS = Path(__file__).parent / "results"


def pial_side_loss(frac: np.ndarray, gm: np.ndarray, csf: np.ndarray, labels: np.ndarray, sigma: float, power: float):
    """The grey matter each region loses in place (``frac x gm``), moved towards CSF: same total per label.
    ``sigma`` 0: the pial boundary displaced (loss proportional to the CSF gradient, as a level set moved
    inwards: voxels without CSF beside them keep all their grey matter)."""
    if sigma == 0:
        weight = frac * (gm > 0.01) * np.linalg.norm(np.stack(np.gradient(csf)), axis=0) ** power
    else:
        weight = frac * gm * ndimage.gaussian_filter(csf, sigma) ** power
    index = np.arange(int(labels.max()) + 1)
    wanted = ndimage.sum(frac * gm, labels, index)
    weighted = ndimage.sum(weight, labels, index)
    scale = np.where(weighted > 0, wanted / np.maximum(weighted, 1e-12), 0.0)
    return np.minimum(weight * scale[labels], 0.95 * gm)


@contextmanager
def pial_side_thinning(sigma: float, power: float):
    """Render with the cortex thinned from the pial side (patches anatomy's two steps; restored after)."""
    atrophy_fraction, vary_sulcal_depth = anatomy.ageing.atrophy_fraction, anatomy.vary_sulcal_depth
    held: dict[str, np.ndarray] = {}

    def fraction_later(labels, cortex, cerebellum, deep, brain_age, severity):
        held["frac"] = atrophy_fraction(labels, cortex, cerebellum, deep, brain_age, severity)
        held["labels"] = labels.astype(np.int32)
        return np.zeros_like(held["frac"])  # nothing in place: the loss is taken in the next step

    def thin_then_vary(gm, csf, cortex, rng):
        loss = pial_side_loss(held["frac"], gm, csf, held["labels"], sigma, power)
        return vary_sulcal_depth(gm - loss, csf + loss, cortex, rng)

    anatomy.ageing.atrophy_fraction, anatomy.vary_sulcal_depth = fraction_later, thin_then_vary
    try:
        yield
    finally:
        anatomy.ageing.atrophy_fraction, anatomy.vary_sulcal_depth = atrophy_fraction, vary_sulcal_depth


@contextmanager
def sharpened_anatomy(power: float):
    """Render from tissue maps p_i ** power / sum_j p_j ** power (same brain; restored after)."""
    maps = anatomy.sim_templates().maps
    held = {name: getattr(maps, name).copy() for name in ("gm", "wm", "csf")}
    stacked = np.stack(list(held.values()))
    sharp = stacked**power / np.maximum((stacked**power).sum(0), 1e-6) * stacked.sum(0)
    try:
        for name, volume in zip(held, sharp, strict=True):
            getattr(maps, name)[...] = volume
        yield
    finally:
        for name, volume in held.items():
            getattr(maps, name)[...] = volume


def structure_labels() -> dict[str, list[int]]:
    """The realism benchmark's structures (its STRUCTURES), as AAL label values."""
    from simulation_realism import STRUCTURES  # benchmarks/ is the script's folder

    names = aal_names()
    return {name: [v for v, n in names.items() if keep(n)] for name, keep in STRUCTURES.items()}


def template_intensity_fractions(t1: np.ndarray, mask: np.ndarray, grid) -> tuple[np.ndarray, list[float]]:
    """Grey-matter fractions unmixed between tissue intensities taken where the template calls a voxel pure
    (> 0.9: the spatial priors a volumetric segmentation leans on), instead of a mixture's class means."""
    maps = template_maps(grid)
    intensities = [float(np.median(t1[mask & (p > 0.9)])) for p in (maps.csf, maps.gm, maps.wm)]
    return np.where(mask, grey_matter_fraction(t1, *intensities), 0.0), intensities


def readout(subject, brain_ages: tuple[float, float]) -> dict[str, float]:
    """% per decade between the two brain ages: read on the model-grid T1 (the realism benchmark's mixture, and
    with the template's pure-voxel intensities), and removed on the 1.5 mm grid; the pure grey matter's
    intensity at each age."""
    grid, structures = default_grid(), structure_labels()
    read, by_template, removed, pure_gm = {}, {}, {}, {}
    for brain_age in brain_ages:
        volumes = anatomy.render_subject(replace(subject, brain_age=brain_age, extras=dict(subject.extras)))
        t1 = on_model_grid(volumes.t1_mni, grid)
        mask = on_model_grid(volumes.brain.astype(np.float32), grid) > 0.5
        labels = on_model_grid(volumes.labels, grid, order=0).astype(np.int32)
        _csf, gm, _wm = tissue_fractions(t1, mask)
        gm_template, intensities = template_intensity_fractions(t1, mask, grid)
        read[brain_age] = {name: float(gm[np.isin(labels, ls)].sum()) for name, ls in structures.items()}
        by_template[brain_age] = {n: float(gm_template[np.isin(labels, ls)].sum()) for n, ls in structures.items()}
        removed[brain_age] = volumes.gm_volume_ml
        pure_gm[brain_age] = round(intensities[1], 4)
    young, old = brain_ages
    decades = (old - young) / 10.0

    def pct(a: float, b: float) -> float:
        return round((b - a) / decades / ((a + b) / 2) * 100.0, 2)

    out = {f"read: {name}": pct(read[young][name], read[old][name]) for name in structures}
    out |= {f"read, template intensities: {n}": pct(by_template[young][n], by_template[old][n]) for n in structures}
    out["removed: whole brain grey matter"] = pct(removed[young], removed[old])
    out |= {f"pure grey matter intensity at {age:g}": value for age, value in pure_gm.items()}
    return out


def floats(text: str) -> list[float]:
    """'1,2' -> [1.0, 2.0]; '' -> [] (that variant left out)."""
    return [float(item) for item in text.split(",") if item.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--sigmas", default="1,2", help="blur of the CSF fraction, in 1.5 mm voxels ('': none)")
    parser.add_argument("--powers", default="1,2")
    parser.add_argument("--sharpen", default="2,4", help="powers of the sharpened-anatomy variant")
    parser.add_argument(
        "--rates", default="", help="override v3's atrophy per year, e.g. cortex=0.0055,cerebellum=0.0055"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "gm_loss_readout.json")
    args = parser.parse_args()
    rates = {key: float(value) for key, value in (item.split("=") for item in args.rates.split(",") if item)}
    unknown = set(rates) - set(anatomy.ageing.ATROPHY_PER_YEAR)
    if unknown:
        parser.error(
            f"--rates: unknown {', '.join(sorted(unknown))} (known: {', '.join(anatomy.ageing.ATROPHY_PER_YEAR)})"
        )
    anatomy.ageing.ATROPHY_PER_YEAR.update(rates)  # this process only
    none = {name: 0.0 for name in variety_probabilities("default")}
    subjects = []
    for index in range(args.subjects):
        subject = replace(draw_subject(0, index, 3, variety=none), severity=0.0)
        subject.extras["atrophy_severity"] = 0.0
        subjects.append(subject)
    variants = {"in place (simulator v3)": nullcontext}
    variants |= {
        (f"pial side, sigma {s:g}, power {p:g}" if s else f"boundary displaced, power {p:g}"): partial(
            pial_side_thinning, s, p
        )
        for s in floats(args.sigmas)
        for p in floats(args.powers)
    }
    variants |= {f"sharpened anatomy, power {k:g}": partial(sharpened_anatomy, k) for k in floats(args.sharpen)}
    result = {"brain_ages": [60.0, 80.0], "subjects": [s.participant_id for s in subjects], "variants": {}}
    result["atrophy_per_year"] = dict(anatomy.ageing.ATROPHY_PER_YEAR)
    if args.out.exists():  # variants run earlier on the same subjects and rates are kept
        earlier = json.loads(args.out.read_text())
        same_rates = earlier.get("atrophy_per_year", result["atrophy_per_year"]) == result["atrophy_per_year"]
        if earlier.get("subjects") == result["subjects"] and same_rates:
            result["variants"] = earlier["variants"]
    for name, variant in variants.items():
        with variant():
            rows = [readout(subject, (60.0, 80.0)) for subject in subjects]
        mean = {key: round(float(np.mean([r[key] for r in rows])), 2) for key in rows[0]}
        result["variants"][name] = {"mean_pct_per_decade": mean, "per_subject": rows}
        print(f"{name}: " + ", ".join(f"{k} {v:+.2f}" for k, v in mean.items()), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
