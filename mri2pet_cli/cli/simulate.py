"""`mri2pet simulate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import Jobs, Overwrite, app, reports_errors
from mri2pet_cli.console import say


@app.command()
@reports_errors
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the cohort (BIDS-like layout).", metavar="OUT_DIR")],
    n: Annotated[int, typer.Option("--n", min=1, metavar="N", help="Number of subjects.")] = 20,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Random seed: same seed, same cohort.")] = 0,
    jobs: Jobs = 1,
    grid_mm: Annotated[
        float | None,
        typer.Option("--grid-mm", metavar="MM", help="Model-grid spacing for the ground truth (default 2.5)."),
    ] = None,
    overwrite: Overwrite = False,
    version: Annotated[
        int,
        typer.Option(
            "--sim-version",
            min=1,
            max=4,
            metavar="1|2|3|4",
            help="Simulator version: 4 (default: ageing and AD from the corrected literature, atrophy and "
            "hypometabolism apart), 3 (4 with atrophy lagging hypometabolism more; the shipped weights' cohort), "
            "2 (literature FDG pattern, real-scan variety) or 1 (the first simulator); 3, 2 and 1 render as they "
            "always did.",
        ),
    ] = 4,
    diagnosis_mix: Annotated[
        str | None,
        typer.Option(
            "--diagnosis-mix",
            metavar="MIX",
            help="Version 3 on: fractions of CN, MCI and AD, e.g. CN=0.5,MCI=0.2,AD=0.3 "
            "(default CN=0.4,MCI=0.35,AD=0.25).",
        ),
    ] = None,
    site: Annotated[
        str,
        typer.Option(
            "--site",
            metavar="NAME",
            help="Version 3 on: an acquisition site's profile (docs/simulation.md, 'Sites'): home (default, the "
            "training cohort), near (another 3 T centre, newer PET), far (1.5 T, older PET, memory clinic), "
            "clinic (1.5 T spin-echo T1) or modern (0.8 mm, deep-learning reconstruction).",
        ),
    ] = "home",
    variety: Annotated[
        str,
        typer.Option(
            metavar="KIND",
            help="Scan variety (version 2 on): default (each by chance), none, all, or a comma list of "
            "neck,origin_offset,thick_slices,low_contrast,cut_fov,motion (those for every subject).",
        ),
    ] = "default",
    truth_ages: Annotated[
        str | None,
        typer.Option(
            "--truth-ages",
            metavar="AGES",
            help="Comma list of ages (e.g. 60,70,80,90): also write each subject's "
            "noise-free model-grid PET at those ages, 'age only' (anatomy fixed) and 'aged' (brain aged too). "
            "The study's counterfactual age series needs exactly 60,70,80,90.",
        ),
    ] = None,
    truth_subjects: Annotated[
        int | None,
        typer.Option(
            "--truth-subjects",
            min=0,
            metavar="N",
            help="With --truth-ages: only the first N subjects get the counterfactual truth (default: all).",
        ),
    ] = None,
) -> None:
    """Write a simulated paired T1 / FDG-PET cohort (NOT patient data) with its ground truth.

    Rerunning the same command after a kill goes on where it stopped: subjects already rendered are kept.
    """
    import time

    from mri2pet_cli.console import tracked
    from mri2pet_cli.simulation.cohort import parse_ages, simulate_cohort
    from mri2pet_cli.simulation.population import parse_diagnosis_mix
    from mri2pet_cli.space.grid import default_grid, grid_for_spacing

    grid = grid_for_spacing(grid_mm) if grid_mm else default_grid()
    ages = parse_ages(truth_ages) if truth_ages else ()
    mix = parse_diagnosis_mix(diagnosis_mix) if diagnosis_mix else None
    start = time.perf_counter()
    with tracked("simulating", n) as advance:
        table = simulate_cohort(
            out_dir,
            n,
            seed,
            jobs=jobs,
            grid=grid,
            overwrite=overwrite,
            progress=advance,
            version=version,
            variety=variety,
            truth_ages=ages,
            truth_subjects=truth_subjects,
            diagnosis_mix=mix,
            site=site,
        )
    seconds = time.perf_counter() - start
    say(
        f"wrote {n} simulated subjects to {out_dir} ({seconds:.1f} s, {seconds / n:.1f} s per subject); "
        f"participants: {table}",
        event="done",
        out_dir=str(out_dir),
        n=n,
    )
