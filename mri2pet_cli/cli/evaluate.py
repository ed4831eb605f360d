"""`mri2pet evaluate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import app, reports_errors
from mri2pet_cli.cli.common import finish_batch, print_metrics_table, read_subject_ids
from mri2pet_cli.console import say


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
    curve_draws: Annotated[
        int,
        typer.Option(min=2, max=200, metavar="D", help="Study: random draws of the labelled subjects per curve point."),
    ] = 10,
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
    from mri2pet_cli.evaluation.run import evaluate as run_evaluation
    from mri2pet_cli.evaluation.study import StudySettings

    names = [m.strip() for m in model.split(",") if m.strip()]
    ids = read_subject_ids(subjects, "--subjects") if subjects is not None else None
    if shard:
        from mri2pet_cli.evaluation.run import fill_caches
        from mri2pet_cli.shards import parse_shard

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
        folds=folds,
        repeats=repeats,
        missing_pet_fraction=missing_pet_fraction,
        seed=seed,
        jobs=jobs,
        curve_draws=curve_draws,
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
