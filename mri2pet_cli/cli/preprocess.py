"""`mri2pet preprocess`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import DicomSeries, Inputs, Jobs, Overwrite, QcMode, ShardPart, SkullStrip, app, reports_errors
from mri2pet_cli.cli.common import finish_batch, warn_failed_checks
from mri2pet_cli.console import say


@app.command()
@reports_errors
def preprocess(
    inputs: Inputs,
    out_dir: Annotated[
        Path, typer.Option("-o", "--out-dir", metavar="DIR", help="Output folder, one sub-folder per subject.")
    ],
    pet: Annotated[Path | None, typer.Option(metavar="FILE", help="The PET of the same subject (one T1 only).")] = None,
    with_pet: Annotated[bool, typer.Option(help="In a BIDS dataset, also preprocess each subject's PET.")] = True,
    skull_strip: SkullStrip = "deepbet",
    jobs: Jobs = 1,
    overwrite: Overwrite = False,
    qc: QcMode = "strict",
    shard: ShardPart = None,
    dicom_series: DicomSeries = None,
) -> None:
    """Raw T1 (and PET) -> model grid: N4, brain extraction, MNI registration, normalisation, QC."""
    from mri2pet_cli.preprocessing.batch import preprocess_batch

    batch = preprocess_batch(
        inputs,
        out_dir,
        pet=pet,
        with_pet=with_pet,
        skull_strip=skull_strip,
        qc=qc,
        overwrite=overwrite,
        jobs=jobs,
        shard=shard,
        dicom_series=dicom_series,
    )
    result = batch.result
    for sid, summary in sorted(result.done.items()):
        if summary.get("skipped"):
            say(f"{sid}: finished before for the same request; skipped", event="subject_skipped", subject=sid)
            continue
        checks, timings = summary["checks"], summary["timings"]
        extra = f", PET-GM r {checks['pet_gm_correlation']:.2f}" if "pet_gm_correlation" in checks else ""
        say(
            f"{sid}: ok, brain {checks['brain_volume_ml']:.0f} ml, MNI overlap {checks['mask_dice_with_template']:.3f}"
            f"{extra}, {timings['total']:.1f} s",
            event="subject_done",
            subject=sid,
        )
    warn_failed_checks({sid: summary["checks"] for sid, summary in result.done.items()})
    finish_batch(batch.failed, batch.total, out_dir, skipped=batch.skipped)
