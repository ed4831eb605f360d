"""The ``mri2pet`` command line: a thin Typer layer over the library.

Heavy imports (torch, SimpleITK, nilearn) happen inside the commands so that
``mri2pet --help`` stays fast.

Exit codes (every command): 0 all written; 1 some subjects failed (the others are written, the
failures listed at the end); 2 bad input or options, refused before any work; 130 interrupted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from . import __version__
from .console import console, err_console, say, set_log_json
from .errors import Mri2PetError
from .help_text import readable_help_types
from .names import check_name

readable_help_types()

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
            say(f"[bold red]error:[/] {exc}", event="error", error=True, exit_code=exc.exit_code)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            say("[bold red]interrupted[/]", event="interrupted", error=True, exit_code=130)
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
    log_json: Annotated[
        bool,
        typer.Option("--log-json", help="Log one JSON object per line (for machines) instead of text."),
    ] = False,
) -> None:
    """mri2pet: raw T1 -> synthetic FDG-PET with quality and AAL region reports.

    Exit codes: 0 all written, 1 some subjects failed, 2 bad input or options (before any work), 130 interrupted.
    """
    set_log_json(log_json)


INPUTS_HELP = (
    "T1 files, folders of them, BIDS datasets, or subject tables (.tsv: participant_id and t1, pet, age; "
    "relative paths are read from the table's folder; a BIDS participants.tsv finds each T1 beside it)."
)
QC_HELP = (
    "strict: refuse a T1 whose registration fails a check (its QC picture is still written); "
    "warn: write the outputs anyway and list the failed checks in the report, the JSON and the summary."
)
SKULL_STRIP_HELP = "deepbet | template (registered MNI mask) | none (input is already brain-extracted)."


@app.command()
@reports_errors
def simulate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the cohort (BIDS-like layout).", metavar="OUT_DIR")],
    n: Annotated[int, typer.Option("--n", min=1, metavar="N", help="Number of subjects.")] = 20,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Random seed: same seed, same cohort.")] = 0,
    jobs: Annotated[int, typer.Option(min=1, metavar="N", help="Parallel worker processes.")] = 1,
    grid_mm: Annotated[
        float | None,
        typer.Option("--grid-mm", metavar="MM", help="Model-grid spacing for the ground truth (default 2.5)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    version: Annotated[
        int,
        typer.Option(
            "--version",
            min=1,
            max=2,
            metavar="1|2",
            help="Simulator version: 2 (default, literature FDG pattern, real-scan "
            "variety) or 1 (the first simulator, kept reproducible).",
        ),
    ] = 2,
    variety: Annotated[
        str,
        typer.Option(
            metavar="KIND",
            help="Version 2's scan variety: default (each by chance), none, all, or a comma list of "
            "neck,origin_offset,thick_slices,low_contrast,cut_fov,motion (those for every subject).",
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
            truth_subjects=truth_subjects,
        )
    seconds = time.perf_counter() - start
    say(
        f"wrote {n} simulated subjects to {out_dir} ({seconds:.1f} s, {seconds / n:.1f} s per subject); "
        f"participants: {table}",
        event="done",
        out_dir=str(out_dir),
        n=n,
    )


def check_qc_mode(qc: str) -> None:
    from .preprocess import QC_MODES

    check_name(qc, QC_MODES, "--qc")


def readable_subjects(subjects: list, part=None) -> tuple[list, dict[str, str]]:
    """The subjects whose files open, and the others; says how many of each.

    None readable is a bad input (exit 2), except in one shard of a batch: its failures are recorded.
    """
    from .subjects import check_subject_files

    good, bad = check_subject_files(subjects, require_one=part is None)
    if bad:
        say(
            f"{len(bad)} of {len(subjects)} inputs cannot be read and are skipped; the other {len(good)} go on",
            event="skipped",
            error=True,
            subjects=sorted(bad),
        )
    return good, bad


@app.command()
@reports_errors
def preprocess(
    inputs: Annotated[list[Path], typer.Argument(help=INPUTS_HELP, metavar="INPUT...")],
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", metavar="DIR", help="Output folder, one sub-folder per subject.")
    ],
    pet: Annotated[Path | None, typer.Option(metavar="FILE", help="The PET of the same subject (one T1 only).")] = None,
    with_pet: Annotated[bool, typer.Option(help="In a BIDS dataset, also preprocess each subject's PET.")] = True,
    skull_strip: Annotated[str, typer.Option(metavar="deepbet|template|none", help=SKULL_STRIP_HELP)] = "deepbet",
    jobs: Annotated[int, typer.Option(min=1, metavar="N", help="Parallel worker processes.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    qc: Annotated[str, typer.Option(metavar="strict|warn", help=QC_HELP)] = "strict",
    shard: Annotated[str | None, typer.Option(metavar="K/N", help=SHARD_HELP)] = None,
) -> None:
    """Raw T1 (and PET) -> model grid: N4, brain extraction, MNI registration, normalisation, QC."""
    import functools

    from .batch import run_batch
    from .preprocess import SKULL_STRIP_METHODS, preprocess_and_save
    from .subjects import find_subjects

    check_qc_mode(qc)
    check_name(skull_strip, SKULL_STRIP_METHODS, "--skull-strip")
    part = parse_shard(shard) if shard else None
    subjects, unreadable = readable_subjects(shard_of(find_subjects(inputs, pet=pet, with_pet=with_pet), part), part)
    work = functools.partial(preprocess_and_save, out_dir=out_dir, skull_strip=skull_strip, overwrite=overwrite, qc=qc)
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label="preprocessing")
    for sid, summary in sorted(result.done.items()):
        checks, timings = summary["checks"], summary["timings"]
        extra = f", PET-GM r {checks['pet_gm_correlation']:.2f}" if "pet_gm_correlation" in checks else ""
        say(
            f"{sid}: ok, brain {checks['brain_volume_ml']:.0f} ml, MNI overlap {checks['mask_dice_with_template']:.3f}"
            f"{extra}, {timings['total']:.1f} s",
            event="subject_done",
            subject=sid,
        )
    warn_failed_checks({sid: summary["checks"] for sid, summary in result.done.items()})
    record_batch(out_dir, "preprocess", part, subjects, unreadable, result)
    finish_batch(unreadable | result.failed, len(subjects) + len(unreadable), out_dir)


SHARD_HELP = (
    "Only the K-th of N parts of the subjects (cluster job arrays; auto/N: K from the array task id). "
    "Each part writes shards/shard-K-of-N.json; `mri2pet merge OUT_DIR` joins them."
)


def parse_shard(text: str):
    from .shards import parse_shard as parse

    return parse(text)


def shard_of(subjects: list, part) -> list:
    from .shards import select

    chosen = select(subjects, key=lambda s: s.subject_id, shard=part)
    if part is not None:
        say(f"shard {part.label}: {len(chosen)} of {len(subjects)} subjects", event="shard", n=len(chosen))
    return chosen


def record_batch(out_dir: Path, command: str, part, subjects: list, unreadable: dict, result) -> None:
    """A shard's manifest, or (one unsharded run) the batch summary, failure list and cohort ROI table."""
    from .shards import subject_outputs, write_batch_files, write_manifest

    failed = unreadable | result.failed
    if part is not None:
        ids = sorted([s.subject_id for s in subjects] + list(unreadable))
        write_manifest(out_dir, part, command, ids, result.done, failed)
    else:
        write_batch_files(out_dir, command, {sid: subject_outputs(v) for sid, v in result.done.items()}, failed)


def warn_failed_checks(checks_by_subject: dict[str, dict]) -> None:
    """With --qc warn: the subjects written despite a failed check, and which."""
    flagged = {sid: c["qc_failed"] for sid, c in checks_by_subject.items() if c.get("qc_failed")}
    if flagged:
        say(
            f"[bold yellow]{len(flagged)} subjects written with failed QC checks (--qc warn):[/]",
            event="qc_warnings",
            error=True,
            subjects=flagged,
        )
        for sid, problems in sorted(flagged.items()):
            say(f"  {sid}: " + "; ".join(problems), event="qc_warning", error=True, subject=sid)


def finish_batch(failed: dict[str, str], total: int, out_dir: Path) -> None:
    """List the failures at the end; exit 1 when any subject failed."""
    if failed:
        say(f"[bold red]{len(failed)} of {total} subjects failed:[/]", event="failed", error=True, n=len(failed))
        for sid, message in sorted(failed.items()):
            say(f"  {sid}: {message}", event="subject_failed", error=True, subject=sid, reason=message)
        raise typer.Exit(1)
    say(f"all {total} subjects written to {out_dir}", event="done", n=total, out_dir=str(out_dir))


@app.command()
@reports_errors
def merge(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="The output folder every shard wrote into.")],
) -> None:
    """Join the shards of a batch (--shard K/N): one batch summary, failure list and cohort ROI table."""
    from .shards import merge as merge_shards

    result = merge_shards(out_dir)
    say(
        f"merged {len(result.found)} of {result.shards} shards: {len(result.done)} subjects done, "
        f"{len(result.failed)} failed; wrote {', '.join(str(f) for f in result.files)}",
        event="merged",
        shards=result.shards,
        found=result.found,
    )
    if result.missing:
        say(
            f"missing shards: {', '.join(map(str, result.missing))} (not run, or still running)",
            event="missing",
            error=True,
        )
    for sid, reason in sorted(result.failed.items()):
        say(f"  {sid}: {reason}", event="subject_failed", error=True, subject=sid, reason=reason)
    if result.missing or result.failed:
        raise typer.Exit(1)


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
def models_info(
    name: Annotated[str, typer.Argument(help="Model name, e.g. unet.", metavar="MODEL")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole model card as JSON.")] = False,
) -> None:
    """A model card in brief: version, weights, training data, test metrics, intended use."""
    import json

    from .models.registry import get_model_info
    from .weights import find_weights, read_card

    info = get_model_info(name)
    files = find_weights(name)
    card = read_card(files.card)
    if as_json:
        print(json.dumps(card, indent=2))
        return
    from .weights import card_summary_lines

    console.print(f"[bold]{name}[/]: {info.summary} (paper: {info.paper})")
    for line in card_summary_lines(card, files):
        console.print(line, soft_wrap=True)
    print_metrics_table(card.get("test_metrics", {}).get("models", {}))
    console.print(f"whole card: mri2pet models info {name} --json ({files.card})")


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
    model: Annotated[str, typer.Option(metavar="MODEL", help="Registered model name (see `mri2pet models list`).")],
    data: Annotated[
        Path, typer.Option(metavar="DIR", help="Dataset: BIDS-like as `simulate` writes it, or preprocessed.")
    ],
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", metavar="DIR", help="Run folder (checkpoints, split, logs).")
    ],
    epochs: Annotated[int, typer.Option(min=1, metavar="N", help="Passes over the training subjects.")] = 30,
    batch_size: Annotated[int, typer.Option(min=1, metavar="N", help="Subjects per optimisation step.")] = 2,
    lr: Annotated[float, typer.Option(metavar="RATE", help="Learning rate (start of the schedule).")] = 1e-3,
    schedule: Annotated[
        str, typer.Option(metavar="cosine|constant", help="cosine: lr down to 0 over the epochs; constant.")
    ] = "cosine",
    seed: Annotated[
        int, typer.Option(metavar="SEED", help="Seed of the train/validation/test split, the weights and the order.")
    ] = 0,
    device: Annotated[str, typer.Option(metavar="auto|cpu|cuda", help="Where to train (auto: a GPU if any).")] = "auto",
    precision: Annotated[
        str, typer.Option(metavar="auto|fp32|bf16", help="auto: bf16 autocast on a GPU, fp32 on the CPU.")
    ] = "auto",
    config: Annotated[
        str | None, typer.Option(metavar="JSON", help="Model options as JSON, e.g. '{\"base\": 16}'.")
    ] = None,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Turn off flips, shifts and gain.")] = False,
    jobs: Annotated[int, typer.Option(min=1, metavar="N", help="Worker processes for preprocessing.")] = 1,
    resume: Annotated[bool, typer.Option(help="Continue from the run folder's last checkpoint.")] = False,
    init_weights: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Fine-tune: start from these weights (e.g. weights/dual-glow.pt, checked against its card).",
        ),
    ] = None,
    split: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Use this split.json (e.g. another run's) instead of drawing one: same test subjects.",
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Start afresh in a run folder that has a checkpoint.")] = False,
    export: Annotated[
        bool, typer.Option(help="After training, score the test split and write weights + card.")
    ] = False,
    export_dir: Annotated[
        Path | None, typer.Option(metavar="DIR", help="Where --export writes (default RUN/export).")
    ] = None,
) -> None:
    """Train a model on paired data; a checkpoint every epoch, --resume after a kill."""
    import json

    from .evaluation import resolve_device
    from .models.registry import get_model_info
    from .training import TrainOptions, export_run
    from .training import train as run_training

    check_name(precision, ("auto", "fp32", "bf16"), "--precision")
    check_name(schedule, ("cosine", "constant"), "--schedule")
    get_model_info(model)
    try:
        model_config = json.loads(config) if config else {}
    except json.JSONDecodeError as exc:
        raise Mri2PetError(f"--config is not valid JSON ({exc})") from None
    if not data.is_dir():
        raise Mri2PetError(f"{data}: data folder not found")
    say(f"train {model} on {data}: device {resolve_device(device)}, {epochs} epochs", event="start", model=model)
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
        split_file=str(split) if split else None,
    )
    from .console import training_progress

    with training_progress(epochs) as report:
        summary = run_training(options, resume=resume, overwrite=overwrite, report=report)
    best = summary["best"]
    say(
        f"best epoch {best['epoch']}, validation MAE {best['val_mae']:.4f}; run folder {out_dir}",
        event="done",
        best_epoch=best["epoch"],
        val_mae=best["val_mae"],
    )
    from .distributed import Distributed

    if export and Distributed.from_environment().writes:  # under torchrun, rank 0 exports once
        result = export_run(out_dir, export_dir or out_dir / "export", overwrite=overwrite, device=device)
        say(f"exported {result['weights']} and {result['card']}", event="exported")
        print_metrics_table(result["test_metrics"])


def print_metrics_table(summary: dict) -> None:
    """Mean ± std per model and metric (the layout of the papers' tables)."""
    from .console import log_json_enabled

    columns = ("mae", "psnr", "ssim", "ms_ssim", "pearson_r")
    if log_json_enabled():
        say("metrics", event="metrics", summary=summary)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False)
    table.add_column("model", no_wrap=True)
    for title in ("MAE", "PSNR dB", "SSIM", "MS-SSIM", "r"):
        table.add_column(title, no_wrap=True)
    for name, metrics in summary.items():
        table.add_row(name, *(f"{metrics[m]['mean']:.3f}±{metrics[m]['std']:.3f}" for m in columns))
    Console(width=max(console.width, 130), highlight=False).print(table)  # never squeeze the numbers


@app.command()
@reports_errors
def synthesize(
    inputs: Annotated[list[Path], typer.Argument(help=INPUTS_HELP, metavar="INPUT...")],
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", metavar="DIR", help="Output folder, one sub-folder per subject.")
    ] = Path("mri2pet-out"),
    model: Annotated[
        str, typer.Option(metavar="MODEL", help="Registered model name (see `mri2pet models list`).")
    ] = "unet",
    age: Annotated[
        list[float] | None,
        typer.Option(
            metavar="YEARS",
            help="Age in years, 30-100 (one T1; a table gives one per subject). Repeat for an age series. "
            "Without it, dual-glow uses its learned 'age unknown' input.",
        ),
    ] = None,
    scan_age: Annotated[
        float | None,
        typer.Option(
            metavar="YEARS",
            help="Age at which the T1 was taken, when the PET is wanted for another --age: this brain at that "
            "age, anatomy as in the T1 (dual-glow: the measured age-only effect). Without it each --age is "
            "taken as the age at the scan.",
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Weights file (.pt) with its card (.json) beside it.")
    ] = None,
    reference_pet: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Real PET of the same subject: adds the error map and metrics."),
    ] = None,
    use_dataset_pet: Annotated[
        bool, typer.Option(help="In a BIDS dataset, use each subject's PET as reference.")
    ] = True,
    skull_strip: Annotated[str, typer.Option(metavar="deepbet|template|none", help=SKULL_STRIP_HELP)] = "deepbet",
    samples: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples to draw (sampling models): mean and std map.")
    ] = 1,
    temperature: Annotated[
        float | None,
        typer.Option(
            metavar="T",
            help="Sampling temperature (sampling models); default 0 for one sample, 1 for the std of several.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Random seed: same seed, same output.")] = 0,
    device: Annotated[
        str, typer.Option(metavar="auto|cpu|cuda", help="Where the model runs (auto: a GPU if any).")
    ] = "auto",
    jobs: Annotated[int, typer.Option(min=1, metavar="N", help="Parallel worker processes.")] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    qc: Annotated[str, typer.Option(metavar="strict|warn", help=QC_HELP)] = "strict",
    shard: Annotated[str | None, typer.Option(metavar="K/N", help=SHARD_HELP)] = None,
) -> None:
    """Raw T1 -> synthetic FDG-PET (SUVR) in native and MNI space, with AAL ROI table and report."""
    import functools

    from .api import SynthesisOptions, cached_model, check_age
    from .api import synthesize as run_synthesis
    from .batch import run_batch
    from .evaluation import resolve_device
    from .models.registry import get_model_info
    from .preprocess import SKULL_STRIP_METHODS
    from .subjects import find_subjects

    check_qc_mode(qc)
    check_name(skull_strip, SKULL_STRIP_METHODS, "--skull-strip")
    if temperature is not None and temperature < 0:
        raise Mri2PetError(f"--temperature {temperature:g} is negative", hint="0 gives the point estimate")
    info = get_model_info(model)
    ages = age or []
    for value in ages:
        check_age(value, model, "--age")
    if scan_age is not None:
        check_age(scan_age, model, "--scan-age")
        if not ages:
            raise Mri2PetError("--scan-age goes with the age (--age) the PET is wanted for")
    dev = resolve_device(device)
    subjects = find_subjects(
        inputs, pet=reference_pet, with_pet=use_dataset_pet, age=ages[0] if len(ages) == 1 else None
    )
    if len(ages) > 1 and len(subjects) != 1:
        raise Mri2PetError(f"an age series (--age given {len(ages)} times) goes with exactly one T1")
    if len(ages) > 1 and info.conditioning != "age":
        raise Mri2PetError(f"model {model} does not use age: an age series needs an age-conditioned model")
    if scan_age is not None and len(subjects) != 1:
        raise Mri2PetError(f"--scan-age goes with one T1, not {len(subjects)}")
    if info.conditioning == "none" and ages:  # a table's ages are recorded quietly
        say(f"note: model {model} does not use age; --age is recorded but has no effect", event="note", error=True)
    part = parse_shard(shard) if shard else None
    subjects, unreadable = readable_subjects(shard_of(subjects, part), part)
    cached_model(model, None if weights is None else str(weights))  # checks the weights once, up front
    say(f"synthesize {len(subjects)} subjects with {model} on {dev}", event="start", model=model, device=str(dev))
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
        scan_age=scan_age,
    )
    work = functools.partial(run_synthesis, out_dir=out_dir, options=options, ages=ages if len(ages) > 1 else None)
    result = run_batch(work, subjects, key=lambda s: s.subject_id, jobs=jobs, label="synthesizing")
    for sid, record in sorted(result.done.items()):
        report_synthesis(sid, record)
    warn_failed_checks({sid: record.get("preprocessing_checks", {}) for sid, record in result.done.items()})
    record_batch(out_dir, f"synthesize --model {model}", part, subjects, unreadable, result)
    finish_batch(unreadable | result.failed, len(subjects) + len(unreadable), out_dir)


def report_synthesis(sid: str, record: dict) -> None:
    """One line per PET written (each age of a series), with the time and the error against a reference."""
    for entry in record.get("age_series", {}).get("records", [record]):
        metrics = entry["metrics_vs_reference"]
        extra = f", vs reference: MAE {metrics['mae']:.3f}, r {metrics['pearson_r']:.3f}" if metrics else ""
        total = sum(v for k, v in entry["timings_s"].items() if not k.endswith("total"))
        age = f" (age {entry['age']:g})" if entry.get("age") is not None else ""
        say(
            f"{sid}{age}: {entry['outputs']['pet_native']} ({total:.1f} s{extra})",
            event="subject_done",
            subject=sid,
            age=entry.get("age"),
            outputs=entry["outputs"],
        )
    if "age_series" in record:
        files = record["age_series"]["files"]
        say(f"{sid}: age curve {files['png']} and {files['csv']}", event="age_curve", subject=sid, files=files)


def read_subject_ids(path: Path, option: str) -> list[str]:
    """Subject ids from a file: one per line, or a table's participant_id column (e.g. participants.tsv)."""
    from .subjects import read_table

    if not path.is_file():
        raise Mri2PetError(f"{path}: {option} file not found")
    header, rows = read_table(path)
    if "participant_id" in header:
        ids = [r["participant_id"] for r in rows if r.get("participant_id")]
    else:
        ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise Mri2PetError(f"{path}: {option} lists no subjects")
    return ids


@app.command()
@reports_errors
def evaluate(
    data: Annotated[Path, typer.Option(metavar="DIR", help="Paired dataset (BIDS-like or preprocessed).")],
    model: Annotated[str, typer.Option(metavar="MODELS", help="Model name(s), comma-separated: unet,dual-glow.")],
    out_dir: Annotated[
        Path,
        typer.Option("-o", "--out-dir", metavar="DIR", help="Where evaluation.csv, .json and .png go."),
    ] = Path("mri2pet-eval"),
    subjects: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Subjects to score: one id per line or a participants.tsv. Default: the card's test split "
            "if DIR is the model's training cohort, else every paired subject in DIR.",
        ),
    ] = None,
    train_subjects: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Subjects for the two baselines (mean training PET, population). Default: the card's training "
            "split if DIR is the training cohort, else leave-one-out over the scored subjects.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(metavar="auto|cpu|cuda", help="Where the models run.")] = "auto",
    jobs: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Worker processes for preprocessing and the study's cross-validation folds."
        ),
    ] = 1,
    overwrite: Annotated[bool, typer.Option(help="Replace existing files.")] = False,
    study: Annotated[
        bool,
        typer.Option(
            help="Also the seeds' study: AD classification real vs synthetic PET, complete-dataset experiment, "
            "age trends, regional agreement, other papers' metric conventions (study.html, study_*.csv, study.json)."
        ),
    ] = True,
    folds: Annotated[int, typer.Option(min=2, max=20, metavar="K", help="Study: outer cross-validation folds.")] = 5,
    repeats: Annotated[int, typer.Option(min=1, max=50, metavar="R", help="Study: repeats of the outer split.")] = 5,
    missing_pet_fraction: Annotated[
        float,
        typer.Option(
            min=0.05,
            max=0.95,
            metavar="F",
            help="Study: fraction of subjects without real PET in the complete-dataset rows.",
        ),
    ] = 0.5,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Study: seed of the splits and bootstraps.")] = 0,
    shard: Annotated[
        str | None,
        typer.Option(
            metavar="K/N",
            help="Only preprocess and synthesize the K-th of N parts of the cohort into its caches (job arrays); "
            "then run evaluate without --shard, which scores everyone from the caches.",
        ),
    ] = None,
) -> None:
    """Score models against real PET on any paired cohort, with the mean-PET and population baselines,
    and (unless --no-study) the seeds' study. --model all: every model with shipped weights."""
    from .api import evaluate as run_evaluation
    from .evaluation.study import StudySettings

    names = [m.strip() for m in model.split(",") if m.strip()]
    ids = read_subject_ids(subjects, "--subjects") if subjects is not None else None
    if shard:
        from .api import fill_caches

        part = parse_shard(shard)
        filled = fill_caches(data, names, out_dir, part, subjects=ids, device=device, jobs=jobs)
        say(
            f"shard {part.label}: {len(filled['done'])} of {len(filled['subjects'])} subjects preprocessed and "
            f"synthesized into the caches of {data}; manifest {filled['manifest']}",
            event="done",
        )
        finish_batch(filled["failed"], len(filled["subjects"]), out_dir)
        return
    train_ids = read_subject_ids(train_subjects, "--train-subjects") if train_subjects is not None else None
    settings = StudySettings(
        folds=folds, repeats=repeats, missing_pet_fraction=missing_pet_fraction, seed=seed, jobs=jobs
    )
    result = run_evaluation(
        data,
        names,
        out_dir,
        subjects=ids,
        train_subjects=train_ids,
        device=device,
        overwrite=overwrite,
        jobs=jobs,
        study=study,
        study_settings=settings,
    )
    say(
        f"scored {result['n_test']} subjects: {result['subject_source']}; baselines: {result['baseline_source']}",
        event="scored",
        n=result["n_test"],
    )
    if result["missing_subjects"]:
        missing = result["missing_subjects"]
        say(
            f"{len(missing)} subjects asked for are not in {data} with both T1 and PET: {', '.join(missing[:10])}"
            + (" ..." if len(missing) > 10 else ""),
            event="missing",
            error=True,
            subjects=missing,
        )
    say(f"PSNR data range: {result['psnr_data_range']}", event="info")
    print_metrics_table(result["summary"])
    if "study" in result:
        for line in result["study"]["targets"]:
            say(f"study: {line}", event="study_target")
    say(f"wrote {', '.join(result['files'].values())}", event="done", files=result["files"])
