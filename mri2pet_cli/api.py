"""What the CLI and users' scripts call: synthesize() and evaluate()."""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import __version__
from .console import stage
from .errors import Mri2PetError
from .io import check_writable, open_volume, save_volume, write_text_atomic

AGE_LIMITS = (30.0, 100.0)
AGE_CURVE_SUVR = (0.6, 1.6)  # the age-curve y axis, fixed


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


def check_age(age: float | None, model: str, subject: str) -> None:
    from .models.registry import get_model_info

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
    from .console import say
    from .weights import below_baseline, load_model

    loaded = load_model(name, weights)
    if warning := below_baseline(loaded[1]):
        say(f"warning: {name}: {warning}", event="warning", model=name)
    return loaded


def resolved_temperature(options: SynthesisOptions) -> float:
    if options.temperature is not None:
        return options.temperature
    return 0.0 if options.samples == 1 else 1.0


def bids_label(text: str) -> str:
    """A BIDS label: letters and digits only ('dual-glow' -> 'dualglow', 72.5 -> '72p5')."""
    return "".join(c for c in str(text).replace(".", "p") if c.isalnum())


def output_paths(out_dir: Path, subject_id: str, model: str, age: float | None = None) -> dict[str, Path]:
    """Files of one synthesis (BIDS derivative names); with an age series each age gets its own (``_age-70``).

    The std map of a sampling model carries ``stat-std`` (as in BIDS statistical derivatives).
    """
    folder = Path(out_dir) / subject_id
    tag = "" if age is None else f"_age-{bids_label(f'{age:g}')}"
    desc = f"desc-{bids_label(model)}"
    stem = f"{subject_id}{tag}_{desc}"
    return {
        "pet_native": folder / f"{subject_id}{tag}_space-T1w_{desc}_pet.nii.gz",
        "pet_mni": folder / f"{subject_id}{tag}_space-MNI152_{desc}_pet.nii.gz",
        "std_native": folder / f"{subject_id}{tag}_space-T1w_{desc}_stat-std_pet.nii.gz",
        "std_mni": folder / f"{subject_id}{tag}_space-MNI152_{desc}_stat-std_pet.nii.gz",
        "roi_csv": folder / f"{stem}_roi.csv",
        "report_png": folder / f"{stem}_report.png",
        "report_html": folder / f"{stem}_report.html",
        "record": folder / f"{stem}_synthesis.json",
    }


def age_series_paths(out_dir: Path, subject_id: str, model: str) -> dict[str, Path]:
    folder = Path(out_dir) / subject_id
    return {
        "csv": folder / f"{subject_id}_desc-{bids_label(model)}_agecurve.csv",
        "png": folder / f"{subject_id}_desc-{bids_label(model)}_agecurve.png",
    }


def synthesize(subject, out_dir: str | Path, options: SynthesisOptions, ages: list[float] | None = None) -> dict:
    """Raw T1 -> preprocess -> model -> PET (SUVR) in native and MNI space, ROI CSV, report, provenance.

    ``subject`` is a :class:`~mri2pet_cli.subjects.SubjectInput` (its ``pet`` is used as the reference).
    ``ages`` (two or more, age-conditioned models): one PET per age from one preprocessing, and a plot
    of mean SUVR against age in key AAL regions. Returns the record of the last PET written, with
    ``age_series`` added for a series.
    """
    from .evaluation import resolve_device
    from .preprocess import preprocess, save_refusal_qc

    sid = subject.subject_id
    series = [float(a) for a in ages] if ages and len(ages) > 1 else None
    out_dir = Path(out_dir)
    for age in series or [subject.age]:
        check_age(age, options.model, sid)
        tag_age = age if series else None
        for key, path in output_paths(out_dir, sid, options.model, tag_age).items():
            if options.samples > 1 or not key.startswith("std"):
                check_writable(path, options.overwrite)
    if series:
        from .models.registry import get_model_info

        if get_model_info(options.model).conditioning != "age":
            raise Mri2PetError(f"model {options.model} does not use age: an age series needs an age-conditioned model")
        for path in age_series_paths(out_dir, sid, options.model).values():
            check_writable(path, options.overwrite)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    loaded = cached_model(options.model, options.weights)
    timings["load_model"] = time.perf_counter() - clock
    if options.scan_age is not None and not loaded[0].supports_scan_age():
        raise Mri2PetError(
            f"{loaded[2].weights}: model {options.model} has no measured age-only effect, so --scan-age cannot "
            "be used with it (dual-glow v4 weights have one)"
        )
    try:
        pre = preprocess(subject.t1, pet_path=subject.pet, skull_strip=options.skull_strip, qc=options.qc)
    except Mri2PetError as exc:
        exc.message = exc.message if sid in exc.message else f"{sid}: {exc.message}"
        save_refusal_qc(exc, out_dir, sid)
        raise
    timings.update({f"preprocess.{k}": v for k, v in pre.timings.items()})
    device = resolve_device(options.device)
    native_img = open_volume(subject.t1, what="T1")  # its header and affine go on the native-space PET
    if not series:
        return _synthesize_one(subject, pre, native_img, loaded, out_dir, options, device, subject.age, None, timings)
    records, means = [], []
    for age in series:
        record = _synthesize_one(subject, pre, native_img, loaded, out_dir, options, device, age, age, dict(timings))
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


def _synthesize_one(subject, pre, native_img, loaded, out_dir, options, device, age, tag_age, timings) -> dict:
    from .atlas import template_maps
    from .evaluation import predict
    from .key_regions import key_region_means, key_region_rows
    from .metrics import image_metrics
    from .preprocess import grid_to_native, model_output_to_suvr, registration_check_table
    from .report import montage, roi_table, synthesis_panels, write_html, write_roi_csv
    from .uncertainty import calibrated_std, region_intervals

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
    pet, level = model_output_to_suvr(mean[0], pre.grid, pre.mask)
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
    save_volume(grid_to_native(pet, pre), paths["pet_native"], like=native_img, description=what, **write)
    save_volume(pet, paths["pet_mni"], affine=grid_affine, description=what, **write)
    if sampled and std_grid is not None:
        what_std = f"mri2pet {__version__} sample std SUVR, model {options.model}"
        save_volume(grid_to_native(std_grid, pre), paths["std_native"], like=native_img, description=what_std, **write)
        save_volume(std_grid, paths["std_mni"], affine=grid_affine, description=what_std, **write)
    native_per_mni = 1.0 / abs(float(np.linalg.det(pre.native_to_mni[:3, :3])))
    rows = roi_table(pet, labels, pre.mask, pre.grid, native_per_mni, intervals)
    write_roi_csv(rows, paths["roi_csv"], overwrite=options.overwrite)
    metrics = image_metrics(pre.pet, pet, pre.mask) if pre.pet is not None else None
    title = f"{sid}: synthetic FDG-PET ({options.model})" + (f", age {age:g}" if age is not None else "")
    if options.scan_age is not None:
        title += f" (T1 at {options.scan_age:g}, age-only change)"
    note = (
        f"PET shown: the point estimate (T = 0); std of {options.samples} samples at temperature {temperature:g}; "
        f"{std_note}."
        if sampled
        else ""
    )
    panels = synthesis_panels(pre.t1, pet, pre.mask, pre.pet, std_grid)
    montage(panels, pre.grid, title, paths["report_png"], note=note)
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
            **({"region_intervals": _interval_note(intervals)} if sampled else {}),
            "seed": options.seed,
            "precision": options.precision,
            "skull_strip": options.skull_strip,
            "qc": options.qc,
        },
        "device": str(device),
        "platform": platform.platform(),
        "units": "SUVR (cerebellar cortex reference, re-normalised after the model)",
        "roi_volumes": "volume_mni_ml on the MNI model grid; volume_native_ml scaled back by the registration",
        "preprocessing_checks": pre.checks,
        "metrics_vs_reference": metrics,
        "key_regions_suvr": key_means,
        "key_regions": key_region_rows(key_means, card),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "outputs": {k: str(v.resolve()) for k, v in paths.items() if sampled or not k.startswith("std")},
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
    write_text_atomic(json.dumps(record, indent=2, default=float), paths["record"], overwrite=options.overwrite)
    return record


def _write_age_curve(ages: list[float], means: list[dict], paths: dict[str, Path], title: str, overwrite: bool):
    from .figures import pyplot, save_figure

    regions = list(means[0])
    lines = ["age," + ",".join(r.replace(" ", "_") for r in regions)]
    lines += [f"{a:g}," + ",".join(f"{m[r]:.4f}" for r in regions) for a, m in zip(ages, means)]
    write_text_atomic("\n".join(lines) + "\n", paths["csv"], overwrite=overwrite)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    for region in regions:
        ax.plot(ages, [m[region] for m in means], marker="o", label=region)
    values = [m[r] for m in means for r in regions]
    low, high = AGE_CURVE_SUVR
    ax.set_ylim(min(low, min(values) - 0.05), max(high, max(values) + 0.05))  # fixed: small changes look small
    ax.set_xlabel("age (years)")
    ax.set_ylabel("mean SUVR (cerebellar cortex = 1)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.text(0.01, -0.02, "Research use only. Same T1, only the age input changes.", fontsize=7)
    save_figure(fig, paths["png"])


def same_cohort(data: Path, card: dict) -> bool:
    """Whether ``data`` was simulated with the seed and version of the model's training cohort.

    Only then do the card's split ids name the same subjects (a new seed reuses the ids sub-001, ...
    for different people).
    """
    trained_on = card.get("training_data", {}).get("simulation") or {}
    path = Path(data) / "dataset_description.json"
    if not trained_on or not path.exists():
        return False
    here = json.loads(path.read_text()).get("mri2pet_simulation") or {}
    # a cohort written before versions existed is version 1
    return here.get("seed") == trained_on.get("seed") and here.get("version", 1) == trained_on.get("version", 1)


def choose_evaluation_subjects(
    available: list[str],
    card: dict,
    training_cohort: bool,
    subjects: list[str] | None,
    train_subjects: list[str] | None,
) -> dict:
    """Which subjects are scored, which are asked for but missing, and where the baselines come from."""
    split = card.get("training_data", {}).get("split", {})
    if subjects is not None:
        wanted, source = list(dict.fromkeys(subjects)), "the subjects listed"
    elif training_cohort:
        wanted, source = split.get("test", []), "the model card's test split (this is its training cohort)"
    else:
        wanted, source = sorted(available), "every paired subject (not the model's training cohort)"
    scored = [s for s in wanted if s in available]
    missing = [s for s in wanted if s not in available]
    if train_subjects is not None:
        candidates, named = list(dict.fromkeys(train_subjects)), "--train-subjects"
    elif training_cohort and subjects is None:
        candidates, named = split.get("train", []), "the card's training split"
    else:
        candidates, named = [], ""
    train = [s for s in candidates if s in available and s not in scored] or None
    if train:
        baseline = f"{len(train)} subjects of {named}"
    elif len(scored) > 1:
        baseline = "leave-one-out over the scored subjects (each scored against the others)"
    else:
        baseline = "none (needs two scored subjects or --train-subjects)"
    return {"scored": scored, "missing": missing, "train": train, "subject_source": source, "baseline": baseline}


def leave_one_out(baselines: dict, test) -> dict[str, list[dict]]:
    """Each baseline for each subject from the other subjects of the same set.

    The baselines read the training PETs only, so only those are copied (once per subject, not the
    T1s and masks as well: 0.6 GB per subject of a 150-subject cohort).
    """
    from .dataset import Arrays
    from .training import subset

    rows: dict[str, list[dict]] = {name: [] for name in baselines}
    for i, sid in enumerate(test.ids):
        keep = [j for j in range(len(test.ids)) if j != i]
        ids = [test.ids[j] for j in keep]
        others = Arrays(ids, test.t1[:0], test.mask[:0], test.pet[keep], test.age[keep])
        one = subset(test, [sid])
        for name, baseline in baselines.items():
            rows[name] += baseline(others, one)
    return rows


def evaluate(
    data: str | Path,
    models: list[str],
    out_dir: str | Path,
    *,
    subjects: list[str] | None = None,
    train_subjects: list[str] | None = None,
    weights: dict[str, str] | None = None,
    device: str = "auto",
    overwrite: bool = False,
    jobs: int = 1,
    study: bool = True,
    study_settings=None,
) -> dict:
    """Score models and both baselines on any paired cohort; with ``study``, the seeds' study too.

    Default subjects: the first model's test split on its own training cohort, every paired subject
    elsewhere. Baselines come from ``train_subjects``, the card's training split (training cohort), or
    leave-one-out over the scored subjects. Subjects asked for but absent are listed, not fatal.
    ``models`` may be ``["all"]``: every registered model with shipped weights. Synthetic PETs are
    cached in ``<data>/derivatives/mri2pet-synth`` and reused by later runs.
    """
    from .console import tracked
    from .dataset import load_arrays, prepare_dataset, record_grid
    from .evaluation import mean_training_baseline, population_baseline, resolve_device, score, summarize
    from .evaluation.study import timed
    from .evaluation.study_report import study_files
    from .weights import load_model

    out_dir = Path(out_dir)
    files = {"csv": out_dir / "evaluation.csv", "json": out_dir / "evaluation.json", "png": out_dir / "evaluation.png"}
    for path in [*files.values(), *(study_files(out_dir).values() if study else ())]:
        check_writable(path, overwrite)
    models = expand_model_names(models)
    loaded = {name: load_model(name, (weights or {}).get(name)) for name in models}
    dev = resolve_device(device)
    records, failed = prepare_dataset(data, jobs=jobs)
    by_id = {r.subject_id: r for r in records}
    card = loaded[models[0]][1]
    choice = choose_evaluation_subjects(list(by_id), card, same_cohort(Path(data), card), subjects, train_subjects)
    if not choice["scored"]:
        raise Mri2PetError(
            f"{data}: none of the {len(choice['missing'])} subjects asked for has both a T1 and a PET here",
            hint=f"first missing: {', '.join(choice['missing'][:3])}",
        )
    test = load_arrays([by_id[s] for s in choice["scored"]])
    per_subject: dict[str, list[dict]] = {}
    timings: dict[str, float] = {}
    synthetic = synthesize_models(loaded, test, by_id[test.ids[0]].preproc_dir, dev, timings=timings)
    for name in loaded:
        with tracked(f"image scores {name}", len(test.ids)) as advance, timed(timings, "image scores"):
            per_subject[name] = score(synthetic[name], test, progress=advance)
    baselines = {"baseline: mean training PET": mean_training_baseline, "baseline: population": population_baseline}
    with timed(timings, "baselines"):
        if choice["train"]:
            train = load_arrays([by_id[s] for s in choice["train"]])
            per_subject |= {name: baseline(train, test) for name, baseline in baselines.items()}
        elif len(test.ids) > 1:
            per_subject |= leave_one_out(baselines, test)
    summary = {name: summarize(rows) for name, rows in per_subject.items()}
    lines = ["model,subject,mae,mse,psnr,ssim,ms_ssim,pearson_r,data_range"]
    for name, rows in per_subject.items():
        lines += [
            f"{name},{r['subject']},{r['mae']:.5f},{r['mse']:.6f},{r['psnr']:.3f},{r['ssim']:.4f},"
            f"{r['ms_ssim']:.4f},{r['pearson_r']:.4f},{r['data_range']:.4f}"
            for r in rows
        ]
    write_text_atomic("\n".join(lines) + "\n", files["csv"], overwrite=overwrite)
    result = {
        "data": str(Path(data).resolve()),
        "n_test": len(test.ids),
        "test_subjects": test.ids,
        "subject_source": choice["subject_source"],
        "missing_subjects": choice["missing"],
        "preprocessing_failures": failed,
        "baseline_source": choice["baseline"],
        "n_train_for_baselines": len(choice["train"] or []),
        "mask": "brain mask on the model grid",
        "psnr_data_range": "range of the reference PET (SUVR) inside the mask, per subject",
        "summary": summary,
        "timings_s": timings,
    }
    write_text_atomic(json.dumps(result, indent=2), files["json"], overwrite=overwrite)
    _boxplot(per_subject, files["png"], f"{len(test.ids)} subjects of {Path(data).name}")
    result["files"] = {k: str(v) for k, v in files.items()}
    if study:
        t1_only = _t1_only_subjects(data, loaded, dev, jobs) if not same_cohort(Path(data), card) else None
        diagnoses = [by_id[s].diagnosis for s in test.ids]
        grid = record_grid(by_id[test.ids[0]])
        study_inputs = (grid, test, diagnoses, synthetic, per_subject, loaded, summary)
        result["study"] = _run_study(data, *study_inputs, dev, study_settings, t1_only)
        result["files"] |= write_study_files(result["study"], out_dir, test, overwrite)
    return result


def fill_caches(
    data: str | Path,
    models: list[str],
    out_dir: str | Path,
    shard,
    *,
    subjects: list[str] | None = None,
    device: str = "auto",
    jobs: int = 1,
) -> dict:
    """``evaluate --shard K/N``: preprocess and synthesize the shard's subjects into the cohort's caches.

    The scores and the study need every subject at once: run ``evaluate`` without ``--shard`` after the
    shards; it finds everything cached. Writes the shard manifest to ``out_dir``.
    """
    from .dataset import load_arrays, paired_subject_ids, prepare_dataset
    from .evaluation import resolve_device
    from .shards import select, write_manifest
    from .weights import load_model

    models = expand_model_names(models)
    loaded = {name: load_model(name) for name in models}
    available = paired_subject_ids(data)
    wanted = [s for s in available if subjects is None or s in subjects]
    chosen = select(wanted, key=str, shard=shard)
    records, failed = prepare_dataset(data, jobs=jobs, only=chosen)
    dev = resolve_device(device)
    if records:
        synthesize_models(loaded, load_arrays(records), records[0].preproc_dir, dev, label=f" (shard {shard.label})")
    done = {r.subject_id: {} for r in records}
    manifest = write_manifest(Path(out_dir), shard, f"evaluate --model {','.join(models)}", chosen, done, failed)
    return {"subjects": chosen, "done": sorted(done), "failed": failed, "manifest": str(manifest)}


def expand_model_names(models: list[str]) -> list[str]:
    """``all`` -> every registered model whose weights ship; other names as given (checked on loading)."""
    from .models.registry import model_names
    from .weights import find_weights

    if not models:
        raise Mri2PetError("--model names no model", hint="e.g. --model unet,dual-glow or --model all")
    if models == ["all"]:
        shipped = []
        for name in model_names():
            try:
                find_weights(name, None)
            except Mri2PetError:
                continue
            shipped.append(name)
        return shipped
    return models


def model_ages(name: str, arrays) -> np.ndarray:
    """The ages a model is given: the subjects' own for age-conditioned models, none for the others."""
    from .models.registry import get_model_info

    if get_model_info(name).conditioning == "age":
        return arrays.age
    return np.full(len(arrays.ids), np.nan, np.float32)


def synthesize_models(
    loaded: dict, arrays, preproc_dir: Path, device, *, label: str = "", timings: dict[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Every loaded model's synthetic PETs of ``arrays``, through the cohort's synthesis cache."""
    from .console import tracked
    from .evaluation.cache import cache_root, cached_predict
    from .evaluation.study import timed

    root, spent = cache_root(preproc_dir), {} if timings is None else timings
    synthetic = {}
    for name, (model, card, _files) in loaded.items():
        with tracked(f"synthesis {name}{label}", len(arrays.ids)) as advance, timed(spent, f"synthesis {name}"):
            ages = model_ages(name, arrays)
            synthetic[name] = cached_predict(model, card, arrays, root, ages=ages, device=device, progress=advance)
    return synthetic


def _t1_only_subjects(data, loaded, device, jobs: int):
    """The cohort's subjects with a T1 and no PET, preprocessed, with each model's synthetic PET (or None)."""
    from .dataset import load_arrays, prepare_dataset

    records, _failed = prepare_dataset(data, jobs=jobs, t1_only=True)
    if not records:
        return None
    arrays = load_arrays(records)
    synthetic = synthesize_models(loaded, arrays, records[0].preproc_dir, device, label=" (subjects without PET)")
    return arrays, [r.diagnosis for r in records], synthetic


def _run_study(data, grid, test, diagnoses, synthetic, per_subject, loaded, summary, device, settings, t1_only) -> dict:
    from .atlas import template_maps
    from .evaluation.classification import normalise_diagnosis
    from .evaluation.study import StudyInputs, StudySettings, run_study
    from .evaluation.study_report import targets
    from .models.registry import get_model_info

    labels = template_maps(grid).aal
    truth = Path(data) / "derivatives" / "truth"
    inputs = StudyInputs(
        arrays=test,
        grid=grid,
        labels=labels,
        diagnoses=[normalise_diagnosis(d) for d in diagnoses],
        synthetic=synthetic,
        image_scores=per_subject,
        age_models={n: m for n, (m, _c, _f) in loaded.items() if get_model_info(n).conditioning == "age"},
        simulated_cohort=Path(data) if truth.is_dir() else None,
    )
    if t1_only is not None:
        inputs.t1_only, inputs.t1_only_synthetic = t1_only[0], t1_only[2]
        inputs.t1_only_diagnoses = [normalise_diagnosis(d) for d in t1_only[1]]
    result = run_study(inputs, settings or StudySettings(), device)
    best = min(synthetic, key=lambda n: summary[n]["mae"]["mean"])
    result |= {"data": str(Path(data).resolve()), "models": list(synthetic), "best_model": best}
    return result | {"targets": targets(result)}


def write_study_files(result: dict, out_dir: Path, test, overwrite: bool) -> dict[str, str]:
    from .evaluation.study_report import write_study

    return write_study(result, out_dir, ages=test.age, diagnoses=result["diagnoses"], overwrite=overwrite)


def _boxplot(per_subject: dict[str, list[dict]], path: Path, title: str) -> None:
    from .figures import pyplot, save_figure

    plt = pyplot()
    metrics = ("mae", "psnr", "ssim", "pearson_r")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 4))
    names = list(per_subject)
    for ax, metric in zip(axes, metrics):
        ax.boxplot([[r[metric] for r in per_subject[n]] for n in names])
        ax.set_xticks(range(1, len(names) + 1), [n.replace("baseline: ", "base:\n") for n in names], fontsize=7)
        ax.set_title(metric.upper() if metric != "pearson_r" else "Pearson r")
    fig.suptitle(title)
    save_figure(fig, path)
