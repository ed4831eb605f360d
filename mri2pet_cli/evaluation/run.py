"""`evaluate`: score models and both baselines on any paired cohort, and run the seeds' study."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mri2pet_cli.errors import Mri2PetError
from mri2pet_cli.io import check_writable, write_text_atomic


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
    from mri2pet_cli.preprocessing.cohort import Arrays, subset

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
    from mri2pet_cli.console import tracked
    from mri2pet_cli.evaluation import mean_training_baseline, population_baseline, score, summarize
    from mri2pet_cli.evaluation.study import timed
    from mri2pet_cli.evaluation.study_report import study_files
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset, record_grid

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
    from mri2pet_cli.models.registry import load_model
    from mri2pet_cli.models.runtime import resolve_device
    from mri2pet_cli.preprocessing.cohort import load_arrays, paired_subject_ids, prepare_dataset
    from mri2pet_cli.shards import select, write_manifest

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
    from mri2pet_cli.models.registry import model_names
    from mri2pet_cli.models.weights import find_weights

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
    from mri2pet_cli.models.registry import get_model_info

    if get_model_info(name).conditioning == "age":
        return arrays.age
    return np.full(len(arrays.ids), np.nan, np.float32)


def synthesize_models(
    loaded: dict, arrays, preproc_dir: Path, device, *, label: str = "", timings: dict[str, float] | None = None
) -> dict[str, np.ndarray]:
    """Every loaded model's synthetic PETs of ``arrays``, through the cohort's synthesis cache."""
    from mri2pet_cli.console import tracked
    from mri2pet_cli.evaluation.cache import cache_root, cached_predict
    from mri2pet_cli.evaluation.study import timed

    root, spent = cache_root(preproc_dir), {} if timings is None else timings
    synthetic = {}
    for name, (model, card, _files) in loaded.items():
        with tracked(f"synthesis {name}{label}", len(arrays.ids)) as advance, timed(spent, f"synthesis {name}"):
            ages = model_ages(name, arrays)
            synthetic[name] = cached_predict(model, card, arrays, root, ages=ages, device=device, progress=advance)
    return synthetic


def _t1_only_subjects(data, loaded, device, jobs: int):
    """The cohort's subjects with a T1 and no PET, preprocessed, with each model's synthetic PET (or None)."""
    from mri2pet_cli.preprocessing.cohort import load_arrays, prepare_dataset

    records, _failed = prepare_dataset(data, jobs=jobs, t1_only=True)
    if not records:
        return None
    arrays = load_arrays(records)
    synthetic = synthesize_models(loaded, arrays, records[0].preproc_dir, device, label=" (subjects without PET)")
    return arrays, [r.diagnosis for r in records], synthetic


def _run_study(data, grid, test, diagnoses, synthetic, per_subject, loaded, summary, device, settings, t1_only) -> dict:
    from mri2pet_cli.evaluation.classification import normalise_diagnosis
    from mri2pet_cli.evaluation.study import StudyInputs, StudySettings, run_study
    from mri2pet_cli.evaluation.study_report import targets
    from mri2pet_cli.models.registry import get_model_info
    from mri2pet_cli.space.atlas import template_maps

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
    from mri2pet_cli.evaluation.study_report import write_study

    return write_study(result, out_dir, ages=test.age, diagnoses=result["diagnoses"], overwrite=overwrite)


def _boxplot(per_subject: dict[str, list[dict]], path: Path, title: str) -> None:
    from mri2pet_cli.reporting.figures import pyplot, save_figure

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
