"""`mri2pet synthesize`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mri2pet_cli.cli.app import DicomSeries, Inputs, Jobs, Overwrite, QcMode, ShardPart, SkullStrip, app, reports_errors
from mri2pet_cli.cli.common import finish_batch, warn_failed_checks
from mri2pet_cli.console import say


@app.command()
@reports_errors
def synthesize(
    inputs: Inputs,
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
    skull_strip: SkullStrip = "deepbet",
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
    jobs: Jobs = 1,
    overwrite: Overwrite = False,
    qc: QcMode = "strict",
    shard: ShardPart = None,
    dicom_series: DicomSeries = None,
    ref_region: Annotated[
        str,
        typer.Option(
            metavar="cerebellum|pons|whole-brain",
            help="SUVR reference region of the outputs: cerebellum (cerebellar cortex, what the models learned), "
            "pons, or whole-brain. Named in every report and record.",
        ),
    ] = "cerebellum",
    dicom_out: Annotated[
        bool,
        typer.Option(
            "--dicom-out",
            help="Also write the PET on the T1's grid as a DICOM series (PET, marked synthetic; in the T1's "
            "study when the input is DICOM).",
        ),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="A site's calibration (`mri2pet calibrate`): each region's 90 % interval. Default: the one "
            "beside the weights (shipped: made on simulated training-site subjects).",
        ),
    ] = None,
) -> None:
    """Raw T1 -> synthetic FDG-PET (SUVR) in native and MNI space, with AAL ROI table and report."""
    from mri2pet_cli.inference.batch import synthesize_batch
    from mri2pet_cli.inference.synthesis import SynthesisOptions

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
        dicom_out=dicom_out,
        ref_region=ref_region,
        calibration=None if calibration is None else str(calibration),
    )
    batch = synthesize_batch(
        inputs,
        out_dir,
        options,
        ages=age,
        reference_pet=reference_pet,
        use_dataset_pet=use_dataset_pet,
        jobs=jobs,
        shard=shard,
        dicom_series=dicom_series,
    )
    for sid, record in sorted(batch.result.done.items()):
        report_synthesis(sid, record)
    warn_failed_checks({sid: record.get("preprocessing_checks", {}) for sid, record in batch.result.done.items()})
    finish_batch(batch.failed, batch.total, out_dir, skipped=batch.skipped)


def familiarity_words(familiarity: dict) -> str:
    """'; input unusual for this model (acquisition: noise_rel outside training)' or '' when typical."""
    verdict = familiarity.get("verdict")
    if verdict not in ("unusual", "outside"):
        return ""
    why = familiarity.get("driven_by", "")
    if familiarity.get("unlike_training"):
        why += ": " + ", ".join(familiarity["unlike_training"]) + " outside training"
    return f"; input {verdict} for this model" + (f" ({why})" if why else "")


def report_synthesis(sid: str, record: dict) -> None:
    """One line per PET written (each age of a series), with the time and the error against a reference."""
    if record.get("skipped"):
        say(f"{sid}: finished before for the same request; skipped", event="subject_skipped", subject=sid)
        return
    for entry in record.get("age_series", {}).get("records", [record]):
        metrics = entry["metrics_vs_reference"]
        extra = f", vs reference: MAE {metrics['mae']:.3f}, r {metrics['pearson_r']:.3f}" if metrics else ""
        total = sum(v for k, v in entry["timings_s"].items() if not k.endswith("total"))
        age = f" (age {entry['age']:g})" if entry.get("age") is not None else ""
        familiar = familiarity_words(entry.get("familiarity") or {})
        say(
            f"{sid}{age}: {entry['outputs']['pet_native']} ({total:.1f} s{extra}){familiar}",
            event="subject_done",
            subject=sid,
            age=entry.get("age"),
            outputs=entry["outputs"],
        )
    if "age_series" in record:
        files = record["age_series"]["files"]
        say(f"{sid}: age curve {files['png']} and {files['csv']}", event="age_curve", subject=sid, files=files)
