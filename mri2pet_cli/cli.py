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
    version: Annotated[
        int,
        typer.Option(
            "--version",
            min=1,
            max=2,
            help="Simulator version: 2 (default, literature FDG pattern, real-scan "
            "variety) or 1 (the first simulator, kept reproducible).",
        ),
    ] = 2,
    variety: Annotated[
        str,
        typer.Option(
            help="Version 2's scan variety: default (each by chance), none, all, or a comma list of "
            "neck,origin_offset,thick_slices,low_contrast,cut_fov,motion (those for every subject)."
        ),
    ] = "default",
    truth_ages: Annotated[
        str | None,
        typer.Option(
            "--truth-ages",
            metavar="AGES",
            help="Comma list of ages (e.g. 60,70,80,90): also write each subject's "
            "noise-free model-grid PET at those ages, 'age only' (anatomy fixed) and 'aged' (brain aged too).",
        ),
    ] = None,
) -> None:
    """Write a simulated paired T1 / FDG-PET cohort (NOT patient data) with its ground truth."""
    import time

    from .console import tracked
    from .grid import default_grid, grid_for_spacing
    from .simulate import parse_ages, simulate_cohort

    grid = grid_for_spacing(grid_mm) if grid_mm else default_grid()
    ages = parse_ages(truth_ages) if truth_ages else ()
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
        )
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
    qc: Annotated[
        str,
        typer.Option(
            help="strict: refuse a T1 whose registration fails a check (its QC picture is still written); "
            "warn: write the outputs anyway and list the failed checks in the JSON and the summary."
        ),
    ] = "strict",
) -> None:
    """Raw T1 (and PET) -> model grid: N4, brain extraction, MNI registration, normalisation, QC."""
    import functools

    from .batch import run_batch
    from .preprocess import preprocess_and_save
    from .subjects import find_subjects

    subjects = find_subjects(inputs, pet=pet, with_pet=with_pet)
    check_qc_mode(qc)
    work = functools.partial(
        preprocess_and_save, out_dir=out_dir, skull_strip=skull_strip, overwrite=overwrite, qc=qc
    )
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label="preprocessing")
    for sid, summary in sorted(result.done.items()):
        checks, timings = summary["checks"], summary["timings"]
        extra = f", PET-GM r {checks['pet_gm_correlation']:.2f}" if "pet_gm_correlation" in checks else ""
        console.print(
            f"{sid}: ok, brain {checks['brain_volume_ml']:.0f} ml, MNI overlap {checks['mask_dice_with_template']:.3f}"
            f"{extra}, {timings['total']:.1f} s"
        )
    warn_failed_checks({sid: summary["checks"] for sid, summary in result.done.items()})
    finish_batch(result.failed, len(subjects), out_dir)


def check_qc_mode(qc: str) -> None:
    from .names import did_you_mean
    from .preprocess import QC_MODES

    if qc not in QC_MODES:
        raise Mri2PetError(f"unknown --qc {qc!r}{did_you_mean(qc, QC_MODES)}", hint="choose strict or warn")


def warn_failed_checks(checks_by_subject: dict[str, dict]) -> None:
    """With --qc warn: the subjects written despite a failed check, and which."""
    flagged = {sid: c["qc_failed"] for sid, c in checks_by_subject.items() if c.get("qc_failed")}
    if flagged:
        err_console.print(f"[bold yellow]{len(flagged)} subjects written with failed QC checks (--qc warn):[/]")
        for sid, problems in sorted(flagged.items()):
            err_console.print(f"  {sid}: " + "; ".join(problems), soft_wrap=True)


def finish_batch(failed: dict[str, str], total: int, out_dir: Path) -> None:
    """List the failures at the end; exit 1 when any subject failed."""
    if failed:
        err_console.print(f"[bold red]{len(failed)} of {total} subjects failed:[/]")
        for sid, message in sorted(failed.items()):
            err_console.print(f"  {sid}: {message}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"all {total} subjects written to {out_dir}")


models_app = typer.Typer(
    help="List, describe and verify the registered models and their weights.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
@reports_errors
def models_list() -> None:
    """The registered models, what they need, and whether weights are installed."""
    from .models.registry import get_model_info, model_names
    from .weights import WeightsError, find_weights

    for name in model_names():
        info = get_model_info(name)
        try:
            weights = str(find_weights(name).weights)
        except WeightsError:
            weights = "none installed"
        age = "age (required)" if info.age_required else ("age (optional)" if info.conditioning == "age" else "none")
        console.print(
            f"[bold]{name}[/]: {info.summary}\n  conditioning: {age}; training: {info.training}; weights: {weights}",
            soft_wrap=True,
        )


@models_app.command("info")
@reports_errors
def models_info(name: Annotated[str, typer.Argument(help="Model name, e.g. unet.")]) -> None:
    """Print a model's card (version, training data, test metrics, intended use)."""
    import json

    from .models.registry import get_model_info
    from .weights import find_weights, read_card

    info = get_model_info(name)
    console.print(f"[bold]{name}[/]: {info.summary} (paper: {info.paper})")
    card = read_card(find_weights(name).card)
    console.print_json(
        json.dumps(
            {k: v for k, v in card.items() if k != "training_data"}
            | {"training_data": {k: v for k, v in card.get("training_data", {}).items() if k != "split"}}
        )
    )


@models_app.command("verify")
@reports_errors
def models_verify() -> None:
    """Re-hash every weights file and compare with its model card."""
    from .weights import verify_all

    rows = verify_all()
    for name, ok, message in rows:
        (console if ok else err_console).print(f"{'ok ' if ok else 'BAD'} {name}: {message}", soft_wrap=True)
    if not rows:
        console.print("no weights installed")
    if any(not ok for _, ok, _ in rows):
        raise typer.Exit(1)


@app.command()
@reports_errors
def train(
    model: Annotated[str, typer.Option(help="Registered model name (see `mri2pet models list`).")],
    data: Annotated[Path, typer.Option(help="Dataset: BIDS-like as `simulate` writes it, or preprocessed.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir", help="Run folder (checkpoints, split, logs).")],
    epochs: Annotated[int, typer.Option(min=1)] = 30,
    batch_size: Annotated[int, typer.Option(min=1)] = 2,
    lr: Annotated[float, typer.Option(help="Learning rate (start of the schedule).")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="cosine (lr down to 0 over the epochs) | constant")] = "cosine",
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 on GPU, fp32 on CPU) | fp32 | bf16")] = "auto",
    config: Annotated[str | None, typer.Option(help="Model options as JSON, e.g. '{\"base\": 16}'.")] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off flips, shifts and gain.")] = False,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes for preprocessing.")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's last checkpoint.")] = False,
    init_weights: Annotated[
        Path | None,
        typer.Option(help="Fine-tune: start from these weights (e.g. weights/dual-glow.pt, checked against its card)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Start afresh in a run folder that has a checkpoint.")] = False,
    export: Annotated[
        bool, typer.Option(help="After training, score the test split and write weights + card.")
    ] = False,
    export_dir: Annotated[Path | None, typer.Option(help="Where --export writes (default RUN/export).")] = None,
) -> None:
    """Train a model on paired data; a checkpoint every epoch, --resume after a kill."""
    import json

    from .console import progress_bar
    from .evaluation import resolve_device
    from .training import TrainOptions, export_run
    from .training import train as run_training

    if precision not in ("auto", "fp32", "bf16"):
        raise Mri2PetError(f"unknown precision {precision!r}", hint="auto, fp32 or bf16")
    if schedule not in ("cosine", "constant"):
        raise Mri2PetError(f"unknown schedule {schedule!r}", hint="cosine or constant")
    try:
        model_config = json.loads(config) if config else {}
    except json.JSONDecodeError as exc:
        raise Mri2PetError(f"--config is not valid JSON ({exc})") from None
    console.print(f"device: {resolve_device(device)}")
    options = TrainOptions(
        model=model,
        data=str(data),
        run_dir=str(out_dir),
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        precision=precision,
        augment=not no_augment,
        schedule=schedule,
        jobs=jobs,
        model_config=model_config,
        init_weights=str(init_weights) if init_weights else None,
    )
    with progress_bar() as bar:
        task = bar.add_task("training", total=None)

        def report(epoch: int, step: int, steps: int, logs: dict) -> None:
            text = " ".join(f"{k} {v:.4f}" for k, v in logs.items())
            if "val_mae" in logs:
                console.print(f"epoch {epoch + 1}/{epochs}: validation MAE {logs['val_mae']:.4f}")
            bar.update(
                task, total=steps * epochs, completed=epoch * steps + step, description=f"epoch {epoch + 1} {text}"
            )

        summary = run_training(options, resume=resume, overwrite=overwrite, report=report)
    for entry in summary["history"][-3:]:
        console.print(
            f"epoch {entry['epoch'] + 1}: loss {entry['loss']:.4f}, validation MAE {entry['val_mae']:.4f}, "
            f"{entry['steps_per_second']:.2f} steps/s"
        )
    console.print(f"best epoch {summary['best']['epoch'] + 1}, validation MAE {summary['best']['val_mae']:.4f}")
    if export:
        result = export_run(out_dir, export_dir or out_dir / "export", overwrite=overwrite, device=device)
        console.print(f"exported {result['weights']} and {result['card']}")
        print_metrics_table(result["test_metrics"])


def print_metrics_table(summary: dict) -> None:
    """Mean ± std per model and metric (the layout of the papers' tables)."""
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("model", no_wrap=True)
    for title in ("MAE", "PSNR dB", "SSIM", "MS-SSIM", "r"):
        table.add_column(title, no_wrap=True)
    for name, metrics in summary.items():
        cells = [
            f"{metrics[m]['mean']:.3f}±{metrics[m]['std']:.3f}" for m in ("mae", "psnr", "ssim", "ms_ssim", "pearson_r")
        ]
        table.add_row(name, *cells)
    from rich.console import Console

    Console(width=max(console.width, 130), highlight=False).print(table)  # never squeeze the numbers


@app.command()
@reports_errors
def synthesize(
    inputs: Annotated[list[Path], typer.Argument(help="T1 files, folders, a BIDS-like dataset, or a subject TSV.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir", help="Output folder, one sub-folder per subject.")] = Path(
        "mri2pet-out"
    ),
    model: Annotated[str, typer.Option(help="Registered model name (see `mri2pet models list`).")] = "unet",
    age: Annotated[
        list[float] | None,
        typer.Option(
            help="Age in years, 30-100 (one T1; a TSV gives one per subject). Repeat for an age series. "
            "Without it, dual-glow uses its learned 'age unknown' input."
        ),
    ] = None,
    weights: Annotated[Path | None, typer.Option(help="Weights file (.pt) with its card (.json) beside it.")] = None,
    reference_pet: Annotated[
        Path | None, typer.Option(help="Real PET of the same subject: adds the error map and metrics.")
    ] = None,
    use_dataset_pet: Annotated[
        bool, typer.Option(help="In a BIDS-like dataset, use each subject's PET as reference.")
    ] = True,
    skull_strip: Annotated[str, typer.Option(help="deepbet | template | none")] = "deepbet",
    samples: Annotated[int, typer.Option(min=1, help="Samples to draw (sampling models): mean and std map.")] = 1,
    temperature: Annotated[
        float | None,
        typer.Option(help="Sampling temperature (sampling models); default 0 for one sample, 0.7 for several."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same output.")] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    jobs: Annotated[int, typer.Option(min=1, help="Parallel worker processes.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    qc: Annotated[
        str,
        typer.Option(
            help="strict: refuse a T1 whose registration fails a check (its QC picture is still written); "
            "warn: write the outputs anyway and list the failed checks in the JSON and the summary."
        ),
    ] = "strict",
) -> None:
    """Raw T1 -> synthetic FDG-PET (SUVR) in native and MNI space, with AAL ROI table and report."""
    import functools

    from .api import SynthesisOptions, cached_model
    from .api import synthesize as run_synthesis
    from .batch import run_batch
    from .evaluation import resolve_device
    from .models.registry import get_model_info
    from .subjects import find_subjects

    check_qc_mode(qc)
    info = get_model_info(model)
    cached_model(model, None if weights is None else str(weights))  # checks the weights once, up front
    ages = age or []
    subjects = find_subjects(
        inputs, pet=reference_pet, with_pet=use_dataset_pet, age=ages[0] if len(ages) == 1 else None
    )
    if len(ages) > 1 and len(subjects) != 1:
        raise Mri2PetError(f"an age series (--age given {len(ages)} times) goes with exactly one T1")
    if info.conditioning == "none" and (ages or any(s.age is not None for s in subjects)):
        err_console.print(f"note: model {model} does not use age; --age is recorded but has no effect")
    console.print(f"device: {resolve_device(device)}")
    options = SynthesisOptions(
        model=model,
        weights=None if weights is None else str(weights),
        device=device,
        skull_strip=skull_strip,
        samples=samples,
        temperature=temperature,
        seed=seed,
        overwrite=overwrite,
        qc=qc,
    )
    work = functools.partial(run_synthesis, out_dir=out_dir, options=options, ages=ages if len(ages) > 1 else None)
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label="synthesizing")
    for sid, record in sorted(result.done.items()):
        metrics = record["metrics_vs_reference"]
        extra = f", vs reference: MAE {metrics['mae']:.3f}, r {metrics['pearson_r']:.3f}" if metrics else ""
        total = sum(v for k, v in record["timings_s"].items() if not k.endswith("total"))
        console.print(f"{sid}: {record['outputs']['pet_native']} ({total:.1f} s{extra})")
        if "age_series" in record:
            console.print(f"{sid}: age series {record['age_series']['ages']} -> {record['age_series']['files']['png']}")
    warn_failed_checks({sid: record.get("preprocessing_checks", {}) for sid, record in result.done.items()})
    finish_batch(result.failed, len(subjects), out_dir)


@app.command()
@reports_errors
def evaluate(
    data: Annotated[Path, typer.Option(help="Paired dataset (BIDS-like or preprocessed).")],
    model: Annotated[str, typer.Option(help="Model name(s), comma-separated: unet,dual-glow.")],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir")] = Path("mri2pet-eval"),
    subjects: Annotated[
        Path | None, typer.Option(help="File with one subject id per line (default: the card's test split).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes for preprocessing.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
) -> None:
    """Score models against real PET on the test split, with the mean-PET and population baselines."""
    from .api import evaluate as run_evaluation

    names = [m.strip() for m in model.split(",") if m.strip()]
    ids = None
    if subjects is not None:
        if not subjects.is_file():
            raise Mri2PetError(f"{subjects}: subject list not found")
        ids = [line.strip() for line in subjects.read_text().splitlines() if line.strip()]
    result = run_evaluation(data, names, out_dir, subjects=ids, device=device, overwrite=overwrite, jobs=jobs)
    console.print(f"{result['n_test']} test subjects; PSNR data range: {result['psnr_data_range']}")
    print_metrics_table(result["summary"])
    console.print(f"wrote {', '.join(result['files'].values())}")
