"""`mri2pet train`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import ModelName, app, optional_file, reports_errors
from mri2pet_cli.cli.common import print_metrics_table
from mri2pet_cli.console import say
from mri2pet_cli.errors import Mri2PetError


@app.command()
@reports_errors
def train(
    model: ModelName,
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
    init_weights: optional_file(
        "Fine-tune: start from these weights (e.g. weights/dual-glow.pt, checked against its card)."
    ) = None,
    split: optional_file("Use this split.json (e.g. another run's) instead of drawing one: same test subjects.") = None,
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

    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.training import TrainOptions, export_run
    from mri2pet_cli.training import train as run_training
    from mri2pet_cli.training.options import check_options

    try:
        model_config = json.loads(config) if config else {}
    except json.JSONDecodeError as exc:
        raise Mri2PetError(f"--config is not valid JSON ({exc})") from None
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
    check_options(options)
    say(f"train {model} on {data}: device {resolve_device(device)}, {epochs} epochs", event="start", model=model)
    from mri2pet_cli.console import training_progress

    with training_progress(epochs) as report:
        summary = run_training(options, resume=resume, overwrite=overwrite, report=report)
    best = summary["best"]
    say(
        f"best epoch {best['epoch']}, validation MAE {best['val_mae']:.4f}; run folder {out_dir}",
        event="done",
        best_epoch=best["epoch"],
        val_mae=best["val_mae"],
    )
    from mri2pet_cli.training.distributed import Distributed

    if export and Distributed.from_environment().writes:  # under torchrun, rank 0 exports once
        result = export_run(out_dir, export_dir or out_dir / "export", overwrite=overwrite, device=device)
        say(f"exported {result['weights']} and {result['card']}", event="exported")
        if "warning" in result:  # a tiny or failed run: say so before anyone uses the weights
            say(f"[bold yellow]warning:[/] {result['warning']}", event="warning", error=True)
        print_metrics_table(result["test_metrics"])
