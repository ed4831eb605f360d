"""`mri2pet calibrate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import Jobs, ModelName, Overwrite, app, optional_file, reports_errors
from mri2pet_cli.console import say


@app.command()
@reports_errors
def calibrate(
    model: ModelName,
    data: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="Paired T1 / PET subjects that the weights never trained on (BIDS-like, or preprocessed).",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("-o", "--out", metavar="FILE", help="Calibration file (default <model>.calibration.json here)."),
    ] = None,
    weights: optional_file("Weights to calibrate (default: the shipped ones; or an adapted model's).") = None,
    split: optional_file(
        "A split file: calibrate on its 'calibration' part, and also write the familiarity reference of its "
        "'train' part (how the shipped files are made)."
    ) = None,
    coverage: Annotated[float, typer.Option(metavar="C", help="Interval coverage, 0.5-0.99.")] = 0.90,
    device: Annotated[str, typer.Option(metavar="auto|cpu|cuda", help="Where the model runs.")] = "auto",
    jobs: Jobs = 1,
    overwrite: Overwrite = False,
) -> None:
    """Per-region 90 % intervals for a model's synthetic PET, from local pairs (split-conformal)."""
    from mri2pet_cli.console import tracked
    from mri2pet_cli.io import check_writable, write_text_atomic
    from mri2pet_cli.preprocessing.cohort import paired_subject_ids, prepare_dataset, read_split
    from mri2pet_cli.site.calibration import calibrate as run_calibration
    from mri2pet_cli.site.familiarity import build_reference, familiarity_path_for, records_features

    out = out or Path(f"{model}.calibration.json")
    check_writable(out, overwrite)
    parts = read_split(split, data) if split else None
    subjects = parts["calibration"] if parts and parts.get("calibration") else None
    if parts and subjects is None:
        raise typer.BadParameter(f"{split} has no 'calibration' part")
    familiarity_out = familiarity_path_for(out.with_name(out.name.removesuffix(".calibration.json") + ".pt"))
    if parts:
        check_writable(familiarity_out, overwrite)
    with tracked("calibrating", len(subjects or paired_subject_ids(data))) as advance:
        result = run_calibration(
            model,
            data,
            weights=None if weights is None else str(weights),
            subjects=subjects,
            coverage=coverage,
            device=device,
            jobs=jobs,
            progress=advance,
        )
    write_text_atomic(json.dumps(result, indent=2), out, overwrite=overwrite)
    widths = result["half_width_suvr"]
    key = ", ".join(f"{k} ±{v:.3f}" for k, v in widths.items() if not k.isdigit())
    say(
        f"calibrated {model} on {result['n_subjects']} subjects: {coverage:.0%} half-widths (SUVR) {key}; wrote {out}",
        event="done",
        out=str(out),
    )
    if parts:
        records, _ = prepare_dataset(data, jobs=jobs, only=parts["train"])
        ids, features = records_features(records)
        reference = build_reference(features, ids, f"the T1s of the training split of {Path(data).name} ({split})")
        write_text_atomic(json.dumps(reference), familiarity_out, overwrite=overwrite)
        say(f"familiarity reference of {len(ids)} training T1s: {familiarity_out}", event="done")
