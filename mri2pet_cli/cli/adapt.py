"""`mri2pet adapt`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import Jobs, ModelName, Overwrite, app, optional_file, reports_errors


@app.command()
@reports_errors
def adapt(
    model: ModelName,
    data: Annotated[
        Path, typer.Option(metavar="DIR", help="Your site's paired T1 / PET subjects (BIDS-like, as for `train`).")
    ],
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", metavar="DIR", help="Adapted weights + card; runs in DIR/work.")
    ],
    weights: optional_file("Base weights (default: the shipped ones).") = None,
    epochs: Annotated[int, typer.Option(min=1, metavar="N", help="Most epochs of fine-tuning.")] = 20,
    patience: Annotated[
        int, typer.Option(min=1, metavar="N", help="Hold-out: stop after N epochs without improvement.")
    ] = 3,
    lr: Annotated[
        float | None,
        typer.Option(
            metavar="RATE",
            help="Learning rate (constant, warm-up in epoch 1); default: the model's own, 2e-4 (dual-glow 5e-5).",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, metavar="N", help="Subjects per step.")] = 2,
    seed: Annotated[int, typer.Option(metavar="SEED", help="Seed of the local split and the training.")] = 0,
    device: Annotated[str, typer.Option(metavar="auto|cpu|cuda", help="Where to train (auto: a GPU if any).")] = "auto",
    jobs: Jobs = 1,
    force: Annotated[
        bool, typer.Option(help="Export even when fine-tuning does not beat the base model on local validation.")
    ] = False,
    overwrite: Overwrite = False,
) -> None:
    """Fine-tune a model on your site's pairs; exported only where local validation shows it helps."""
    from mri2pet_cli.site.adapt import adapt as run_adapt

    run_adapt(
        model,
        data,
        out_dir,
        weights=None if weights is None else str(weights),
        epochs=epochs,
        patience=patience,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        device=device,
        jobs=jobs,
        force=force,
        overwrite=overwrite,
    )
