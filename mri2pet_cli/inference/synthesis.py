"""One subject from raw T1 to synthetic PET files: preprocess, model, back to the patient, reports, provenance."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from mri2pet_cli import __version__
from mri2pet_cli.completion import finished_record, input_sha256, may_replace, output_hashes
from mri2pet_cli.console import stage
from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.inference.outputs import age_series_paths, output_paths
from mri2pet_cli.io import check_writable, open_volume, save_volume, write_text_atomic
from mri2pet_cli.reporting.age_curve import _write_age_curve

AGE_LIMITS = (30.0, 100.0)


@dataclass(frozen=True)
class SynthesisOptions:
    model: str = "unet"
    weights: str | None = None
    device: str = "auto"
    precision: str = "fp32"
    skull_strip: str = "deepbet"
    qc: str = "strict"  # warn: write the outputs of a T1 that fails a registration check, with the failures
    samples: int = 1
    temperature: float | None = None  # None: 0 for one sample (point estimate); draws at 1 for the std of several
    seed: int = 0
    overwrite: bool = False
    scan_age: float | None = None  # the T1's age when the PET is wanted for another age (age-only effect)
    dicom_out: bool = False  # also the native-space PET as a DICOM series
    ref_region: str = "cerebellum"  # SUVR reference: cerebellum (what the models learned), pons, whole-brain
    calibration: str | None = None  # a lab's `mri2pet calibrate` file; default: the one beside the weights


def check_age(age: float | None, model: str, subject: str) -> None:
    from mri2pet_cli.models.registry import get_model_info

    info = get_model_info(model)
    if age is None and info.age_required:
        raise Mri2PetError(f"{subject}: model {model} needs the subject's age", hint="pass --age YEARS")
    if age is not None and not AGE_LIMITS[0] <= age <= AGE_LIMITS[1]:
        raise Mri2PetError(
            f"{subject}: age {age:g} is outside {AGE_LIMITS[0]:g}-{AGE_LIMITS[1]:g} years",
            hint="the models were trained on adults aged 55-92",
        )


@lru_cache(maxsize=4)
def cached_model(name: str, weights: str | None):
    """Load (and hash-check) a model once per process."""
    from mri2pet_cli.console import say
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.weights import below_baseline

    loaded = load_model(name, weights)
    if warning := below_baseline(loaded[1]):
        say(f"warning: {name}: {warning}", event="warning", model=name)
    return loaded


def synthesis_request(subject, options: SynthesisOptions, age: float | None, card: dict) -> dict:
    """What one PET answers: rerunning a batch skips a subject whose record holds the same request."""
    return {
        "version": __version__,
        "t1_sha256": input_sha256(subject.t1),
        "reference_pet_sha256": None if subject.pet is None else input_sha256(subject.pet),
        "model": options.model,
        "weights_sha256": card.get("sha256"),
        "age": age,
        "scan_age": options.scan_age,
        "samples": options.samples,
        "temperature": resolved_temperature(options),
        "seed": options.seed,
        "precision": options.precision,
        "skull_strip": options.skull_strip,
        "qc": options.qc,
        "dicom_out": options.dicom_out,
        "ref_region": options.ref_region,
        "calibration_sha256": None if options.calibration is None else input_sha256(options.calibration),
    }


def wanted_output(key: str, options: SynthesisOptions) -> bool:
    """Whether ``output_paths``' ``key`` is written for these options (std maps: samples; DICOM: asked)."""
    if key.startswith("std"):
        return options.samples > 1
    return key != "dicom_dir" or options.dicom_out


def finished_before(subject, out_dir: Path, options: SynthesisOptions, series: list[float] | None, card: dict):
    """(the last record, where every PET of this request is finished and verified; whether the subject's
    existing files may be written over without --overwrite)."""
    sid = subject.subject_id
    ages = series or [subject.age]
    records = [output_paths(out_dir, sid, options.model, a if series else None)["record"] for a in ages]
    requests = [synthesis_request(subject, options, a, card) for a in ages]
    finished = [finished_record(r, q) for r, q in zip(records, requests)]
    curve = not series or all(p.exists() for p in age_series_paths(out_dir, sid, options.model).values())
    replaceable = all(may_replace(r, q, options.overwrite) for r, q in zip(records, requests))
    return (finished[-1] if all(finished) and curve else None), replaceable


def reused_preprocessing(subject, options: SynthesisOptions):
    """This subject's preprocessing from its derivatives folder, where `preprocess` (or an earlier run)
    finished it for the same inputs (sha256), options and tool version; None: preprocess now."""
    from mri2pet_cli.preprocessing.storage import load_preprocessed, output_paths, preprocessing_request

    folder = subject.preprocessed
    if folder is None:
        return None
    request = preprocessing_request(subject, options.skull_strip, options.qc)
    if finished_record(output_paths(folder, subject.subject_id)["json"], request) is None:
        return None
    stage(f"preprocessing reused from {folder}")
    pre = load_preprocessed(folder, subject.subject_id)
    pre.timings = {"reused": 0.0}
    pre.steps = [*pre.steps, {"step": "reused", "from": str(Path(folder).resolve())}]
    return pre


def resolved_temperature(options: SynthesisOptions) -> float:
    if options.temperature is not None:
        return options.temperature
    return 0.0 if options.samples == 1 else 1.0


def synthesize(subject, out_dir: str | Path, options: SynthesisOptions, ages: list[float] | None = None) -> dict:
    """Raw T1 -> preprocess -> model -> PET (SUVR) in native and MNI space, ROI CSV, report, provenance.

    ``subject`` is a :class:`~mri2pet_cli.preprocessing.inputs.SubjectInput` (its ``pet`` is used as the reference).
    ``ages`` (two or more, age-conditioned models): one PET per age from one preprocessing, and a plot
    of mean SUVR against age in key AAL regions. Returns the record of the last PET written, with
    ``age_series`` added for a series.
    """
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.pipeline import preprocess
    from mri2pet_cli.preprocessing.storage import save_refusal_qc

    sid = subject.subject_id
    series = [float(a) for a in ages] if ages and len(ages) > 1 else None
    out_dir = Path(out_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    loaded = cached_model(options.model, options.weights)
    timings["load_model"] = time.perf_counter() - clock
    for age in series or [subject.age]:
        check_age(age, options.model, sid)
    done, replaceable = finished_before(subject, out_dir, options, series, loaded[1])
    if done is not None and not options.overwrite:
        return done | {"skipped": True}
    if replaceable:  # a killed run's files, or this same request's: redo them
        options = replace(options, overwrite=True)
    for age in series or [subject.age]:
        tag_age = age if series else None
        for key, path in output_paths(out_dir, sid, options.model, tag_age).items():
            if wanted_output(key, options):
                check_writable(path, options.overwrite)
    if series:
        from mri2pet_cli.models.registry import get_model_info

        if get_model_info(options.model).conditioning != "age":
            raise Mri2PetError(f"model {options.model} does not use age: an age series needs an age-conditioned model")
        for path in age_series_paths(out_dir, sid, options.model).values():
            check_writable(path, options.overwrite)
    if options.scan_age is not None and not loaded[0].supports_scan_age():
        raise Mri2PetError(
            f"{loaded[2].weights}: model {options.model} has no measured age-only effect, so --scan-age cannot "
            "be used with it (dual-glow v4 weights have one)"
        )
    from mri2pet_cli.site.calibration import calibration_for
    from mri2pet_cli.site.familiarity import familiarity_path_for, load_reference

    calibration = calibration_for(loaded[2], loaded[1], options.calibration)
    reference = load_reference(familiarity_path_for(Path(loaded[2].weights)))
    reused = reused_preprocessing(subject, options)
    try:
        pre = reused or preprocess(subject.t1, pet_path=subject.pet, skull_strip=options.skull_strip, qc=options.qc)
    except Mri2PetError as exc:
        exc.message = exc.message if sid in exc.message else f"{sid}: {exc.message}"
        save_refusal_qc(exc, out_dir, sid)
        raise
    timings.update({f"preprocess.{k}": v for k, v in pre.timings.items()})
    native_img = open_volume(subject.t1, what="T1")  # its header and affine go on the native-space PET
    site = site_fields(pre, native_img, calibration, reference, options.ref_region)  # the same for every age
    device = resolve_device(options.device)
    if not series:
        return _synthesize_one(
            subject, pre, native_img, loaded, site, out_dir, options, device, subject.age, None, timings
        )
    records, means = [], []
    for age in series:
        record = _synthesize_one(
            subject, pre, native_img, loaded, site, out_dir, options, device, age, age, dict(timings)
        )
        records.append(record)
        means.append(record["key_regions_suvr"])
    paths = age_series_paths(out_dir, sid, options.model)
    title = f"{sid}: synthetic PET against age ({options.model})"
    if options.scan_age is not None:
        title += f"; T1 at {options.scan_age:g}, age-only change"
    _write_age_curve(series, means, paths, title, options.overwrite)
    result = dict(records[-1])
    result["age_series"] = {
        "ages": series,
        "key_regions_suvr": means,
        "files": {k: str(v) for k, v in paths.items()},
        "records": records,
    }
    return result


def _interval_note(intervals: dict | None) -> str:
    if intervals is None:
        return "none: the model card has no per-region calibration for these samples and temperature"
    return "interval90_suvr in the region table: +- half-width of a 90 % interval, per-region factors from the card"


def site_fields(
    pre, native_img, calibration: dict | None, reference: dict | None, region: str
) -> tuple[dict | None, dict, dict]:
    """(AAL half-widths for the region table, key-region half-widths, the record's ``calibration`` and
    ``familiarity``) from the calibration and familiarity reference found for these weights."""
    from mri2pet_cli.site.familiarity import familiarity, subject_features

    fields: dict = {}
    if reference is not None:
        features, acquisition = subject_features(pre, native_img)
        fields["familiarity"] = familiarity(features, reference, acquisition)
    else:
        fields["familiarity"] = {"verdict": None, "note": "no familiarity reference ships with these weights"}
    if calibration is None:
        fields["calibration"] = {"file": None, "note": "none: no calibration for these weights (mri2pet calibrate)"}
        return None, {}, fields
    widths = calibration["half_width_suvr"]
    fields["calibration"] = {
        "file": calibration["file"],
        "coverage": calibration["coverage"],
        "n_subjects": calibration["n_subjects"],
        "data": calibration["data"],
        "made": calibration["created"],
    }
    if region != "cerebellum":
        fields["calibration"]["note"] = f"not applied: it is in cerebellar SUVR and this PET uses the {region}"
        return None, {}, fields
    regional = {int(k): float(v) for k, v in widths.items() if k.isdigit()}
    return regional, {k: float(v) for k, v in widths.items() if not k.isdigit()}, fields


def _synthesize_one(subject, pre, native_img, loaded, site, out_dir, options, device, age, tag_age, timings) -> dict:
    from mri2pet_cli.evaluation.metrics import image_metrics
    from mri2pet_cli.models.runtime import predict
    from mri2pet_cli.preprocessing.normalise import REFERENCE_REGIONS, model_output_to_suvr, to_suvr
    from mri2pet_cli.preprocessing.pipeline import grid_to_native
    from mri2pet_cli.preprocessing.qc import registration_check_table
    from mri2pet_cli.reporting.key_regions import key_region_means, key_region_rows
    from mri2pet_cli.reporting.report import montage, roi_table, synthesis_panels, write_html, write_roi_csv
    from mri2pet_cli.reporting.uncertainty import calibrated_std, region_intervals
    from mri2pet_cli.space.atlas import template_maps

    model, card, files = loaded
    sid = subject.subject_id
    paths = output_paths(out_dir, sid, options.model, tag_age)
    sampled = options.samples > 1
    temperature = resolved_temperature(options)
    stage("model" + (f" (age {age:g})" if tag_age is not None else ""))
    clock = time.perf_counter()
    mean, std = predict(
        model,
        pre.t1[None],
        pre.mask[None].astype(np.float32),
        None if age is None else np.array([age], dtype=np.float32),
        scan_age=None if options.scan_age is None else np.array([options.scan_age], dtype=np.float32),
        device=device,
        precision=options.precision,
        samples=options.samples,
        temperature=temperature,
        seed=options.seed,
    )
    region = options.ref_region
    pet, level = model_output_to_suvr(mean[0], pre.grid, pre.mask, region)
    reference_pet = pre.pet  # preprocessing gives cerebellar SUVR; another reference divides again
    if reference_pet is not None and region != "cerebellum":
        reference_pet = to_suvr(reference_pet, pre.grid, pre.mask, region)[0]
    labels = template_maps(pre.grid).aal
    std_grid, std_note, intervals = None, "", None
    if std is not None:
        scaled, std_note = calibrated_std(std[0], card, options.samples, temperature)
        std_grid = np.where(pre.mask, scaled / level, 0.0).astype(np.float32)
        intervals = region_intervals(std[0] / level, labels, pre.mask, card, options.samples, temperature)
    timings["model"] = time.perf_counter() - clock

    stage("writing")
    clock = time.perf_counter()
    grid_affine = pre.grid.affine
    what = f"mri2pet {__version__} synthetic FDG-PET SUVR, model {options.model}"
    write = {"overwrite": options.overwrite}
    native_pet = grid_to_native(pet, pre)
    save_volume(native_pet, paths["pet_native"], like=native_img, description=what, **write)
    dicom_files = []
    if options.dicom_out:
        from mri2pet_cli.inference.dicom_out import write_pet_series
        from mri2pet_cli.io import image_like

        request = synthesis_request(subject, options, age, card)
        dicom_files = write_pet_series(
            image_like(native_pet, native_img),
            paths["dicom_dir"],
            subject_id=sid,
            model=options.model,
            seed_text=json.dumps(request, sort_keys=True),
            dicom=subject.dicom,
            **write,
        )
    save_volume(pet, paths["pet_mni"], affine=grid_affine, description=what, **write)
    if sampled and std_grid is not None:
        what_std = f"mri2pet {__version__} sample std SUVR, model {options.model}"
        save_volume(grid_to_native(std_grid, pre), paths["std_native"], like=native_img, description=what_std, **write)
        save_volume(std_grid, paths["std_mni"], affine=grid_affine, description=what_std, **write)
    conformal, key_widths, site_record = site
    intervals = conformal if conformal is not None else intervals
    native_per_mni = 1.0 / abs(float(np.linalg.det(pre.native_to_mni[:3, :3])))
    rows = roi_table(pet, labels, pre.mask, pre.grid, native_per_mni, intervals)
    write_roi_csv(rows, paths["roi_csv"], overwrite=options.overwrite)
    metrics = image_metrics(reference_pet, pet, pre.mask) if reference_pet is not None else None
    title = f"{sid}: synthetic FDG-PET ({options.model})" + (f", age {age:g}" if age is not None else "")
    if options.scan_age is not None:
        title += f" (T1 at {options.scan_age:g}, age-only change)"
    note = (
        f"PET shown: the point estimate (T = 0); std of {options.samples} samples at temperature {temperature:g}; "
        f"{std_note}."
        if sampled
        else ""
    )
    panels = synthesis_panels(pre.t1, pet, pre.mask, reference_pet, std_grid)
    reference_name = REFERENCE_REGIONS[region].split(" (")[0]
    montage(panels, pre.grid, title, paths["report_png"], note=note, reference=reference_name)
    timings["write"] = time.perf_counter() - clock
    key_means = key_region_means(pet, labels, pre.mask)
    record = {
        "tool": "mri2pet",
        "version": __version__,
        "created": time.strftime("%Y-%m-%d %H:%M"),
        "subject_id": sid,
        "inputs": {
            "t1": str(Path(subject.t1).resolve()),
            "reference_pet": None if subject.pet is None else str(Path(subject.pet).resolve()),
            **({"dicom": subject.dicom} if subject.dicom else {}),
        },
        "age": age,
        **({"scan_age": options.scan_age} if options.scan_age is not None else {}),
        "model": {
            "name": options.model,
            "weights": str(Path(files.weights).resolve()),
            "sha256": card.get("sha256"),
            "card_version": card.get("version"),
            "training_data": card.get("training_data", {}).get("kind"),
        },
        "options": {
            "samples": options.samples,
            "temperature": temperature,
            **({"std": std_note} if sampled else {}),
            **({"region_intervals": _interval_note(intervals)} if sampled and conformal is None else {}),
            **({"region_intervals": "interval90_suvr: split-conformal half-widths (calibration)"} if conformal else {}),
            "seed": options.seed,
            "precision": options.precision,
            "skull_strip": options.skull_strip,
            "qc": options.qc,
        },
        "device": str(device),
        "platform": platform.platform(),
        "units": f"SUVR ({reference_name} reference, re-normalised after the model)",
        "reference_region": {"name": region, "definition": REFERENCE_REGIONS[region]},
        "roi_volumes": "volume_mni_ml on the MNI model grid; volume_native_ml scaled back by the registration",
        "preprocessing_checks": pre.checks,
        "preprocessing_reused_from": next((s["from"] for s in pre.steps if s.get("step") == "reused"), None),
        "metrics_vs_reference": metrics,
        "key_regions_suvr": key_means,
        # the card's CN distribution is in cerebellar SUVR: z-scores only against the same reference
        "key_regions": key_region_rows(
            key_means,
            card if region == "cerebellum" else {},
            age=age,
            half_widths=key_widths,
            familiarity=site_record["familiarity"],
        ),
        **site_record,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "outputs": {k: str(v.resolve()) for k, v in paths.items() if wanted_output(k, options)},
        "request": synthesis_request(subject, options, age, card),
    }
    write_html(
        paths["report_html"],
        title=title,
        png=paths["report_png"],
        roi_rows=rows,
        record=record,
        check_rows=registration_check_table(pre.checks),
        key_rows=record["key_regions"],
        overwrite=options.overwrite,
    )
    written = [Path(v) for k, v in record["outputs"].items() if k not in ("record", "dicom_dir")] + dicom_files
    record["output_sha256"] = output_hashes(written, paths["record"].parent)  # the record is written last
    write_text_atomic(json.dumps(record, indent=2, default=float), paths["record"], overwrite=options.overwrite)
    return record
