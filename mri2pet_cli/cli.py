"""The ``mri2pet`` command line: a thin Typer layer over the library.

Heavy imports (torch, SimpleITK, nilearn) happen inside the commands so that
``mri2pet --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from . import __version__
from .console import console, err_console
from .errors import Mri2PetError

app = typer.Typer(
    name="mri2pet",
    help="Synthetic FDG-PET from a raw T1-weighted brain MRI (research use only, not for diagnosis).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable)


def reports_errors(command: F) -> F:
    """Turn a user error into one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except Mri2PetError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True, markup=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[bold red]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        console.print(f"mri2pet {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """mri2pet: raw T1 -> synthetic FDG-PET with quality and AAL region reports."""


@app.command()
@reports_errors
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the cohort (BIDS-like layout).")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of subjects.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same cohort.")] = 0,
    jobs: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    grid_mm: Annotated[
        float | None, typer.Option("--grid-mm", help="Model-grid spacing for the ground truth (default 2.5).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Write a simulated paired T1 / FDG-PET cohort (NOT patient data) with its ground truth."""
    import time

    from .console import tracked
    from .grid import default_grid, grid_for_spacing
    from .simulate import simulate_cohort

    grid = grid_for_spacing(grid_mm) if grid_mm else default_grid()
    start = time.perf_counter()
    with tracked("simulating", n) as advance:
        table = simulate_cohort(out_dir, n, seed, jobs=jobs, grid=grid, overwrite=overwrite, progress=advance)
    seconds = time.perf_counter() - start
    console.print(
        f"wrote {n} simulated subjects to {out_dir} ({seconds:.1f} s, {seconds / n:.1f} s per subject); "
        f"participants: {table}"
    )


@app.command()
@reports_errors
def preprocess(
    inputs: Annotated[
        list[Path], typer.Argument(help="T1 files, folders of them, or a BIDS-like dataset (as `simulate` writes).")
    ],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir", help="Output folder, one sub-folder per subject.")],
    pet: Annotated[Path | None, typer.Option(help="The PET of the same subject (one T1 only).")] = None,
    with_pet: Annotated[bool, typer.Option(help="In a BIDS-like dataset, also preprocess each subject's PET.")] = True,
    skull_strip: Annotated[
        str, typer.Option(help="deepbet | template (registered MNI mask) | none (input is already brain-extracted).")
    ] = "deepbet",
    jobs: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Raw T1 (and PET) -> model grid: N4, brain extraction, MNI registration, normalisation, QC."""
    import functools

    from .batch import run_batch
    from .preprocess import preprocess_and_save
    from .subjects import find_subjects

    subjects = find_subjects(inputs, pet=pet, with_pet=with_pet)
    work = functools.partial(preprocess_and_save, out_dir=out_dir, skull_strip=skull_strip, overwrite=overwrite)
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label="preprocessing")
    for sid, summary in sorted(result.done.items()):
        checks, timings = summary["checks"], summary["timings"]
        extra = f", PET-GM r {checks['pet_gm_correlation']:.2f}" if "pet_gm_correlation" in checks else ""
        console.print(
            f"{sid}: ok, brain {checks['brain_volume_ml']:.0f} ml, MNI overlap {checks['mask_dice_with_template']:.3f}"
            f"{extra}, {timings['total']:.1f} s"
        )
    finish_batch(result.failed, len(subjects), out_dir)


def finish_batch(failed: dict[str, str], total: int, out_dir: Path) -> None:
    """List the failures at the end; exit 1 when any subject failed."""
    if failed:
        err_console.print(f"[bold red]{len(failed)} of {total} subjects failed:[/]")
        for sid, message in sorted(failed.items()):
            err_console.print(f"  {sid}: {message}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"all {total} subjects written to {out_dir}")
